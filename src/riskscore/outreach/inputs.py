"""The inputs of an outreach decision: one row per scored account, with the facts from its events.

:func:`prepare_inputs` joins the scores, the explanation (segment, evidence,
which row explains the account) and the events known at ``now``: time zone,
flags, exposure, amount and date of the next payment, recent payments, and the
contact ledger the policy's rules count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskscore.features.engine import account_codes
from riskscore.outreach.policy import OutreachPolicy
from riskscore.outreach.rules import zone_array
from riskscore.outreach.treatments import Treatments

__all__ = [
    "FLAGS",
    "Inputs",
    "account_frame_limit",
    "check_capacity",
    "check_now",
    "customer_flags",
    "prepare_inputs",
    "zero_one",
]

FLAGS: tuple[str, ...] = ("vulnerable", "hardship_plan", "dispute", "deceased", "bankrupt", "attorney", "cease")
"""Boolean columns of ``accounts`` that policies may act on."""


@dataclass
class Inputs:
    """Everything a decision depends on, one row per account (in the order given).

    ``frame`` holds either ``reasons`` (a replay) or ``explained_row`` (positions in ``explanation``).
    """

    frame: pd.DataFrame  # account_id, as_of, pd, band, segment, evidence, timezone, flags, facts
    contacts: pd.DataFrame | None  # the accounts' contacts known at now (naive times in events_tz)
    events_tz: str
    explanation: Any = None  # reasons are computed from it for the accounts a decision concerns


def zero_one(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """``values`` read as booleans, and where they are not True/False, 1/0 or 1.0/0.0 (text, missing, a 2).

    The caller refuses the second with its own message: nothing is guessed.
    """
    plain = (values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)).reshape(-1)
    if plain.dtype.kind in "biuf":
        return plain == 1, ~np.isin(plain, (0, 1))
    known = (bool, np.bool_, int, np.integer, float, np.floating)
    ok = np.array([isinstance(v, known) and v in (0, 1) for v in plain], dtype=bool)
    return np.array([k and v == 1 for v, k in zip(plain, ok, strict=True)], dtype=bool), ~ok


def customer_flags(accounts: pd.DataFrame) -> pd.DataFrame:
    """``accounts`` with each flag of :data:`FLAGS` set on all of a customer's accounts when set on any.

    A cease request, a bankruptcy, a death or a vulnerability is the person's,
    not one account's: a flag that is set (or missing, which counts as set) on
    any account of a ``customer_id`` is set on all of them. Without
    ``customer_id`` every account is its own customer and nothing changes.
    """
    if "customer_id" not in accounts.columns:
        return accounts
    present = [f for f in FLAGS if f in accounts.columns]
    out = accounts
    codes = pd.factorize(accounts["customer_id"])[0]
    for flag in present:
        col = accounts[flag]
        if not (pd.api.types.is_bool_dtype(col.dtype) or col.dropna().isin([True, False, 0, 1]).all()):
            continue  # not a flag: the rules refuse it with their own message
        on = (col.isna() | col.fillna(False).astype(bool)).to_numpy()
        anyone = np.bincount(codes, weights=on.astype(np.float64), minlength=codes.max() + 1 if len(codes) else 0) > 0
        spread = anyone[codes]
        if (spread & ~on).any():
            out = out.copy() if out is accounts else out
            out[flag] = spread
    return out


def check_now(now: Any) -> pd.Timestamp:
    """``now`` as a time-zone-aware timestamp, or a clear error."""
    ts = pd.Timestamp(now)
    if ts.tzinfo is None:
        raise ValueError(
            f"now must be time-zone aware (contact hours are checked in each borrower's zone); got naive {ts}: "
            "use pd.Timestamp(..., tz='Asia/Shanghai') or similar"
        )
    return ts


def check_capacity(capacity: Mapping[str, int] | None, policy: OutreachPolicy) -> dict[str, int] | None:
    """Daily capacity per channel of the policy (and ``human_review``), as whole numbers >= 0."""
    if capacity is None:
        return None
    known = (*policy.channels, "human_review")
    out = {}
    for key, value in dict(capacity).items():
        if key not in known:
            raise ValueError(f"capacity has unknown channel {key!r}; known: {list(known)}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"capacity[{key!r}] must be a whole number >= 0; got {value!r}")
        out[str(key)] = int(value)
    return out


def _scored_accounts(scores: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame) or not {"pd", "band"} <= set(scores.columns):
        raise ValueError("scores must be the DataFrame of model.score(X): columns pd and band")
    frame = scores.reset_index()
    missing = [c for c in ("account_id", "as_of") if c not in frame.columns]
    if missing:
        raise ValueError(f"scores must be indexed by (account_id, as_of) as model.score(X) returns; missing {missing}")
    dup = frame["account_id"].duplicated(keep=False)
    if dup.any():
        ids = pd.unique(frame.loc[dup, "account_id"])[:5].tolist()
        raise ValueError(
            f"scores must hold one row per account (one decision each); {int(dup.sum())} rows share an "
            f"account_id, e.g. {ids}: keep the latest as_of"
        )
    try:
        p = frame["pd"].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scores: pd must be numbers (probabilities); got dtype {frame['pd'].dtype}") from exc
    bad = ~((p >= 0) & (p <= 1)) | frame["band"].isna().to_numpy()
    if bad.any():
        ids = frame.loc[bad, "account_id"].head(5).tolist()
        shown = p[bad][:5].tolist()
        raise ValueError(
            f"scores: pd must be a probability in [0, 1] and band known; not so for {int(bad.sum())} rows, "
            f"e.g. accounts {ids} (pd {shown})"
        )
    return frame[["account_id", "as_of", "pd", "band"]].assign(band=frame["band"].astype(str))


def prepare_inputs(
    scores: pd.DataFrame,
    explanation: Any,
    events: Any,
    treatments: Treatments,
    now: pd.Timestamp,
    events_tz: str,
    lang: str,
) -> Inputs:
    """Gather the per-account inputs of the decision from scores, explanation and events."""
    frame = _scored_accounts(scores)
    accounts = customer_flags(events.accounts)
    codes_in_events = account_codes(accounts["account_id"], frame["account_id"])
    unknown = codes_in_events < 0
    if unknown.any():
        ids = frame.loc[unknown, "account_id"].head(5).tolist()
        raise ValueError(f"scores hold {int(unknown.sum())} accounts that are not in events.accounts, e.g. {ids}")
    acc = accounts.iloc[codes_in_events].reset_index(drop=True)
    customers = "customer_id" in accounts.columns
    if customers:
        frame["customer_id"] = acc["customer_id"].to_numpy()
    zones = zone_array(acc["timezone"] if "timezone" in acc.columns else None, len(acc))
    frame["timezone"] = pd.Series(zones, dtype=object).to_numpy()
    for flag in FLAGS:
        if flag in acc.columns:
            frame[flag] = acc[flag].to_numpy()
    now_naive = now.tz_convert(events_tz).tz_localize(None)
    late = frame["as_of"] > now_naive
    if late.any():
        raise ValueError(
            f"now ({now}) is before the as_of of {int(late.sum())} scored rows, e.g. "
            f"{frame.loc[late, 'account_id'].head(5).tolist()}: a decision cannot precede its score"
        )
    frame = _facts(frame, events, now_naive, treatments)
    scored_by = scores.attrs.get("model_version")
    segment, evidence, explained = _segments(frame, explanation, treatments, scored_by)
    frame["segment"] = pd.Series(segment, dtype=object, index=frame.index)
    frame["evidence"] = pd.Series(evidence, dtype=object, index=frame.index)
    frame["explained_row"] = explained
    contacts = None
    if events.contacts is not None:
        c = events.contacts
        # The contacts of every account of the scored customers (a customer-scoped rule counts them all).
        concerned = frame["account_id"]
        if customers:
            of = accounts["customer_id"].isin(pd.unique(frame["customer_id"])).to_numpy()
            concerned = accounts.loc[of, "account_id"]
        keep = np.isin(account_codes(concerned.sort_values(), c["account_id"]), -1, invert=True)
        c = c.loc[keep & (c["timestamp"] < now_naive).to_numpy()]
        cols = ["account_id", "timestamp", "channel", "outcome", "direction", "contact_id"]
        cols = [col for col in cols if col in c.columns]
        contacts = c[cols].reset_index(drop=True)
        if customers:
            owner = accounts.set_index("account_id")["customer_id"]
            contacts.insert(1, "customer_id", owner.reindex(contacts["account_id"]).to_numpy())
    return Inputs(frame=frame, contacts=contacts, events_tz=events_tz, explanation=explanation)


def _segments(
    frame: pd.DataFrame, explanation: Any, treatments: Treatments, scored_by: str | None
) -> tuple[list[Any], list[Any], np.ndarray]:
    """Segment, evidence and the row position in ``explanation`` of every account (-1: not explained)."""
    n = len(frame)
    bands = frame["band"].astype(str)
    needs = bands.isin(treatments.contacted_bands(bands.unique())).to_numpy()
    segment: list[Any] = [None] * n
    evidence: list[Any] = [()] * n
    if explanation is None:
        if needs.any():
            ids = frame.loc[needs, "account_id"].head(5).tolist()
            raise ValueError(
                f"{int(needs.sum())} accounts are in bands that call for contact but no explanation was given, "
                f"e.g. {ids}: pass model.explain(X) for them"
            )
        return segment, evidence, np.full(n, -1, dtype=np.int64)
    index = explanation.values.index
    pos = np.full(n, -1, dtype=np.int64)
    if isinstance(index, pd.MultiIndex) and {"account_id", "as_of"} <= set(index.names):
        # A hash join on (account_id, as_of): faster than a MultiIndex lookup at a million rows.
        left = pd.DataFrame({"account_id": frame["account_id"].to_numpy(), "as_of": frame["as_of"].to_numpy()})
        right = pd.DataFrame(
            {
                "account_id": index.get_level_values("account_id"),
                "as_of": index.get_level_values("as_of"),
                "_pos": np.arange(len(index)),
            }
        ).drop_duplicates(["account_id", "as_of"], keep="first")
        joined = left.merge(right, on=["account_id", "as_of"], how="left", sort=False)
        pos = joined["_pos"].fillna(-1).to_numpy(dtype=np.int64)
    missing = needs & (pos < 0)
    if missing.any():
        ids = frame.loc[missing, "account_id"].head(5).tolist()
        raise ValueError(
            f"{int(missing.sum())} accounts in bands that call for contact are not in the explanation "
            f"(matched on account_id and as_of), e.g. {ids}"
        )
    have = np.flatnonzero(pos >= 0)
    _check_matches(frame, explanation, scored_by, have, pos[have])
    if len(have):
        segs = explanation.segment(evidence=True)
        seg_values = segs["segment"].astype(str).to_numpy(dtype=object).tolist()
        ev_values = segs["evidence"].to_numpy().tolist()
        for i, p in zip(have.tolist(), pos[have].tolist(), strict=True):
            segment[i] = seg_values[p]
            evidence[i] = ev_values[p]
    return segment, evidence, pos


PD_TOLERANCE = 1e-9
"""Largest |scores.pd - explanation.pd_| accepted for one account: the same model on the same features."""


def _check_matches(
    frame: pd.DataFrame, explanation: Any, scored_by: str | None, have: np.ndarray, rows: np.ndarray
) -> None:
    """Refuse an explanation of another model, or of other feature values, than the scores."""
    version = getattr(explanation, "model_version", None)
    if version is not None and scored_by is not None and version != scored_by:
        raise ValueError(
            f"the explanation is of model {version} but the scores are of model {scored_by}: "
            "explain with the model that scored"
        )
    explained_pd = getattr(explanation, "pd_", None)
    if explained_pd is None or not len(have):
        return
    scored = frame["pd"].to_numpy(dtype=np.float64)[have]
    explained = np.asarray(explained_pd, dtype=np.float64)[rows]
    off = ~(np.abs(scored - explained) <= PD_TOLERANCE)
    if off.any():
        first = int(np.flatnonzero(off)[0])
        ids = frame["account_id"].to_numpy()[have[off]][:5].tolist()
        raise ValueError(
            f"the explanation does not match the scores for {int(off.sum())} of {len(have)} accounts, e.g. {ids} "
            f"(account {ids[0]!r}: pd {scored[first]:.6g} in the scores, {explained[first]:.6g} in the explanation): "
            "explain the same feature rows that were scored"
        )


def _facts(frame: pd.DataFrame, events: Any, now_naive: pd.Timestamp, treatments: Treatments) -> pd.DataFrame:
    """Per account, from the events known before ``now``: the facts a message and an offer quote.

    Cards (last statement): exposure = balance (at least 0), amount = minimum
    due (the balance without a ``min_due`` column), due date = statement date
    + ``card_grace_days``, recent payment = mean payment of the last
    ``recent_cycles`` statements. Loans: exposure = ``credit_limit`` (the loan
    amount) less every payment known, amount = the last instalment amount, due
    date = the last due date + 1 month, recent payment = payments on the
    instalments due in the last ``recent_cycles`` months, per month. A due date
    that has passed at ``now`` moves on by months to the next one.
    """
    n = len(frame)
    order = np.argsort(frame["account_id"].to_numpy(), kind="stable")
    sorted_ids = frame["account_id"].iloc[order].reset_index(drop=True)
    k = int(treatments.offer["recent_cycles"])
    grace = pd.Timedelta(days=float(treatments.offer["card_grace_days"])).to_timedelta64()
    exposure = np.full(n, np.nan)
    amount = np.full(n, np.nan)
    due = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    recent = np.full(n, np.nan)
    product = np.full(n, "", dtype=object)

    def known(df: pd.DataFrame, time_col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows known before now, their account positions (sorted order) and each group's last row."""
        code = account_codes(sorted_ids, df["account_id"])
        keep = np.flatnonzero((code >= 0) & (df[time_col] < now_naive).to_numpy())
        code = code[keep]
        ends = np.flatnonzero(np.r_[code[1:] != code[:-1], True]) if len(code) else np.array([], dtype=np.int64)
        sizes = np.diff(np.r_[-1, ends])
        return keep, code, np.repeat(ends, sizes)

    st = events.statements
    if st is not None and len(st):
        keep, code, last = known(st, "statement_date")
        if len(code):
            lasts = np.unique(last)
            who = code[lasts]  # account positions in sorted order
            rows = order[who]  # the same accounts in the caller's order
            balance = st["balance"].to_numpy(dtype=np.float64)[keep]
            min_due = (
                st["min_due"].to_numpy(dtype=np.float64)[keep]
                if "min_due" in st.columns
                else np.full(len(keep), np.nan)
            )
            exposure[rows] = np.maximum(balance[lasts], 0.0)
            amount[rows] = np.where(np.isnan(min_due[lasts]), np.maximum(balance[lasts], 0.0), min_due[lasts])
            due[rows] = st["statement_date"].to_numpy()[keep][lasts] + grace
            product[rows] = "card"
            within = (last - np.arange(len(code))) < k
            pay = st["payment"].to_numpy(dtype=np.float64)[keep]
            sums = np.bincount(code[within], weights=pay[within], minlength=n)
            counts = np.bincount(code[within], minlength=n)
            recent[rows] = sums[who] / np.maximum(counts[who], 1)
    inst = events.installments
    if inst is not None and len(inst):
        keep, code, last = known(inst, "due_date")
        if len(code):
            lasts = np.unique(last)
            who = code[lasts]
            rows = order[who]
            due_day = inst["due_date"].to_numpy()[keep]
            paid_amt = inst["amount_paid"].fillna(0).to_numpy(dtype=np.float64)[keep]
            paid_day = inst["paid_date"].to_numpy()[keep]
            paid = np.where(~np.isnat(paid_day) & (paid_day < now_naive.to_datetime64()), paid_amt, 0.0)
            total_paid = np.bincount(code, weights=paid, minlength=n)
            outstanding = np.maximum(account_frame_limit(events, sorted_ids) - total_paid, 0.0)
            exposure[rows] = outstanding[who]
            amount[rows] = inst["amount_due"].to_numpy(dtype=np.float64)[keep][lasts]
            due[rows] = (pd.DatetimeIndex(due_day[lasts]) + pd.DateOffset(months=1)).to_numpy()
            product[rows] = "loan"
            since = (pd.DatetimeIndex(due_day[last]) - pd.DateOffset(months=k)).to_numpy()
            within = due_day > since
            sums = np.bincount(code[within], weights=paid[within], minlength=n)
            recent[rows] = sums[who] / k
    # A due date already passed at now: the next one, a month on (monthly cycles and schedules).
    today = now_naive.normalize().to_datetime64()
    for _ in range(13):
        passed = ~np.isnat(due) & (due < today)
        if not passed.any():
            break
        due[passed] = (pd.DatetimeIndex(due[passed]) + pd.DateOffset(months=1)).to_numpy()
    return frame.assign(exposure=exposure, amount=amount, due_date=due, recent_payment=recent, product=product)


def account_frame_limit(events: Any, sorted_ids: pd.Series) -> np.ndarray:
    """``credit_limit`` of the accounts in ``sorted_ids`` order (the loan amount for loans)."""
    accounts = events.accounts
    pos = account_codes(accounts["account_id"], sorted_ids)
    return accounts["credit_limit"].to_numpy(dtype=np.float64)[pos]
