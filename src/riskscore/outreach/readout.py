"""The read-out of an outreach experiment: what the contacts achieved against the held-out control group.

``recommend`` (and ``score_batch`` with a policy) allocate capacity first and
then hold out a seeded share of the customers granted a contact of a standard
treatment (``control=True``: the contact is withheld), recording on every row
the ``treatment``: the action granted, or the one it was held out from. The
draw is random given the allocation, so comparing the customers granted one
treatment and contacted with those granted it and held out measures what a
contact of that treatment causes on the customers the strategy contacts.
Decisions of other origins may have a treated arm that was not all reached:
``delivered`` gives the share reached and ``rate_undelivered`` the rate among
the rest, which :func:`~riskscore.outreach.estimate_effects` accounts for.

Outcomes come from the events after each decision's ``as_of``: whether the
account reaches 30+ days past due within the horizon (the model's target),
whether one that fell behind was current again at the horizon's end (cure), and
the amount paid in the window. Customers are the randomisation unit, so the
standard errors are cluster-robust over customers (equal to the usual binomial
ones when every customer holds one account).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.features.engine import account_codes
from riskscore.features.status import dpd_at, sorted_context
from riskscore.labels import horizon_delta, make_labels
from riskscore.outreach.inputs import zero_one

__all__ = ["MIN_ARM", "MISSING", "READOUT_COLUMNS", "decisions_frame", "readout"]

MIN_ARM = 30
"""Fewest accounts in each arm, and fewest delinquencies expected in either, for a group's uplift to be shown."""

READOUT_COLUMNS: tuple[str, ...] = (
    "treated",
    "control",
    "contacts",
    "rate_treated",
    "rate_control",
    "uplift",
    "ci_low",
    "ci_high",
    "p_value",
    "mde",
    "enough",
    "averted",
    "contacts_per_averted",
    "cure_treated",
    "cure_control",
    "paid_treated",
    "paid_control",
    "delivered",
    "rate_undelivered",
)
_NEEDED = ("account_id", "as_of", "treatment", "control")
MISSING = "(missing)"
"""The group label of rows without a value in a ``by`` column."""
_NORMAL = NormalDist()


