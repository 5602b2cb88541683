"""Pictures of explanations (matplotlib, headless-safe; every function returns the figure).

Needs matplotlib: ``pip install 'riskscore[plots]'``. Nothing here changes a
result: the functions only read an :class:`~riskscore.Explanation` or a reason
table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["beeswarm", "reason_frequency", "waterfall"]


def _pyplot() -> Any:
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
            import os

            if not os.environ.get("DISPLAY") and os.name != "nt":
                matplotlib.use("Agg")  # no screen: draw to files
        import matplotlib.pyplot as plt
    except ImportError as exc:  # optional dependency
        raise ImportError("riskscore.plots needs matplotlib: pip install 'riskscore[plots]'") from exc
    return plt


def waterfall(explanation: Any, account_id: Any, as_of: Any = None, max_features: int = 12, lang: str = "en") -> Any:
    """How one score was built: base value, the largest contributions, the margin.

    Bars run from the base value (the average margin) to the account's margin,
    largest contributions first (the rest summed in one bar); the account's
    reason texts are printed under the chart.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    row = explanation.for_account(account_id, as_of)
    order = row["contribution"].abs().sort_values(ascending=False).index
    shown = list(order[:max_features])
    rest = row.loc[order[max_features:], "contribution"].sum()
    labels = [f"{f} = {_short(row.loc[f, 'value'])}" for f in shown]
    values = list(row.loc[shown, "contribution"])
    if len(order) > max_features:
        labels.append(f"{len(order) - max_features} other features")
        values.append(float(rest))
    base = explanation.base_value
    starts = base + np.concatenate([[0.0], np.cumsum(values)[:-1]])
    fig_height = 1.2 + 0.38 * len(values) + 0.3 * 4
    fig, ax = plt.subplots(figsize=(9, fig_height))
    y = np.arange(len(values))[::-1]
    colours = ["#c0392b" if v > 0 else "#2471a3" for v in values]
    ax.barh(y, values, left=starts, color=colours, height=0.6)
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(base, color="grey", lw=0.8, ls="--")
    margin = base + sum(values)
    ax.axvline(margin, color="black", lw=0.8)
    ax.set_xlabel("log-odds of default (contributions add up from the base value to the margin)")
    when = "" if as_of is None else f" at {pd.Timestamp(as_of).date()}"
    ax.set_title(
        f"account {account_id}{when}\nmargin {margin:.2f} = base {base:.2f} + contributions "
        f"(PD before calibration {_sigmoid(margin):.1%})",
        fontsize=10,
    )
    ends = starts + np.asarray(values)
    low, high = min(starts.min(), ends.min(), base), max(starts.max(), ends.max(), base)
    pad = 0.05 * (high - low or 1.0)
    ax.set_xlim(low - pad, high + pad)
    index = explanation.values.index
    mask = np.asarray(index.get_level_values("account_id") == account_id)
    if as_of is not None:
        mask &= np.asarray(index.get_level_values("as_of") == pd.Timestamp(as_of))
    sub = _subset(explanation, mask)
    reasons = sub.reason_codes(lang=lang)
    text = "\n".join(f"{r.rank}. {r.text}" for r in reasons.itertuples()) or "no risk-increasing reason"
    fig.text(0.01, 0.01, text, fontsize=8, va="bottom", ha="left", wrap=True)
    fig.subplots_adjust(left=0.38, bottom=0.1 + 0.045 * max(1, len(reasons)), top=0.92)
    return fig


def beeswarm(explanation: Any, max_features: int = 15, max_points: int = 5000, random_state: int = 0) -> Any:
    """Portfolio view: each dot is one observation's contribution of a feature.

    Features are the ``max_features`` with the largest mean absolute
    contribution; dots are coloured by the feature's value (rank within the
    feature: blue low, red high, grey missing or categorical).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    values = explanation.values
    if len(values) > max_points:
        keep = np.random.default_rng(random_state).choice(len(values), size=max_points, replace=False)
        values, data = values.iloc[np.sort(keep)], explanation.data.iloc[np.sort(keep)]
    else:
        data = explanation.data
    top = values.abs().mean().sort_values(ascending=False).index[:max_features]
    fig, ax = plt.subplots(figsize=(9, 1 + 0.45 * len(top)))
    rng = np.random.default_rng(random_state)
    for i, feature in enumerate(top[::-1]):
        x = values[feature].to_numpy()
        column = data[feature]
        if isinstance(column.dtype, pd.CategoricalDtype):
            colour = np.full(len(x), 0.5)
        else:
            colour = column.rank(pct=True).to_numpy()
        jitter = rng.uniform(-0.3, 0.3, len(x))
        missing = np.isnan(colour)
        ax.scatter(x[~missing], i + jitter[~missing], c=colour[~missing], cmap="coolwarm", s=4, vmin=0, vmax=1)
        ax.scatter(x[missing], i + jitter[missing], color="lightgrey", s=4)
    ax.set_yticks(range(len(top)), list(top[::-1]), fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("contribution to the log-odds of default")
    ax.set_title(f"contributions of the {len(top)} most influential features ({len(values):,} observations)")
    fig.subplots_adjust(left=0.32)
    return fig


def reason_frequency(reasons: pd.DataFrame, rank: int | None = 1, top: int = 15) -> Any:
    """How often each reason code is given (among the principal reasons when ``rank=1``).

    Parameters
    ----------
    reasons : DataFrame
        The output of ``Explanation.reason_codes``.
    rank : int or None, default=1
        Count only reasons of this rank; ``None`` counts every rank.
    top : int, default=15

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    chosen = reasons if rank is None else reasons[reasons["rank"] == rank]
    counts = chosen["reason_code"].value_counts().sort_values(ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(8, 1 + 0.4 * max(1, len(counts))))
    ax.barh(counts.index, counts.to_numpy(), color="#7d3c98")
    ax.set_xlabel("observations")
    which = "principal reason" if rank == 1 else ("reason" if rank is None else f"reason of rank {rank}")
    ax.set_title(f"{which} frequency ({chosen[['rank']].shape[0]:,} reasons)")
    fig.subplots_adjust(left=0.28)
    return fig


def _subset(explanation: Any, mask: np.ndarray) -> Any:
    from riskscore.explain import Explanation

    return Explanation(
        values=explanation.values[mask],
        base_value=explanation.base_value,
        margin=explanation.margin[mask],
        data=explanation.data[mask],
        catalogue=explanation.catalogue,
    )


def _short(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))
