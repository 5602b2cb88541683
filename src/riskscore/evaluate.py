"""Credit model metrics: discrimination, calibration and targeting, overall and per period."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["EvaluationReport", "auc_interval", "evaluate", "rate_interval"]

TOP_SHARES = (0.05, 0.10, 0.20)


@dataclass
class EvaluationReport:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    summary : dict
        ``n``, ``positives``, ``rate``, ``auc``, ``gini``, ``ks``, ``brier``,
        ``log_loss``, ``ece`` (expected calibration error over the calibration
        table's bins), ``capture_5``/``lift_5`` (top 5%) and the same at 10% and
        20%, and ``excluded`` (rows without a label, left out and counted).
    calibration : DataFrame
        Equal-count bins of the predicted PD (deciles by default): ``n``,
        ``mean_pd``, ``observed_rate``, ``pd_min``, ``pd_max``.
    lift : DataFrame
        For the riskiest 5%, 10%, 20%: ``n``, ``positives``, ``capture_rate``, ``lift``.
    by_period : DataFrame or None
        The summary per value of ``by`` (e.g. per ``as_of``).
    """

    summary: dict[str, float]
    calibration: pd.DataFrame
    lift: pd.DataFrame
    by_period: pd.DataFrame | None = field(default=None)

    def to_frame(self) -> pd.DataFrame:
        """One row for all rows (index ``"all"``), then one per period when ``by`` was given."""
        overall = pd.DataFrame([self.summary], index=pd.Index(["all"], name="period"))
        if self.by_period is None:
            return overall
        periods = self.by_period.copy()
        periods.index = periods.index.map(str)
        periods.index.name = "period"
        return pd.concat([overall, periods])

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"EvaluationReport(n={s['n']:,}, rate={s['rate']:.2%}, AUC={s['auc']:.4f}, Gini={s['gini']:.4f}, "
            f"KS={s['ks']:.4f}, Brier={s['brier']:.5f}, ECE={s['ece']:.5f}, lift@10%={s['lift_10']:.2f})"
        )


def evaluate(y: Any, p: Any, by: Any = None, bins: int = 10) -> EvaluationReport:
    """Measure a PD model: ROC AUC, Gini, KS, Brier, log loss, calibration, capture and lift.

    Parameters
    ----------
    y : array-like of 0/1
        Outcomes; missing ones (incomplete windows) are left out and counted
        in ``summary["excluded"]``.
    p : array-like
        Predicted probabilities in [0, 1].
    by : array-like or str, optional
        Period of each row, or the name of an index level of ``y`` (``"as_of"``):
        the summary is repeated per period.
    bins : int, default=10
        Number of equal-count bins of the calibration table.

    Returns
    -------
    EvaluationReport

    Examples
    --------
    >>> r = evaluate([0, 0, 1, 1, 0, 1], [0.1, 0.2, 0.7, 0.6, 0.3, 0.9])
    >>> r.summary["auc"], r.summary["ks"]
    (1.0, 1.0)
    """
    periods = None
    if isinstance(by, str):
        if not isinstance(y, (pd.Series, pd.DataFrame)) or by not in (y.index.names or []):
            raise ValueError(f"by={by!r} must name an index level of y")
        periods = np.asarray(y.index.get_level_values(by))
    elif by is not None:
        periods = np.asarray(by)
    labels = pd.Series(np.asarray(y, dtype=object)).astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    probs = np.asarray(p, dtype=np.float64).ravel()
    if len(labels) != len(probs):
        raise ValueError(f"y and p must have the same length; got {len(labels)} and {len(probs)}")
    if periods is not None and len(periods) != len(labels):
        raise ValueError(f"by must have one value per row ({len(labels)}); got {len(periods)}")
    if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1).any():
        raise ValueError("p must be probabilities in [0, 1]; got values outside or not finite")
    known = ~np.isnan(labels)
    if not set(np.unique(labels[known])) <= {0.0, 1.0}:
        raise ValueError("y must be 0/1 outcomes")
    y_known, p_known = labels[known], probs[known]
    summary, calibration, lift = _measure(y_known, p_known, bins)
    summary["excluded"] = int((~known).sum())
    by_period = None
    if periods is not None:
        rows = {}
        for period in pd.unique(periods[known]):
            mask = periods[known] == period
            rows[period] = _measure(y_known[mask], p_known[mask], bins)[0]
        by_period = pd.DataFrame.from_dict(rows, orient="index").sort_index()
        by_period.index.name = by if isinstance(by, str) else "period"
    return EvaluationReport(summary, calibration, lift, by_period)