def readout(
    decisions: pd.DataFrame | str | os.PathLike[str],
    events: Any,
    horizon: str = "90D",
    by: Sequence[str] = ("action", "segment"),
    *,
    dpd_threshold: int = 30,
    confidence: float = 0.95,
    power: float = 0.8,
) -> pd.DataFrame:
    """Uplift of each treatment per group: treated against held-out accounts, with a confidence interval.

    Parameters
    ----------
    decisions : DataFrame or path
        The ``recommend`` output, ``riskscore.read_scores`` of a ``score_batch``
        output with a policy, or an audit log (``.jsonl``). Needs ``account_id``, ``as_of``, ``treatment``,
        ``control`` and the ``by`` columns (``action`` means the treatment
        assigned, so a control row counts under the action it was held out
        from).
    events : EventData
        The events, covering every decision's horizon.
    horizon : str, default="90D"
        The performance window after each ``as_of``, whole days.
    by : sequence of str, default=("action", "segment")
        Grouping columns; the last row, ``all``, pools every group.
    dpd_threshold : int, default=30
        Days past due that count as a delinquency.
    confidence : float, default=0.95
        Level of the interval ``[ci_low, ci_high]``.
    power : float, default=0.8
        Power of the minimum detectable effect ``mde``.

    Returns
    -------
    DataFrame
        One row per group (columns :data:`READOUT_COLUMNS`): ``treated`` and
        ``control`` (accounts), ``contacts`` (distinct contacts made in the
        treated arm), ``rate_treated`` / ``rate_control`` (share reaching
        ``dpd_threshold`` within the horizon), ``uplift`` = ``rate_control -
        rate_treated`` (positive: the treatment averted delinquencies) with
        ``ci_low``, ``ci_high`` and a two-sided ``p_value``; ``mde``, the
        smallest uplift the group could detect; ``enough`` False when an arm has
        fewer than :data:`MIN_ARM` accounts or fewer than 5 delinquencies are
        expected in it, and then no uplift is stated (NaN) but ``mde`` is;
        ``averted`` (uplift x treated), ``contacts_per_averted``; the cure rates
        and mean amount paid in the horizon per arm; ``delivered``, the share of
        the treated arm that capacity and the rules let the decision reach
        (action other than ``none``), and ``rate_undelivered``, the rate among
        the others.

    Raises
    ------
    ValueError
        Decisions without a control group, missing columns, decisions of
        accounts not in ``events``, or a horizon that runs past the data.
    """
    frame = decisions_frame(decisions)
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in (*_NEEDED, *(b for b in by if b != "action")) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"decisions must have the columns {list(_NEEDED)} and those of by={by}; missing {missing} "
            "(pass the output of recommend or score_batch, which carry them)"
        )
    if not 0 < confidence < 1 or not 0 < power < 1:
        raise ValueError(f"confidence and power must be in (0, 1); got {confidence!r} and {power!r}")
    if not isinstance(events, EventData):
        raise TypeError(f"events must be an EventData (riskscore.load_events); got {type(events).__name__}")
    horizon_delta(horizon)
    control = _control(frame)
    undated = frame["as_of"].isna().to_numpy()
    if undated.any():
        ids = frame.loc[undated, "account_id"].head(5).tolist()
        raise ValueError(f"decisions.as_of is missing on {int(undated.sum()):,} rows, e.g. account_id {ids}")
    repeated = frame.duplicated(["account_id", "as_of"], keep=False).to_numpy()
    if repeated.any():
        ids = frame.loc[repeated, "account_id"].drop_duplicates().head(5).tolist()
        runs = frame.loc[repeated, "run_id"].drop_duplicates().tolist() if "run_id" in frame.columns else []
        hint = (
            f"; they come from {len(runs)} runs of one day (run_id {runs[:3]}): read out one run, with "
            "riskscore readout --run-id, or decisions_frame(log) filtered on its run_id column"
            if len(runs) > 1
            else " (read out one run's decisions, without appending them twice)"
        )
        raise ValueError(
            f"decisions hold {int(repeated.sum()):,} rows that repeat an account and as_of, e.g. account_id "
            f"{ids}: each decision counts once{hint}"
        )
    if not control.any():
        raise ValueError(
            f"decisions hold no control group ({len(frame):,} rows, none with control=True): the read-out "
            "compares contacted and held-out accounts; decide with control_share > 0"
        )
    code = account_codes(events.accounts["account_id"], frame["account_id"])
    if (code < 0).any():
        ids = frame.loc[code < 0, "account_id"].head(5).tolist()
        raise ValueError(
            f"decisions hold {int((code < 0).sum()):,} accounts that are not in events.accounts, e.g. {ids}: "
            "read out with the events of the accounts decided"
        )
    arm = frame["treatment"].astype(object).where(frame["treatment"].notna(), "none").astype(str)
    # Rows assigned no treatment (nothing allowed, or nothing called for) are in no comparison.
    assigned = (arm != "none").to_numpy()
    if not (assigned & control).any():
        raise ValueError(
            f"decisions hold no control row assigned a treatment ({int(control.sum()):,} held out, none of "
            "them from an action): nothing to compare"
        )
    frame, arm, control = (
        frame.loc[assigned].reset_index(drop=True),
        arm[assigned].reset_index(drop=True),
        control[assigned],
    )
    contact = frame["contact_id"] if "contact_id" in frame.columns else frame["account_id"]
    acted = frame["action"].astype(str).to_numpy() != "none" if "action" in frame.columns else ~control
    # A row without a value of a grouping column (an account of a customer decided on another account's
    # explanation has no segment of its own) is grouped as "(missing)", never dropped.
    groups = pd.DataFrame(
        {b: (arm if b == "action" else frame[b].astype(object).where(frame[b].notna(), MISSING)) for b in by}
    )
    for name, values in _outcomes(frame, events, horizon, dpd_threshold).items():
        groups[name] = values
    groups["_control"] = control
    groups["_cluster"] = _clusters(frame)
    groups["_contacted"] = ~control & acted
    groups["_contact"] = contact.astype(str).to_numpy()
    keys: list[Any] = []
    rows: list[list[Any]] = []
    if by:
        for key, part in groups.groupby(by, sort=True, observed=True, dropna=False):
            keys.append(key if isinstance(key, tuple) else (key,))
            rows.append(_group(part, confidence, power))
    keys.append(("all",) + ("",) * (len(by) - 1) if by else ("all",))
    rows.append(_group(groups, confidence, power))
    if len(by) > 1:
        index: pd.Index = pd.MultiIndex.from_tuples(keys, names=by)
    else:
        index = pd.Index([k[0] for k in keys], name=by[0] if by else None)
    out = pd.DataFrame(rows, index=index, columns=list(READOUT_COLUMNS))
    out.attrs.update({"horizon": horizon, "dpd_threshold": int(dpd_threshold), "confidence": confidence})
    return out


