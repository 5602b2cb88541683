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
import math
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
    """Everything a decision depends on, one row per account (in the order given)."""

    frame: pd.DataFrame  # account_id, as_of, pd, band, segment, evidence, reasons, timezone, flags, facts
    contacts: pd.DataFrame | None  # the accounts' contacts known at now (naive times in events_tz)
    events_tz: str


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
        the order of ``scores``.
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
    segment, evidence, reasons = _segments_and_reasons(frame, explanation, treatments, lang)
    frame["segment"] = pd.Series(segment, dtype=object).to_numpy()
    frame["evidence"] = pd.Series(evidence, dtype=object).to_numpy()
    frame["reasons"] = pd.Series(reasons, dtype=object).to_numpy()
    contacts = None
    if events.contacts is not None:
        c = events.contacts
        keep = np.isin(account_codes(frame["account_id"].sort_values(), c["account_id"]), -1, invert=True)
        c = c.loc[keep & (c["timestamp"] < now_naive).to_numpy()]
        cols = [col for col in ("account_id", "timestamp", "channel", "outcome", "direction") if col in c.columns]
        contacts = c[cols].reset_index(drop=True)
    return Inputs(frame=frame, contacts=contacts, events_tz=events_tz)


def _segments_and_reasons(
    frame: pd.DataFrame, explanation: Any, treatments: Treatments, lang: str
) -> tuple[list[Any], list[Any], list[Any]]:
    n = len(frame)
    needs = np.array(
        [any(t[2] for t in treatments.entries if b in t[0]) for b in frame["band"]],
        dtype=bool,
    )
    segment: list[Any] = [None] * n
    evidence: list[Any] = [()] * n
    reasons: list[Any] = [[] for _ in range(n)]
    if explanation is None:
        if needs.any():
            ids = frame.loc[needs, "account_id"].head(5).tolist()
            raise ValueError(
                f"{int(needs.sum())} accounts are in bands that call for contact but no explanation was given, "
                f"e.g. {ids}: pass model.explain(X) for them"
            )
        return segment, evidence, reasons
    index = explanation.values.index
    key = pd.MultiIndex.from_arrays([frame["account_id"], frame["as_of"]])
    pos = index.get_indexer(key) if isinstance(index, pd.MultiIndex) else np.full(n, -1)
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
        seg_values = segs["segment"].astype(str).to_numpy()
        ev_values = segs["evidence"].to_numpy()
        rc = explanation.reason_codes(top=4, lang=lang)
        rc_key = pd.MultiIndex.from_arrays([rc.iloc[:, 0], rc.iloc[:, 1]])
        rc_pos = index.get_indexer(rc_key)
        by_row: dict[int, list[dict[str, Any]]] = {}
        for p, code, text, contribution in zip(
            rc_pos, rc["reason_code"], rc["text"], rc["contribution"].to_numpy(), strict=True
        ):
            by_row.setdefault(int(p), []).append(
                {"code": str(code), "text": str(text), "contribution": round(float(contribution), 6)}
            )
        for i in have:
            p = int(pos[i])
            segment[i] = str(seg_values[p])
            evidence[i] = tuple(ev_values[p])
            reasons[i] = by_row.get(p, [])
    return segment, evidence, reasons


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
    """A uniform number in [0, 1) per account from SHA-256 of (seed, account_id): stable and replayable."""
    out = np.empty(len(account_ids))
    for i, a in enumerate(account_ids):
        digest = hashlib.sha256(f"riskscore-control:{seed}:{a}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2**64
    return out


def plan_offer(exposure: float, recent: float, offer: Mapping[str, float], due: Any) -> dict[str, Any] | None:
    """A repayment plan: instalment from recent payments, term capped; None when nothing is owed."""
    if not np.isfinite(exposure) or exposure <= 0:
        return None
    base = max(float(offer["min_instalment"]), float(recent) if np.isfinite(recent) else 0.0)
    term = int(min(max(math.ceil(exposure / base), offer["min_term_months"]), offer["max_term_months"]))
    instalment = math.ceil(exposure / term * 100) / 100
    first = pd.Timestamp(due).date().isoformat() if pd.notna(due) else None
    return {"instalment": instalment, "term_months": term, "total": round(float(exposure), 2), "first_due": first}


def _money(value: float, currency: str) -> str:
    return f"{currency}{value:,.2f}" if np.isfinite(value) else "the amount due"


def decide(
    inputs: Inputs,
    policy: OutreachPolicy,
    treatments: Treatments,
    messages: Templates,
    now: pd.Timestamp,
    settings: Mapping[str, Any],
    granted: Mapping[Any, Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The decisions for ``inputs``.

    ``granted`` replays a recorded allocation: account -> ``{"granted": option
    index or None, "exhausted": [capacity keys found used up]}``.
    """
    frame = inputs.frame
    n = len(frame)
    evaluation = evaluate_rules(policy, frame, inputs.contacts, now, inputs.events_tz)
    horizon = evaluation.now + int(policy.planning_horizon_hours * 3_600_000_000_000)
    lang = str(settings["lang"])
    pd_values = frame["pd"].to_numpy(dtype=np.float64)
    exposure = frame["exposure"].to_numpy(dtype=np.float64)
    exposure_known = np.where(np.isfinite(exposure), exposure, 0.0)
    # Options per account: (action, channel, benefit, allowed, why-not)
    options: list[list[tuple[str, str, float, bool, str]]] = [[] for _ in range(n)]
    route_of: list[str] = [""] * n
    offers: list[dict[str, Any] | None] = [None] * n
    bands = frame["band"].to_numpy(dtype=object)
    segments = frame["segment"].to_numpy(dtype=object)
    recent = frame["recent_payment"].to_numpy(dtype=np.float64)
    due_dates = frame["due_date"].to_numpy()
    for i in range(n):
        segment: Any = segments[i]
        wanted = treatments.options(str(bands[i]), "unknown" if pd.isna(segment) else str(segment))
        if not wanted:
            continue
        if evaluation.route[i]:
            route_of[i] = "route"
            wanted = (("human_review", "review"),) if evaluation.route[i] == "human_review" else ()
        elif evaluation.support[i]:
            route_of[i] = "support"
            action = str(evaluation.support[i])
            if action == "human_review":
                wanted = (("human_review", "review"),)
            elif action == "repayment_plan":
                wanted = tuple(o for o in wanted if o[0] == "repayment_plan") or (("human_review", "review"),)
            else:
                wanted = ()
        for action, channel in wanted:
            cost = treatments.cost.get("human_review" if action == "human_review" else channel, 0.0)
            benefit = pd_values[i] * exposure_known[i] * treatments.lgd * treatments.effect.get(action, 0.0) - cost
            allowed, why = True, ""
            if action != "human_review" and evaluation.earliest[channel][i] > horizon:
                allowed, why = False, "blocked"
            if action == "repayment_plan":
                if evaluation.offer_until[i] > evaluation.now:
                    allowed, why = False, "offer cooldown"
                offers[i] = plan_offer(exposure[i], recent[i], treatments.offer, due_dates[i])
                if offers[i] is None:
                    allowed, why = False, "nothing to repay"
            if not messages.has(action, channel):
                allowed, why = False, "no template"
            options[i].append((action, channel, float(benefit), allowed, why))
    # Control group: eligible for a standard treatment (not a support or suppression path).
    eligible = np.array([bool(options[i]) and not route_of[i] for i in range(n)], dtype=bool)
    draw = control_draw(frame["account_id"], int(settings["seed"]))
    control = eligible & (draw < float(settings["control_share"]))
    # Allocation in order of the best allowed benefit, ties by account id.
    best = np.array(
        [max((o[2] for o in options[i] if o[3] and o[2] > 0), default=-np.inf) for i in range(n)], dtype=np.float64
    )
    capacity = settings["capacity"]
    left = dict(capacity) if capacity is not None else None
    chosen = np.full(n, -1, dtype=np.int64)
    rank = np.full(n, -1, dtype=np.int64)
    exhausted: list[list[str]] = [[] for _ in range(n)]
    candidates = np.flatnonzero(~control & np.isfinite(best))
    ids = frame["account_id"].to_numpy()
    sequence = sorted(candidates.tolist(), key=lambda i: (-best[i], _sort_key(ids[i])))
    for r, i in enumerate(sequence):
        rank[i] = r
        if granted is not None:
            g = granted.get(ids[i], {})
            chosen[i] = -1 if g.get("granted") is None else int(g["granted"])
            exhausted[i] = list(g.get("exhausted", []))
            continue
        for j, (action, channel, benefit, allowed, _) in enumerate(options[i]):
            if not allowed or benefit <= 0:
                continue
            key = "human_review" if action == "human_review" else channel
            if left is not None and key in left:
                if left[key] <= 0:
                    exhausted[i].append(key)
                    continue
                left[key] -= 1
            chosen[i] = j
            break
    return _assemble(
        frame,
        evaluation,
        options,
        offers,
        chosen,
        control,
        rank,
        exhausted,
        route_of,
        policy,
        messages,
        now,
        settings,
        lang,
    )


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, np.integer)) else (1, str(value))


def _assemble(
    frame: pd.DataFrame,
    evaluation: RuleEvaluation,
    options: list[list[tuple[str, str, float, bool, str]]],
    offers: list[dict[str, Any] | None],
    chosen: np.ndarray,
    control: np.ndarray,
    rank: np.ndarray,
    exhausted: list[list[str]],
    route_of: list[str],
    policy: OutreachPolicy,
    messages: Templates,
    now: pd.Timestamp,
    settings: Mapping[str, Any],
    lang: str,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    n = len(frame)
    horizon = evaluation.now + int(policy.planning_horizon_hours * 3_600_000_000_000)
    hits = evaluation.hits_by_account()
    lender = settings["lender"]
    action_col = np.full(n, "none", dtype=object)
    channel_col = np.full(n, "", dtype=object)
    send_after = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    offer_col: list[Any] = [None] * n
    message_col = np.full(n, "", dtype=object)
    blocked_col: list[list[dict[str, str]]] = [[] for _ in range(n)]
    benefit_col = np.zeros(n)
    zones = zone_array(frame["timezone"] if "timezone" in frame.columns else None, n)
    for i in range(n):
        considered = {ch for _, ch, _, _, _ in options[i]}
        zone = zones[i]
        for hit, k in hits[i]:
            until = int(hit.until[k])
            if hit.channel in considered and until > horizon:
                why = hit.why if isinstance(hit.why, str) else hit.why[k]
                if until != NEVER:
                    why = f"{why}; allowed from {format_local(until, zone)}"
                blocked_col[i].append({"rule": hit.rule, "channel": hit.channel, "why": why})
        if route_of[i] == "route":
            blocked_col[i].append(
                {
                    "rule": str(evaluation.route_rule[i]),
                    "channel": "*",
                    "why": f"{evaluation.route_why[i]}: "
                    + ("no automated contact" if evaluation.route[i] == "none" else "a person reviews it"),
                }
            )
        elif route_of[i] == "support":
            blocked_col[i].append(
                {
                    "rule": str(evaluation.support_rule[i]),
                    "channel": "*",
                    "why": f"support path: {evaluation.support[i]} instead of a payment request",
                }
            )
        for _, channel, _, allowed, why in options[i]:
            if not allowed and why == "offer cooldown":
                again = format_local(int(evaluation.offer_until[i]), zone)
                blocked_col[i].append(
                    {
                        "rule": evaluation.offer_rule,
                        "channel": channel,
                        "why": f"a plan was offered recently; allowed from {again}",
                    }
                )
        for key in dict.fromkeys(exhausted[i]):
            blocked_col[i].append({"rule": "capacity", "channel": key, "why": f"daily {key} capacity used up"})
        if control[i]:
            continue
        j = int(chosen[i])
        if j < 0:
            continue
        action, channel, benefit, _, _ = options[i][j]
        action_col[i] = action
        channel_col[i] = "" if action == "human_review" else channel
        benefit_col[i] = round(benefit, 6)
        send_after[i] = np.datetime64(
            int(now.tz_convert("UTC").value if action == "human_review" else evaluation.earliest[channel][i]), "ns"
        )
        offer = offers[i] if action == "repayment_plan" else None
        offer_col[i] = offer
        values = _message_values(frame, i, offer, policy, messages, lang, lender)
        message_col[i] = messages.render(action, channel, lang, values)
    out = pd.DataFrame(
        {
            "account_id": frame["account_id"].to_numpy(),
            "as_of": frame["as_of"].to_numpy(),
            "pd": frame["pd"].to_numpy(dtype=np.float64),
            "band": frame["band"].to_numpy(),
            "segment": frame["segment"].to_numpy(),
            "action": action_col,
            "channel": channel_col,
            "send_after": pd.DatetimeIndex(send_after).tz_localize("UTC"),
            "timezone": zones,
            "offer": offer_col,
            "message": message_col,
            "reasons": frame["reasons"].to_numpy(),
            "blocked": blocked_col,
            "expected_benefit": benefit_col,
            "control": control,
            "model_version": str(settings["model_version"]),
            "policy_version": policy.version,
        }
    )
    trail = {
        "evaluation": evaluation,
        "options": options,
        "chosen": chosen,
        "rank": rank,
        "hits": hits,
        "exhausted": exhausted,
    }
    return out, trail


def _message_values(
    frame: pd.DataFrame,
    i: int,
    offer: Mapping[str, Any] | None,
    policy: OutreachPolicy,
    messages: Templates,
    lang: str,
    lender: Mapping[str, str],
) -> dict[str, str]:
    due: Any = frame["due_date"].to_numpy()[i]
    due_text = pd.Timestamp(due).date().isoformat() if pd.notna(due) else ("the due date" if lang == "en" else "到期日")
    reasons: list[dict[str, Any]] = list(frame["reasons"].to_numpy()[i] or [])
    sep = "; " if lang == "en" else "；"
    values = {
        "lender": lender["name"],
        "lender_contact": lender["contact"],
        "amount": _money(float(frame["amount"].to_numpy(dtype=np.float64)[i]), policy.currency),
        "due_date": due_text,
        "education": messages.education[lang],
        "plan_education": messages.plan_education[lang],
        "debt_advice": policy.debt_advice.get(lang, ""),
        "opt_out": policy.opt_out_text.get(lang, ""),
        "reasons": sep.join(r["text"] for r in reasons) or ("no specific reason" if lang == "en" else "无"),
    }
    if offer is not None:
        values["instalment"] = _money(float(offer["instalment"]), policy.currency)
        values["term"] = str(offer["term_months"])
        values["total"] = _money(float(offer["total"]), policy.currency)
    return values