def _measure(y: np.ndarray, p: np.ndarray, bins: int) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    n = len(y)
    positives = float(y.sum())
    both = 0 < positives < n
    auc, ks = (_auc(y, p), _ks(y, p)) if both else (np.nan, np.nan)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    summary: dict[str, float] = {
        "n": n,
        "positives": int(positives),
        "rate": positives / n if n else np.nan,
        "auc": auc,
        "gini": 2 * auc - 1 if both else np.nan,
        "ks": ks,
        "brier": float(np.mean((p - y) ** 2)) if n else np.nan,
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))) if n else np.nan,
    }
    calibration = _calibration_table(y, p, bins)
    summary["ece"] = (
        float((calibration["n"] * (calibration["mean_pd"] - calibration["observed_rate"]).abs()).sum() / n)
        if n
        else np.nan
    )
    lift = _lift_table(y, p)
    for share, row in zip(lift.index, lift.to_dict("records"), strict=True):
        key = round(float(share) * 100)
        summary[f"capture_{key}"] = row["capture_rate"]
        summary[f"lift_{key}"] = row["lift"]
    return summary, calibration, lift


def auc_interval(y: Any, p: Any, confidence: float = 0.95) -> tuple[float, float, float]:
    """ROC AUC with its confidence interval by DeLong's method: ``(auc, low, high)``.

    DeLong, DeLong and Clarke-Pearson (1988): the variance of the Mann-Whitney
    statistic from the placement values of the positives among the negatives and
    of the negatives among the positives (ties count half), computed by ranks in
    O(n log n). The interval is clipped to [0, 1].

    Examples
    --------
    >>> auc, low, high = auc_interval([0, 0, 1, 1, 0, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.7, 0.5, 0.9])
    >>> round(auc, 4), low < auc < high
    (0.875, True)
    """
    from statistics import NormalDist

    labels, probs = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    pos, neg = probs[labels == 1], probs[labels == 0]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        raise ValueError(f"an AUC interval needs at least two positives and two negatives; got {m} and {n}")
    all_ranks = pd.Series(np.concatenate([pos, neg])).rank(method="average").to_numpy()
    pos_ranks = pd.Series(pos).rank(method="average").to_numpy()
    neg_ranks = pd.Series(neg).rank(method="average").to_numpy()
    v10 = (all_ranks[:m] - pos_ranks) / n  # share of negatives each positive outranks
    v01 = 1.0 - (all_ranks[m:] - neg_ranks) / m  # share of positives that outrank each negative
    auc = float(v10.mean())
    variance = float(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(max(variance, 0.0))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def rate_interval(events: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate ``events / n``: ``(low, high)``."""
    from statistics import NormalDist

    if n <= 0:
        raise ValueError(f"a rate interval needs n > 0; got {n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    share = events / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by ranks (ties count half), the Mann-Whitney statistic."""
    ranks = pd.Series(p).rank(method="average").to_numpy()
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _ks(y: np.ndarray, p: np.ndarray) -> float:
    """Largest gap between the cumulative PD distributions of bads and goods."""
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    tpr = np.cumsum(ys) / ys.sum()
    fpr = np.cumsum(1 - ys) / (1 - ys).sum()
    last_of_tie = np.append(ps[1:] != ps[:-1], True)  # evaluate only between distinct scores
    return float(np.max(np.abs(tpr - fpr)[last_of_tie]))


def _calibration_table(y: np.ndarray, p: np.ndarray, bins: int) -> pd.DataFrame:
    if len(y) == 0:
        return pd.DataFrame(columns=["n", "mean_pd", "observed_rate", "pd_min", "pd_max"])
    order = np.argsort(p, kind="stable")
    edges = np.linspace(0, len(y), min(bins, len(y)) + 1).astype(int)
    rows = []
    for b, (a, c) in enumerate(itertools.pairwise(edges), start=1):
        idx = order[a:c]
        if len(idx) == 0:
            continue
        rows.append(
            {
                "bin": b,
                "n": len(idx),
                "mean_pd": float(p[idx].mean()),
                "observed_rate": float(y[idx].mean()),
                "pd_min": float(p[idx].min()),
                "pd_max": float(p[idx].max()),
            }
        )
    return pd.DataFrame(rows).set_index("bin")


def _lift_table(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    order = np.argsort(-p, kind="stable")
    total = y.sum()
    rate = y.mean() if len(y) else np.nan
    rows = []
    for share in TOP_SHARES:
        k = max(1, int(np.ceil(share * len(y)))) if len(y) else 0
        hits = float(y[order[:k]].sum()) if k else np.nan
        rows.append(
            {
                "top_share": share,
                "n": k,
                "positives": hits,
                "capture_rate": hits / total if total else np.nan,
                "lift": (hits / k) / rate if k and rate else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("top_share")