def decisions_frame(decisions: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    """The decisions as a frame: given, or read from an audit log (what :func:`readout` reads).

    From an audit log each row also carries the ``run_id`` of the run that
    decided it, so the decisions of one run can be picked when a day was
    decided more than once.
    """
    if isinstance(decisions, pd.DataFrame):
        return decisions.reset_index(drop=True)
    path = Path(decisions)
    if path.is_file() and path.suffix == ".jsonl":
        from riskscore.outreach.audit import read_audit

        records = list(read_audit(path))
        frame = pd.DataFrame([record["recommendation"] for record in records])
        frame["run_id"] = [record["run_id"] for record in records]
        if frame.empty:
            raise ValueError(f"{path}: the audit log holds no decision")
        frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[ns]")
        return frame
    hint = " (a score_batch output folder: pass riskscore.read_scores(folder))" if path.is_dir() else ""
    raise ValueError(f"decisions must be a DataFrame or an audit log (.jsonl); got {str(path)!r}{hint}")


def _control(frame: pd.DataFrame) -> np.ndarray:
    """``control`` as booleans: True/False or 1/0; anything else (text, missing) is refused, never guessed."""
    held, unknown = zero_one(frame["control"])
    if unknown.any():
        bad = frame.loc[unknown, ["account_id", "control"]].head(5)
        raise ValueError(
            f"decisions.control must be True/False (or 1/0) on every row; {int(unknown.sum()):,} rows are not, "
            f"e.g. {list(zip(bad['account_id'], bad['control'], strict=True))} (account_id, control)"
        )
    return held


def _clusters(frame: pd.DataFrame) -> np.ndarray:
    """The randomisation unit of each row: its customer and decision date (the account without customers)."""
    who = frame["customer_id"] if "customer_id" in frame.columns else frame["account_id"]
    return pd.factorize(pd.MultiIndex.from_arrays([who.astype(str), frame["as_of"]]))[0]


def _outcomes(frame: pd.DataFrame, events: Any, horizon: str, threshold: int) -> dict[str, np.ndarray]:
    """Per decision: reached the threshold in the horizon, cured (fell behind, current at the end), amount paid."""
    obs = frame[["account_id", "as_of"]].reset_index(drop=True)
    reached = make_labels(events, obs, horizon=horizon, dpd_threshold=threshold)
    if reached.isna().any():
        late = obs["as_of"][reached.isna().to_numpy()]
        last = events.data_end - pd.Timedelta(horizon) + pd.Timedelta(days=1)
        raise ValueError(
            f"the horizon {horizon} of {int(reached.isna().sum()):,} decisions runs past the data (which ends "
            f"{events.data_end.date()}), e.g. as_of {late.max().date()}: read out decisions made on or before "
            f"{last.date()}, or wait for more events"
        )
    behind = make_labels(events, obs, horizon=horizon, dpd_threshold=1).to_numpy(dtype=np.int8).astype(bool)
    h = pd.Timedelta(horizon)
    code = account_codes(events.accounts["account_id"], obs["account_id"])
    end = (obs["as_of"] + h).to_numpy(dtype="datetime64[ns]")
    ctx = sorted_context(events, code, end)
    dpd_end = np.empty(len(obs))
    dpd_end[ctx.obs.order] = dpd_at(ctx)
    cured = np.where(behind, dpd_end == 0, np.nan)
    return {"_reached": reached.to_numpy(dtype=np.float64), "_cured": cured, "_paid": _paid(obs, events, h)}


def _paid(obs: pd.DataFrame, events: Any, horizon: pd.Timedelta) -> np.ndarray:
    """Amount paid on each decision's account in ``[as_of, as_of + horizon)``: card payments and instalments."""
    keyed = obs.assign(_row=np.arange(len(obs)))
    total = np.zeros(len(obs))
    for table, when, amount in (
        ("statements", "statement_date", "payment"),
        ("installments", "paid_date", "amount_paid"),
    ):
        df = getattr(events, table)
        if df is None or df.empty:
            continue
        rows = keyed.merge(df[["account_id", when, amount]], on="account_id", how="inner")
        inside = (rows[when] >= rows["as_of"]) & (rows[when] < rows["as_of"] + horizon)
        sums = rows.loc[inside].groupby("_row")[amount].sum()
        total[sums.index.to_numpy()] += sums.to_numpy(dtype=np.float64)
    return total


def _rate_and_variance(y: np.ndarray, cluster: np.ndarray) -> tuple[float, float]:
    """Mean of ``y`` and its cluster-robust variance (CR0 over ``cluster``; binomial when clusters are single)."""
    n = len(y)
    mean = float(y.mean())
    _, codes = np.unique(cluster, return_inverse=True)
    resid = np.bincount(codes, weights=y - mean)
    return mean, float((resid**2).sum() / (n * n))


def _group(part: pd.DataFrame, confidence: float, power: float) -> list[Any]:
    treated = part[~part["_control"]]
    held = part[part["_control"]]
    n_t, n_c = len(treated), len(held)
    contacts = int(treated.loc[treated["_contacted"], "_contact"].nunique())
    z = _NORMAL.inv_cdf(0.5 + confidence / 2)
    z_power = _NORMAL.inv_cdf(power)
    nan = float("nan")
    got = treated["_contacted"].to_numpy(dtype=bool)
    delivered = float(got.mean()) if n_t else nan
    rate_undelivered = _mean(treated.loc[~got, "_reached"])
    if n_t == 0 or n_c == 0:
        return [n_t, n_c, contacts, _mean(treated["_reached"]), _mean(held["_reached"]), nan, nan, nan, nan, nan,
                False, nan, nan, _mean(treated["_cured"]), _mean(held["_cured"]), _mean(treated["_paid"]),
                _mean(held["_paid"]), delivered, rate_undelivered]  # fmt: skip
    y_t, y_c = treated["_reached"].to_numpy(), held["_reached"].to_numpy()
    p_t, v_t = _rate_and_variance(y_t, treated["_cluster"].to_numpy())
    p_c, v_c = _rate_and_variance(y_c, held["_cluster"].to_numpy())
    pooled = (y_t.sum() + y_c.sum()) / (n_t + n_c)
    mde = (z + z_power) * math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_t + 1 / n_c))
    enough = min(n_t, n_c) >= MIN_ARM and min(n_t, n_c) * pooled >= 5
    uplift = p_c - p_t
    se = math.sqrt(v_t + v_c)
    if enough and se > 0:
        low, high = uplift - z * se, uplift + z * se
        p_value = 2 * (1 - _NORMAL.cdf(abs(uplift) / se))
    elif enough:
        low = high = uplift
        p_value = 1.0 if uplift == 0 else 0.0
    else:
        uplift = low = high = p_value = nan
    averted = uplift * n_t
    per_averted = contacts / averted if averted > 0 else nan
    return [n_t, n_c, contacts, p_t, p_c, uplift, low, high, p_value, mde, bool(enough), averted, per_averted,
            _mean(treated["_cured"]), _mean(held["_cured"]), _mean(treated["_paid"]), _mean(held["_paid"]),
            delivered, rate_undelivered]  # fmt: skip


def _mean(values: pd.Series) -> float:
    v = values.to_numpy(dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if len(v) else float("nan")
