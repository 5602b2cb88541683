"""The decision: allowed treatment options, control group, capacity, and the assembled recommendation.

Per account: the treatment options the policy allows, the control draw, the
allocation of capacity, and the recommendation with what blocked what.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from riskscore.outreach.allocation import allocate, allocation_order, control_draw, left_keys
from riskscore.outreach.inputs import Inputs
from riskscore.outreach.messages import MessageFacts, Templates
from riskscore.outreach.offers import plan_offers
from riskscore.outreach.policy import OutreachPolicy
from riskscore.outreach.rules import NEVER, RuleEvaluation, evaluate_rules, format_local, zone_array
from riskscore.outreach.treatments import Treatments

__all__ = ["decide"]


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
    sequence = candidates[allocation_order(ids[candidates], best[candidates])]
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
    facts = MessageFacts(frame, reasons, policy, messages, lang, settings["lender"])
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


def _reasons_for(explanation: Any, positions: np.ndarray, lang: str) -> dict[int, list[dict[str, Any]]]:
    """Top-4 reasons (code, text, contribution) for the explanation rows at ``positions``, by position."""
    by_row: dict[int, list[dict[str, Any]]] = {}
    if explanation is None or not len(positions):
        return by_row
    rc = explanation.reason_rows(top=4, lang=lang, positions=positions, features=False)
    for p, code, text, contribution in zip(
        rc["position"].to_numpy().tolist(),
        rc["reason_code"].to_numpy(dtype=object).tolist(),
        rc["text"].to_numpy(dtype=object).tolist(),
        np.round(rc["contribution"].to_numpy(dtype=np.float64), 6).tolist(),
        strict=True,
    ):
        by_row.setdefault(p, []).append({"code": code, "text": text, "contribution": contribution})
    return by_row
