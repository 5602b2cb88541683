"""recommend(): from scores and reasons to one compliant outreach decision per account.

Steps, all vectorised over accounts except the capacity allocation (a greedy
pass over the accounts that want a contact):

1. account facts from the events as known at ``now``: time zone, flags,
   exposure, amount and date of the next payment, recent payments;
2. the policy's rules (:mod:`riskscore.outreach.rules`): per channel, blocked or
   the earliest allowed moment;
3. the treatment options for each account's band and segment (support and
   suppression routes first), each with its expected benefit
   PD x exposure x LGD x effect(action) - cost(channel);
4. a seeded control group (a hash of seed and account, so it does not depend on
   the other accounts) that gets no contact;
5. capacity: accounts in order of expected benefit take their first allowed
   option whose channel has capacity left;
6. messages rendered from the linted templates, and the audit record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore.outreach.messages import Templates
from riskscore.outreach.policy import OutreachPolicy
from riskscore.outreach.rules import NEVER, RuleEvaluation, evaluate_rules, format_local, zone_array
from riskscore.outreach.treatments import Treatments

__all__ = ["FLAGS", "OUTPUT_COLUMNS", "recommend"]

FLAGS: tuple[str, ...] = ("vulnerable", "hardship_plan", "dispute", "deceased", "bankrupt", "attorney", "cease")
"""Boolean columns of ``accounts`` that policies may act on."""

OUTPUT_COLUMNS: tuple[str, ...] = (
    "account_id",
    "as_of",
    "pd",
    "band",
    "segment",
    "action",
    "channel",
    "send_after",
    "timezone",
    "offer",
    "message",
    "reasons",
    "blocked",
    "expected_benefit",
    "control",
    "model_version",
    "policy_version",
)
DEFAULT_LENDER: dict[str, dict[str, str]] = {
    "en": {"name": "Your lender", "contact": "the number on your card or statement"},
    "zh": {"name": "您的贷款机构", "contact": "卡片或账单上的客服电话"},
}
"""Lender identity quoted in messages when ``lender`` is not given (set your own)."""


@dataclass
class Inputs:
    """Everything a decision depends on, one row per account (in the order given).

    ``frame`` holds either ``reasons`` (a replay) or ``explained_row`` (positions in ``explanation``).
    """

    frame: pd.DataFrame  # account_id, as_of, pd, band, segment, evidence, timezone, flags, facts
    contacts: pd.DataFrame | None  # the accounts' contacts known at now (naive times in events_tz)
    events_tz: str
    explanation: Any = None  # reasons are computed from it for the accounts a decision concerns


def recommend(
    scores: pd.DataFrame,
    explanation: Any,
    events: Any,
    policy: OutreachPolicy | str | Path,
    now: Any,
    capacity: Mapping[str, int] | None = None,
    costs: Mapping[str, Any] | None = None,
    control_share: float = 0.05,
    seed: int = 0,
    *,
    treatments: Treatments | str | Path | Mapping[str, Any] | None = None,
    templates: str | Path | Mapping[str, Any] | None = None,
    lang: str | None = None,
    lender: Mapping[str, str] | None = None,
    events_timezone: str | None = None,
    model_version: str | None = None,
    audit: str | Path | None = None,
) -> pd.DataFrame:
    """One outreach decision per scored account, under ``policy`` and ``capacity``.

    Parameters
    ----------
    scores : DataFrame
        ``model.score(X)``: ``pd`` and ``band``, indexed by (``account_id``,
        ``as_of``), one row per account.
    explanation : Explanation or None
        Explanations of (at least) the accounts whose band calls for contact:
        their segment and reasons decide the treatment and are shown.
    events : EventData
        For time zones, flags (boolean ``accounts`` columns, see :data:`FLAGS`),
        the contact ledger, balances and recent payments.
    policy : OutreachPolicy, profile name or policy file path
    now : tz-aware timestamp
        The moment of the decision; contacts at or after it are not known.
    capacity : dict, optional
        Daily capacity per channel (and ``human_review``); unlimited if absent.
    costs : dict, optional
        Overrides of the benefit model: ``lgd``, ``effect`` (per action),
        ``cost`` (per channel).
    control_share : float, default=0.05
        Share of the accounts eligible for a standard treatment held out with
        no contact (``control=True``) to measure the effect of outreach.
        Accounts on a support or suppression path are never held out.
    seed : int, default=0
        Seed of the control group draw.
    treatments, templates : path or mapping, optional
        Another treatment table or template set (data files); the shipped ones
        by default. Templates are linted against the policy and refused if they
        break it.
    lang : {"en", "zh"}, optional
        Language of messages and reasons; the policy's language by default.
    lender : dict, optional
        ``name`` and ``contact`` of the lender, quoted in every message.
    events_timezone : str, optional
        IANA zone of the events' naive timestamps; ``now``'s zone by default.
    model_version : str, optional
        Recorded on every row; ``scores.attrs["model_version"]`` by default.
    audit : path, optional
        Append the run and every decision to this JSON-lines file.

    Returns
    -------
    DataFrame
        Columns :data:`OUTPUT_COLUMNS`, one row per account of ``scores``, in
        the order of ``scores``. ``action`` is ``none`` and ``channel`` empty
        when nothing may or need be sent; ``send_after`` (UTC) is the earliest
        allowed moment, ``timezone`` the borrower's zone; ``offer`` a dict
        (instalment, term_months, total, first_due) for repayment plans;
        ``reasons`` the top four reasons (code, text, contribution) of the
        accounts a decision concerns (contacted, reviewed or held out), an
        empty tuple for the others; ``blocked`` a list of ``{rule, channel,
        why}`` for every rule (or used-up capacity) that stopped a channel the
        treatment wanted, an empty tuple when nothing did.
    """
    from riskscore.outreach import audit as audit_mod

    policy = policy if isinstance(policy, OutreachPolicy) else OutreachPolicy.load(policy)
    table = treatments if isinstance(treatments, Treatments) else Treatments.load(treatments)
    table = table.with_costs(costs)
    messages = Templates.load(policy, templates)
    now_ts = _check_now(now)
    lang = policy.language if lang is None else lang
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh'; got {lang!r}")
    if not 0 <= control_share < 1:
        raise ValueError(f"control_share must be in [0, 1); got {control_share!r}")
    capacity = _check_capacity(capacity, policy)
    events_tz = events_timezone or str(now_ts.tz)
    version = model_version or str(scores.attrs.get("model_version", "unknown"))
    inputs = prepare_inputs(scores, explanation, events, table, now_ts, events_tz, lang)
    from riskscore.segments import SEGMENTS

    table.check(policy, sorted(inputs.frame["band"].unique()), list(SEGMENTS))
    settings = {
        "capacity": capacity,
        "control_share": float(control_share),
        "seed": int(seed),
        "lang": lang,
        "lender": {**DEFAULT_LENDER[lang], **dict(lender or {})},
        "model_version": version,
    }
    out, trail = decide(inputs, policy, table, messages, now_ts, settings)
    if audit is not None:
        audit_mod.write(audit, inputs, out, trail, policy, table, messages, now_ts, settings)
    return out


def _check_now(now: Any) -> pd.Timestamp:
    ts = pd.Timestamp(now)
    if ts.tzinfo is None:
        raise ValueError(
            f"now must be time-zone aware (contact hours are checked in each borrower's zone); got naive {ts}: "
            "use pd.Timestamp(..., tz='Asia/Shanghai') or similar"
        )
    return ts


def _check_capacity(capacity: Mapping[str, int] | None, policy: OutreachPolicy) -> dict[str, int] | None:
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
    bad = ~np.isfinite(frame["pd"].to_numpy(dtype=np.float64)) | frame["band"].isna().to_numpy()
    if bad.any():
        ids = frame.loc[bad, "account_id"].head(5).tolist()
        raise ValueError(f"scores: pd must be finite and band known; not so for {int(bad.sum())} rows, e.g. {ids}")
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
    from riskscore.features._engine import account_codes

    frame = _scored_accounts(scores)
    accounts = events.accounts
    codes_in_events = account_codes(accounts["account_id"], frame["account_id"])
    unknown = codes_in_events < 0
    if unknown.any():
        ids = frame.loc[unknown, "account_id"].head(5).tolist()
        raise ValueError(f"scores hold {int(unknown.sum())} accounts that are not in events.accounts, e.g. {ids}")
    acc = accounts.iloc[codes_in_events].reset_index(drop=True)
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
    segment, evidence, explained = _segments(frame, explanation, treatments)
    frame["segment"] = pd.Series(segment, dtype=object, index=frame.index)
    frame["evidence"] = pd.Series(evidence, dtype=object, index=frame.index)
    frame["explained_row"] = explained
    contacts = None
    if events.contacts is not None:
        c = events.contacts
        keep = np.isin(account_codes(frame["account_id"].sort_values(), c["account_id"]), -1, invert=True)
        c = c.loc[keep & (c["timestamp"] < now_naive).to_numpy()]
        cols = [col for col in ("account_id", "timestamp", "channel", "outcome", "direction") if col in c.columns]
        contacts = c[cols].reset_index(drop=True)
    return Inputs(frame=frame, contacts=contacts, events_tz=events_tz, explanation=explanation)


def _segments(frame: pd.DataFrame, explanation: Any, treatments: Treatments) -> tuple[list[Any], list[Any], np.ndarray]:
    """Segment, evidence and the row position in ``explanation`` of every account (-1: not explained)."""
    n = len(frame)
    bands = frame["band"].astype(str)
    contact_bands = {b for b in bands.unique() if any(t[2] for t in treatments.entries if b in t[0])}
    needs = bands.isin(contact_bands).to_numpy()
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
    if len(have):
        segs = explanation.segment(evidence=True)
        seg_values = segs["segment"].astype(str).to_numpy(dtype=object).tolist()
        ev_values = segs["evidence"].to_numpy().tolist()
        for i, p in zip(have.tolist(), pos[have].tolist(), strict=True):
            segment[i] = seg_values[p]
            evidence[i] = ev_values[p]
    return segment, evidence, pos


def _reasons_for(explanation: Any, positions: np.ndarray, lang: str) -> dict[int, list[dict[str, Any]]]:
    """Top-4 reasons (code, text, contribution) for the explanation rows at ``positions``, by position."""
    by_row: dict[int, list[dict[str, Any]]] = {}
    if explanation is None or not len(positions):
        return by_row
    rc = explanation._reason_codes(top=4, lang=lang, positions=positions, features=False)
    for p, code, text, contribution in zip(
        rc["_position"].to_numpy().tolist(),
        rc["reason_code"].to_numpy(dtype=object).tolist(),
        rc["text"].to_numpy(dtype=object).tolist(),
        np.round(rc["contribution"].to_numpy(dtype=np.float64), 6).tolist(),
        strict=True,
    ):
        by_row.setdefault(p, []).append({"code": code, "text": text, "contribution": contribution})
    return by_row


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
    from riskscore.features._engine import account_codes

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
    from riskscore.features._engine import account_codes

    accounts = events.accounts
    pos = account_codes(accounts["account_id"], sorted_ids)
    return accounts["credit_limit"].to_numpy(dtype=np.float64)[pos]


def control_draw(account_ids: pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per account from (seed, account_id) alone: stable and replayable.

    Whole-number ids go through the SplitMix64 finaliser (vectorised); other ids
    through SHA-256 of ``"seed:id"``. Neither depends on the other accounts.
    """
    ids = np.asarray(account_ids)
    if np.issubdtype(ids.dtype, np.integer):
        with np.errstate(over="ignore"):
            z = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)).astype(np.float64) / float(2**53)
    out = np.empty(len(ids))
    for i, a in enumerate(ids.tolist()):
        digest = hashlib.sha256(f"riskscore-control:{seed}:{a}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2**64
    return out


def plan_offers(
    exposure: np.ndarray, recent: np.ndarray, offer: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repayment plans for many accounts: (instalment, term in months, total); total NaN when nothing is owed.

    The instalment starts from the borrower's recent monthly payments (at least
    ``min_instalment``), the term is what clears the balance at that pace,
    clipped to [``min_term_months``, ``max_term_months``], and the instalment is
    then the balance over the term, rounded up to the cent.
    """
    total = np.where(np.isfinite(exposure) & (exposure > 0), exposure, np.nan)
    base = np.maximum(float(offer["min_instalment"]), np.where(np.isfinite(recent), recent, 0.0))
    with np.errstate(invalid="ignore"):
        term = np.clip(np.ceil(total / base), offer["min_term_months"], offer["max_term_months"])
        instalment = np.ceil(np.round(total / term * 100, 6)) / 100
    return instalment, term, np.round(total, 2)


def _money(value: float, currency: str) -> str:
    return f"{currency}{value:,.2f}" if np.isfinite(value) else "the amount due"


def allocate(
    usable_rows: list[list[bool]], key_rows: list[list[str]], capacity: Mapping[str, int] | None
) -> tuple[np.ndarray, dict[int, list[str]]]:
    """Greedy allocation over candidates already in priority order.

    Each candidate takes its first usable option whose capacity key has room
    (keys without a capacity are unlimited). Returns the option index taken
    per candidate (-1: none) and, per candidate, the keys found used up.
    """
    left = dict(capacity) if capacity is not None else {}
    picks = np.full(len(usable_rows), -1, dtype=np.int64)
    exhausted: dict[int, list[str]] = {}
    for r, (usable, keys) in enumerate(zip(usable_rows, key_rows, strict=True)):
        for k, ok in enumerate(usable):
            if not ok:
                continue
            key = keys[k]
            if key in left:
                if left[key] <= 0:
                    exhausted.setdefault(r, []).append(key)
                    continue
                left[key] -= 1
            picks[r] = k
            break
    return picks, exhausted


def _id_order_key(ids: np.ndarray) -> np.ndarray:
    """A sortable integer key per account id (numbers by value, text by text)."""
    if np.issubdtype(np.asarray(ids).dtype, np.integer):
        return np.asarray(ids, dtype=np.int64)
    return pd.factorize(pd.Series(ids).astype(str), sort=True)[0].astype(np.int64)


def decide(
    inputs: Inputs,
    policy: OutreachPolicy,
    treatments: Treatments,
    messages: Templates,
    now: pd.Timestamp,
    settings: Mapping[str, Any],
    granted: Mapping[Any, Mapping[str, Any]] | None = None,
    plan_only: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The decisions for ``inputs``.

    ``granted`` replays a recorded allocation: account -> ``{"granted": option
    index or None, "exhausted": [capacity keys found used up]}``. With
    ``plan_only`` (and no ``granted``), stop before the allocation and return
    the candidates in allocation order: ``account_id``, ``best`` (benefit of
    the best allowed option), ``usable`` and ``keys`` (per option: allowed with
    a positive benefit; the capacity key), for an allocation across batches.
    """
    frame = inputs.frame
    n = len(frame)
    evaluation = evaluate_rules(policy, frame, inputs.contacts, now, inputs.events_tz)
    horizon = evaluation.now + int(policy.planning_horizon_hours * 3_600_000_000_000)
    # Options per group of accounts that share band, segment and special path.
    columns = [
        frame["band"].astype(str),
        frame["segment"].astype(object).fillna("unknown").astype(str),
        pd.Series(evaluation.route, dtype=object),
        pd.Series(evaluation.support, dtype=object),
    ]
    factorized = [pd.factorize(c.to_numpy(dtype=object)) for c in columns]
    combined = np.zeros(n, dtype=np.int64)
    for codes, levels in factorized:
        combined = combined * (len(levels) + 1) + np.asarray(codes, dtype=np.int64)
    _, first, key_codes = np.unique(combined, return_index=True, return_inverse=True)
    uniques = [tuple(str(levels[codes[i]]) for codes, levels in factorized) for i in first.tolist()]
    group_options: list[tuple[tuple[str, str], ...]] = []
    group_wants: list[bool] = []  # the band and segment call for contact (before any special path)
    for band, segment, route, support in uniques:
        wanted = treatments.options(str(band), str(segment))
        group_wants.append(bool(wanted))
        if wanted and route:
            wanted = (("human_review", "review"),) if route == "human_review" else ()
        elif wanted and support:
            if support == "human_review":
                wanted = (("human_review", "review"),)
            elif support == "repayment_plan":
                wanted = tuple(o for o in wanted if o[0] == "repayment_plan") or (("human_review", "review"),)
            else:
                wanted = ()
        group_options.append(wanted)
    width = max((len(o) for o in group_options), default=0)
    wants = np.asarray(group_wants, dtype=bool)[key_codes] if n else np.zeros(0, dtype=bool)
    special = (evaluation.route != "") | (evaluation.support != "")
    pd_values = frame["pd"].to_numpy(dtype=np.float64)
    exposure = frame["exposure"].to_numpy(dtype=np.float64)
    value_at_risk = pd_values * np.where(np.isfinite(exposure), exposure, 0.0) * treatments.lgd
    instalment, term, total = plan_offers(
        exposure, frame["recent_payment"].to_numpy(dtype=np.float64), treatments.offer
    )
    cooling = evaluation.offer_until > evaluation.now
    channel_index = {c: k for k, c in enumerate(policy.channels)}
    earliest = np.stack([evaluation.earliest[c] for c in policy.channels]) if policy.channels else np.zeros((0, n))
    rows = np.arange(n)
    action = np.full((width, n), "", dtype=object)
    channel = np.full((width, n), "", dtype=object)
    benefit = np.full((width, n), -np.inf)
    allowed = np.zeros((width, n), dtype=bool)
    cooled = np.zeros((width, n), dtype=bool)
    for k in range(width):
        for g, options in enumerate(group_options):
            if k >= len(options):
                continue
            members = rows[key_codes == g]
            act, chan = options[k]
            cost = treatments.cost.get("human_review" if act == "human_review" else chan, 0.0)
            action[k, members] = act
            channel[k, members] = chan
            benefit[k, members] = value_at_risk[members] * treatments.effect.get(act, 0.0) - cost
            ok = np.full(len(members), messages.has(act, chan))
            if act != "human_review":
                ok &= earliest[channel_index[chan], members] <= horizon
            if act == "repayment_plan":
                cooled[k, members] = cooling[members]
                ok &= ~cooling[members] & np.isfinite(total[members])
            allowed[k, members] = ok
    has_options = (action != "").any(axis=0) if width else np.zeros(n, dtype=bool)
    # Control group: eligible for a standard treatment (not a support or suppression path).
    draw = control_draw(frame["account_id"], int(settings["seed"]))
    control = has_options & ~special & (draw < float(settings["control_share"]))
    usable = allowed & (benefit > 0)
    best = np.where(usable, benefit, -np.inf).max(axis=0) if width else np.full(n, -np.inf)
    # Allocation: accounts in order of their best allowed benefit (ties by account id) take
    # their first allowed option whose channel has capacity left.
    ids = frame["account_id"].to_numpy()
    candidates = np.flatnonzero(~control & np.isfinite(best))
    sequence = candidates[np.lexsort((_id_order_key(ids)[candidates], -best[candidates]))]
    rank = np.full(n, -1, dtype=np.int64)
    rank[sequence] = np.arange(len(sequence))
    chosen = np.full(n, -1, dtype=np.int64)
    exhausted: dict[int, list[str]] = {}
    keys = np.where(action == "human_review", "human_review", channel)
    if granted is None and plan_only:
        return pd.DataFrame(
            {
                "account_id": ids[sequence],
                "best": best[sequence],
                "usable": usable[:, sequence].T.tolist(),
                "keys": keys[:, sequence].T.tolist(),
            }
        ), {}
    if granted is not None:
        for i in sequence.tolist():
            record = granted.get(ids[i], {})
            chosen[i] = -1 if record.get("granted") is None else int(record["granted"])
            if record.get("exhausted"):
                exhausted[i] = list(record["exhausted"])
    else:
        picks, used_up = allocate(usable[:, sequence].T.tolist(), keys[:, sequence].T.tolist(), settings["capacity"])
        chosen[sequence] = picks
        exhausted = {int(sequence[r]): keys_ for r, keys_ in used_up.items()}
    return _assemble(
        inputs,
        evaluation,
        horizon,
        wants,
        action,
        channel,
        benefit,
        cooled,
        (instalment, term, total),
        chosen,
        control,
        rank,
        exhausted,
        policy,
        messages,
        now,
        settings,
    )


class _Lists:
    """One list per row, created only for rows that get an entry (the others share an empty tuple)."""

    def __init__(self, n: int) -> None:
        self.values = np.empty(n, dtype=object)
        self.values.fill(())

    def __getitem__(self, i: int) -> _Appender:
        return _Appender(self.values, i)


class _Appender:
    def __init__(self, values: np.ndarray, i: int) -> None:
        self.values, self.i = values, i

    def append(self, item: dict[str, str]) -> None:
        current = self.values[self.i]
        if isinstance(current, tuple):
            current = []
            self.values[self.i] = current
        current.append(item)


def left_keys(exhausted: Mapping[int, list[str]]) -> set[str]:
    """The capacity keys found used up by any account."""
    return {key for keys in exhausted.values() for key in keys}


def _assemble(
    inputs: Inputs,
    evaluation: RuleEvaluation,
    horizon: int,
    wants: np.ndarray,
    action: np.ndarray,
    channel: np.ndarray,
    benefit: np.ndarray,
    cooled: np.ndarray,
    plans: tuple[np.ndarray, np.ndarray, np.ndarray],
    chosen: np.ndarray,
    control: np.ndarray,
    rank: np.ndarray,
    exhausted: Mapping[int, list[str]],
    policy: OutreachPolicy,
    messages: Templates,
    now: pd.Timestamp,
    settings: Mapping[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    frame = inputs.frame
    n = len(frame)
    lang = str(settings["lang"])
    zones = zone_array(frame["timezone"] if "timezone" in frame.columns else None, n)
    # Reasons for the accounts a decision concerns (contacted, reviewed, held out as control).
    if "reasons" in frame.columns:
        reasons = frame["reasons"].to_numpy()
    else:
        reasons = np.empty(n, dtype=object)
        reasons.fill(())  # no reasons: an empty tuple, shared (immutable)
        explained = frame["explained_row"].to_numpy()
        concern = np.flatnonzero(((chosen >= 0) | control) & (explained >= 0))
        by_row = _reasons_for(inputs.explanation, explained[concern], lang)
        for i in concern.tolist():
            reasons[i] = by_row.get(int(explained[i]), ())
    blocked_col = _Lists(n)
    # Rule hits shown where they stopped a channel the account's options wanted, for today's plan.
    considered = {c: (channel == c).any(axis=0) for c in policy.channels}
    for hit in evaluation.hits:
        if hit.channel not in considered:
            continue
        masked = np.flatnonzero(hit.mask)
        show = considered[hit.channel][masked] & (hit.until > horizon)
        for k in np.flatnonzero(show).tolist():
            i = int(masked[k])
            why = hit.why if isinstance(hit.why, str) else hit.why[k]
            until = int(hit.until[k])
            if until != NEVER:
                why = f"{why}; allowed from {format_local(until, zones[i])}"
            blocked_col[i].append({"rule": hit.rule, "channel": hit.channel, "why": why})
    for i in np.flatnonzero(wants & (evaluation.route != "")).tolist():
        verdict = "no automated contact" if evaluation.route[i] == "none" else "a person reviews it"
        blocked_col[i].append(
            {"rule": str(evaluation.route_rule[i]), "channel": "*", "why": f"{evaluation.route_why[i]}: {verdict}"}
        )
    for i in np.flatnonzero(wants & (evaluation.route == "") & (evaluation.support != "")).tolist():
        blocked_col[i].append(
            {
                "rule": str(evaluation.support_rule[i]),
                "channel": "*",
                "why": f"support path: {evaluation.support[i]} instead of a payment request",
            }
        )
    for k, i in zip(*np.nonzero(cooled), strict=True):
        again = format_local(int(evaluation.offer_until[i]), zones[i])
        blocked_col[int(i)].append(
            {
                "rule": evaluation.offer_rule,
                "channel": str(channel[k, i]),
                "why": f"a plan was offered recently; allowed from {again}",
            }
        )
    used_up = {
        key: {"rule": "capacity", "channel": key, "why": f"daily {key} capacity used up"}
        for key in left_keys(exhausted)
    }
    for i, keys in exhausted.items():
        for key in dict.fromkeys(keys):
            blocked_col[i].append(dict(used_up[key]))
    act = np.full(n, "none", dtype=object)
    chan = np.full(n, "", dtype=object)
    send_after = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    offer_col = np.full(n, None, dtype=object)
    message_col = np.full(n, "", dtype=object)
    benefit_col = np.zeros(n)
    facts = _MessageFacts(frame, reasons, policy, messages, lang, settings["lender"])
    now_ns = int(now.tz_convert("UTC").value)
    instalment, term, total = plans
    first_due_text = facts.due.copy()
    first_due_text[np.asarray(pd.isna(frame["due_date"]))] = None
    for i in np.flatnonzero((chosen >= 0) & ~control).tolist():
        k = int(chosen[i])
        a, c = str(action[k, i]), str(channel[k, i])
        act[i] = a
        chan[i] = "" if a == "human_review" else c
        benefit_col[i] = round(float(benefit[k, i]), 6)
        send_after[i] = np.datetime64(now_ns if a == "human_review" else int(evaluation.earliest[c][i]), "ns")
        offer = None
        if a == "repayment_plan":
            offer = {
                "instalment": float(instalment[i]),
                "term_months": int(term[i]),
                "total": float(total[i]),
                "first_due": first_due_text[i],
            }
            offer_col[i] = offer
        message_col[i] = facts.render(i, a, c, offer)
    out = pd.DataFrame(
        {
            "account_id": frame["account_id"].to_numpy(),
            "as_of": frame["as_of"].to_numpy(),
            "pd": frame["pd"].to_numpy(dtype=np.float64),
            "band": frame["band"].to_numpy(),
            "segment": frame["segment"].to_numpy(),
            "action": act,
            "channel": chan,
            "send_after": pd.DatetimeIndex(send_after).tz_localize("UTC"),
            "timezone": zones,
            "offer": offer_col,
            "message": message_col,
            "reasons": reasons,
            "blocked": blocked_col.values,
            "expected_benefit": benefit_col,
            "control": control,
            "model_version": str(settings["model_version"]),
            "policy_version": policy.version,
        }
    )
    trail = {"evaluation": evaluation, "chosen": chosen, "rank": rank, "exhausted": exhausted}
    return out, trail


class _MessageFacts:
    """The per-account facts messages quote, as arrays, and the templates with the fixed texts filled in."""

    def __init__(
        self,
        frame: pd.DataFrame,
        reasons: np.ndarray,
        policy: OutreachPolicy,
        messages: Templates,
        lang: str,
        lender: Any,
    ) -> None:
        due = pd.DatetimeIndex(frame["due_date"])
        text = np.asarray(due.strftime("%Y-%m-%d"), dtype=object)
        text[np.asarray(due.isna())] = "the due date" if lang == "en" else "到期日"
        self.due = text
        self.amount = frame["amount"].to_numpy(dtype=np.float64)
        self.reasons = reasons
        self.currency, self.lang, self.messages = policy.currency, lang, messages
        self.templates = messages.prepared(
            lang,
            {
                "lender": str(lender["name"]),
                "lender_contact": str(lender["contact"]),
                "education": messages.education[lang],
                "plan_education": messages.plan_education[lang],
                "debt_advice": policy.debt_advice.get(lang, ""),
                "opt_out": policy.opt_out_text.get(lang, ""),
            },
        )
        self.sep = "; " if lang == "en" else "；"
        self.no_reason = "no specific reason" if lang == "en" else "无"

    def render(self, i: int, action: str, channel: str, offer: Mapping[str, Any] | None) -> str:
        """The message of account ``i``: the prepared template with its own facts."""
        currency = self.currency
        reasons = self.reasons[i] or []
        values = {
            "amount": _money(float(self.amount[i]), currency),
            "due_date": self.due[i],
            "reasons": self.sep.join(r["text"] for r in reasons) or self.no_reason,
        }
        if offer is not None:
            values["instalment"] = _money(float(offer["instalment"]), currency)
            values["term"] = str(offer["term_months"])
            values["total"] = _money(float(offer["total"]), currency)
        else:
            values["instalment"] = values["term"] = values["total"] = ""
        return self.templates[self.messages.key(action, channel)].format(**values)
