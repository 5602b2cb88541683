"""The decision: allowed treatment options, control group, capacity, and the assembled recommendation.

Per account: the treatment options the policy allows, the control draw, the
allocation of capacity, and the recommendation with what blocked what.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

__all__ = ["ACCOUNT_EFFECT", "decide"]

ACCOUNT_EFFECT = "effect_"
"""Prefix of a decision frame's per-account effect columns (``effect_<action>``; NaN: the table's effect)."""


_ROUTE_RANK = {"": 0, "human_review": 1, "none": 2}


def _account_gains(
    frame: pd.DataFrame,
    treatments: Treatments,
    value_at_risk: np.ndarray,
    of_row: np.ndarray,
    lead: np.ndarray,
    m: int,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per action with ``effect_<action>`` columns: each row's value at risk x its effect, and the customer's sum.

    A row without its own effect (NaN: not explained) takes the table's effect
    for its customer's lead segment, as every row does without the columns.
    """
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    columns = [c for c in frame.columns if str(c).startswith(ACCOUNT_EFFECT)]
    if not columns or not m:
        return out
    segments = frame["segment"].astype(object).fillna("unknown").astype(str).to_numpy()[lead][of_row]
    levels, codes = np.unique(segments, return_inverse=True)
    for col in columns:
        act = str(col)[len(ACCOUNT_EFFECT) :]
        own = frame[col].to_numpy(dtype=np.float64)
        table = np.array([treatments.effect_of(act, str(s)) for s in levels])[codes]
        rows = value_at_risk * np.where(np.isnan(own), table, own)
        out[act] = (rows, np.bincount(of_row, weights=rows, minlength=m))
    return out


def _customers(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each row, customer id of each unit, rows of each unit in row order as offsets).

    A unit is a customer: ``frame.customer_id``, or the account itself when the
    column is absent. Returns the unit code per row, the unit ids, and the
    row order grouped by unit with each unit's start (``np.split`` style).
    """
    if "customer_id" in frame.columns:
        of_row, uniques = pd.factorize(frame["customer_id"])
        unit_ids = np.asarray(uniques)
    else:
        of_row, unit_ids = np.arange(len(frame)), frame["account_id"].to_numpy()
    return np.asarray(of_row, dtype=np.int64), unit_ids, np.argsort(of_row, kind="stable")


def _first_per_unit(rows: np.ndarray, of_row: np.ndarray, m: int) -> np.ndarray:
    """For each unit, the first of ``rows`` (in row order) that belongs to it; -1 when none does."""
    out = np.full(m, -1, dtype=np.int64)
    codes, first = np.unique(of_row[rows], return_index=True)
    out[codes] = rows[first]
    return out


def _strictest(evaluation: RuleEvaluation, of_row: np.ndarray, m: int, ids: np.ndarray) -> None:
    """Give every account of a customer the strictest route and the first support path of any of them."""
    n = len(of_row)
    if m == n:
        return
    rank = np.array([_ROUTE_RANK[str(r)] for r in evaluation.route], dtype=np.int64)
    best = np.full(m, -1, dtype=np.int64)
    np.maximum.at(best, of_row, rank)
    source = _first_per_unit(np.flatnonzero(rank == best[of_row]), of_row, m)[of_row]
    for i in np.flatnonzero(rank != best[of_row]).tolist():
        j = int(source[i])
        evaluation.route[i] = evaluation.route[j]
        evaluation.route_rule[i] = evaluation.route_rule[j]
        evaluation.route_why[i] = f"{evaluation.route_why[j]} (account {_plain_id(ids[j])})"
    has_support = evaluation.support != ""
    support = _first_per_unit(np.flatnonzero(has_support), of_row, m)[of_row]
    for i in np.flatnonzero(~has_support & (support >= 0)).tolist():
        evaluation.support[i] = evaluation.support[support[i]]
        evaluation.support_rule[i] = evaluation.support_rule[support[i]]


def _plain_id(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


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
    """The decisions for ``inputs``: one per customer, shared by all the customer's accounts.

    The customer (``frame.customer_id``; each account its own without it) is
    the unit: its *lead* account (the largest value at risk, ties by account
    id) sets the treatment options by band and segment; the strictest route
    and any support path of its accounts hold for all; a channel is allowed
    when every account allows it; the benefit adds up the accounts' values at
    risk and counts one contact's cost; the offer is sized on the accounts'
    total balance and recent payments; the control draw is per customer and
    capacity counts contacts.

    ``granted`` replays a recorded allocation: lead account -> ``{"granted":
    option index or None, "exhausted": [capacity keys found used up]}``. With
    ``plan_only`` (and no ``granted``), stop before the allocation and return
    the candidates in allocation order: ``account_id`` (the lead), ``best``
    (benefit of the best allowed option), ``usable`` and ``keys`` (per option:
    allowed with a positive benefit; the capacity key), for an allocation
    across batches.
    """
    frame = inputs.frame
    n = len(frame)
    evaluation = evaluate_rules(policy, frame, inputs.contacts, now, inputs.events_tz)
    horizon = evaluation.now + int(policy.planning_horizon_hours * 3_600_000_000_000)
    of_row, unit_ids, grouped = _customers(frame)
    m = len(unit_ids)
    ids = frame["account_id"].to_numpy()
    _strictest(evaluation, of_row, m, ids)
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
    # The lead account of each customer: the largest value at risk, ties by account id.
    by_risk = allocation_order(ids, value_at_risk)
    lead = by_risk[np.unique(of_row[by_risk], return_index=True)[1]] if m else np.zeros(0, dtype=np.int64)
    unit_risk = np.bincount(of_row, weights=value_at_risk, minlength=m)
    total_exposure = _unit_sum(exposure, of_row, m)
    total_recent = _unit_sum(frame["recent_payment"].to_numpy(dtype=np.float64), of_row, m)
    instalment, term, total = plan_offers(total_exposure, total_recent, treatments.offer)
    cooling = np.zeros(m, dtype=bool)
    np.logical_or.at(cooling, of_row, evaluation.offer_until > evaluation.now)
    channel_index = {c: k for k, c in enumerate(policy.channels)}
    earliest = np.zeros((len(policy.channels), m), dtype=np.int64)
    for k, c in enumerate(policy.channels):
        np.maximum.at(earliest[k], of_row, evaluation.earliest[c])  # allowed when allowed for every account
    action = np.full((width, m), "", dtype=object)
    channel = np.full((width, m), "", dtype=object)
    benefit = np.full((width, m), -np.inf)
    allowed = np.zeros((width, m), dtype=bool)
    cooled = np.zeros((width, m), dtype=bool)
    lead_group = key_codes[lead] if m else np.zeros(0, dtype=np.int64)
    gains = _account_gains(frame, treatments, value_at_risk, of_row, lead, m)
    units = np.arange(m)
    for k in range(width):
        for g, options in enumerate(group_options):
            if k >= len(options):
                continue
            members = units[lead_group == g]
            act, chan = options[k]
            cost = treatments.cost.get("human_review" if act == "human_review" else chan, 0.0)
            action[k, members] = act
            channel[k, members] = chan
            if act in gains:  # the accounts' own effects (an uplift model's)
                benefit[k, members] = gains[act][1][members] - cost
            else:
                benefit[k, members] = unit_risk[members] * treatments.effect_of(act, uniques[g][1]) - cost
            ok = np.full(len(members), messages.has(act, chan))
            if act != "human_review":
                ok &= earliest[channel_index[chan], members] <= horizon
            if act == "repayment_plan":
                cooled[k, members] = cooling[members]
                ok &= ~cooling[members] & np.isfinite(total[members])
            allowed[k, members] = ok
    if (treatments.learned or gains) and width > 1:
        # Learned or per-account effects: the allowed option of highest expected benefit first (the table's
        # order breaks ties).
        order = np.argsort(-np.where(action != "", benefit, -np.inf), axis=0, kind="stable")
        action, channel, benefit, allowed, cooled = (
            np.take_along_axis(a, order, axis=0) for a in (action, channel, benefit, allowed, cooled)
        )
    has_options = (action != "").any(axis=0) if width else np.zeros(m, dtype=bool)
    # The control draw, per customer eligible for a standard treatment (not a support or suppression path);
    # it holds a customer out only if the allocation below grants it a contact.
    draw = control_draw(pd.Series(unit_ids), int(settings["seed"]))
    drawn = has_options & ~special[lead] & (draw < float(settings["control_share"])) if m else has_options
    usable = allowed & (benefit > 0)
    best = np.where(usable, benefit, -np.inf).max(axis=0) if width else np.full(m, -np.inf)
    # Allocation: customers in order of their best allowed benefit (ties by the lead account's id)
    # take their first allowed option whose channel has capacity left: capacity counts contacts.
    lead_ids = ids[lead] if m else ids[:0]
    candidates = np.flatnonzero(np.isfinite(best))
    sequence = candidates[allocation_order(lead_ids[candidates], best[candidates])]
    rank = np.full(m, -1, dtype=np.int64)
    rank[sequence] = np.arange(len(sequence))
    chosen = np.full(m, -1, dtype=np.int64)
    exhausted: dict[int, list[str]] = {}
    keys = np.where(action == "human_review", "human_review", channel)
    # A drawn customer's capacity goes to the next in line ("reuse") or stays unused ("hold").
    spare = drawn & (settings["control_capacity"] == "reuse")
    if granted is None and plan_only:
        return pd.DataFrame(
            {
                "account_id": lead_ids[sequence],
                "best": best[sequence],
                "usable": usable[:, sequence].T.tolist(),
                "keys": keys[:, sequence].T.tolist(),
                "free": spare[sequence],
            }
        ), {}
    if granted is not None:
        for u in sequence.tolist():
            record = granted.get(lead_ids[u], {})
            chosen[u] = -1 if record.get("granted") is None else int(record["granted"])
            if record.get("exhausted"):
                exhausted[u] = list(record["exhausted"])
    else:
        picks, used_up = allocate(
            usable[:, sequence].T.tolist(), keys[:, sequence].T.tolist(), settings["capacity"], spare[sequence]
        )
        chosen[sequence] = picks
        exhausted = {int(sequence[r]): keys_ for r, keys_ in used_up.items()}
    # Control group: the drawn customers among those granted a contact. Their contact is not made (its
    # capacity goes to the next in line, or stays unused), so contacted and held out are alike but for it.
    control = drawn & (chosen >= 0)
    # The treatment: the action granted (for a control row, the one it was held out from), else none.
    granted_action = action[np.maximum(chosen, 0), np.arange(m)] if width else np.full(m, "none", dtype=object)
    assigned = np.where(chosen >= 0, granted_action, "none")
    unit = _Units(
        of_row, unit_ids, lead, grouped, value_at_risk, unit_risk, earliest, np.asarray(assigned, dtype=object),
        {a: rows for a, (rows, _) in gains.items()},
    )  # fmt: skip
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
        unit,
        policy,
        messages,
        treatments,
        now,
        settings,
    )


def _unit_sum(values: np.ndarray, of_row: np.ndarray, m: int) -> np.ndarray:
    """Per customer, the sum of the finite values of its accounts; NaN when none is finite."""
    finite = np.isfinite(values)
    sums = np.bincount(of_row[finite], weights=values[finite], minlength=m)
    return np.where(np.bincount(of_row[finite], minlength=m) > 0, sums, np.nan)


@dataclass
class _Units:
    """The customers of the rows: unit per row, ids, lead row, rows grouped by unit, per-row value at risk."""

    of_row: np.ndarray
    ids: np.ndarray
    lead: np.ndarray
    grouped: np.ndarray
    value_at_risk: np.ndarray
    risk: np.ndarray  # per unit: the sum of its accounts' values at risk
    earliest: np.ndarray  # per channel (policy order) and unit
    treatment: np.ndarray  # per unit: the action granted by the allocation (held out from, for control)
    gains: dict[str, np.ndarray]  # per action with per-account effects: each row's value at risk x its effect

    def members(self) -> list[np.ndarray]:
        """The rows of each unit, in row order."""
        counts = np.bincount(self.of_row, minlength=len(self.ids))
        return np.split(self.grouped, np.cumsum(counts)[:-1]) if len(self.ids) else []


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
    unit: _Units,
    policy: OutreachPolicy,
    messages: Templates,
    treatments: Treatments,
    now: pd.Timestamp,
    settings: Mapping[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    frame = inputs.frame
    n = len(frame)
    of = unit.of_row
    lang = str(settings["lang"])
    zones = zone_array(frame["timezone"] if "timezone" in frame.columns else None, n)
    row_chosen, row_control = chosen[of], control[of]
    # Reasons for the accounts a decision concerns (contacted, reviewed, held out as control).
    if "reasons" in frame.columns:
        reasons = frame["reasons"].to_numpy()
    else:
        reasons = np.empty(n, dtype=object)
        reasons.fill(())  # no reasons: an empty tuple, shared (immutable)
        explained = frame["explained_row"].to_numpy()
        concern = np.flatnonzero(((row_chosen >= 0) | row_control) & (explained >= 0))
        by_row = _reasons_for(inputs.explanation, explained[concern], lang)
        for i in concern.tolist():
            reasons[i] = by_row.get(int(explained[i]), ())
    blocked_col = _Lists(n)
    # Rule hits shown where they stopped a channel the customer's options wanted: beyond the planning
    # horizon, or (a cap or a quiet period, not the routine contact hours) later than now.
    considered = {c: (channel == c).any(axis=0)[of] for c in policy.channels}
    routine = {r.id for r in policy.rules_of("contact_hours")}
    for hit in evaluation.hits:
        if hit.channel not in considered:
            continue
        masked = np.flatnonzero(hit.mask)
        show = considered[hit.channel][masked] & (hit.until > (horizon if hit.rule in routine else evaluation.now))
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
    members = unit.members()
    first_zone = zones[unit.lead] if len(unit.lead) else zones[:0]
    for k, u in zip(*np.nonzero(cooled), strict=True):
        again = format_local(int(evaluation.offer_until[members[u]].max()), first_zone[u])
        for i in members[u].tolist():
            blocked_col[i].append(
                {
                    "rule": evaluation.offer_rule,
                    "channel": str(channel[k, u]),
                    "why": f"a plan was offered recently; allowed from {again}",
                }
            )
    used_up = {
        key: {"rule": "capacity", "channel": key, "why": f"daily {key} capacity used up"}
        for key in left_keys(exhausted)
    }
    for u, keys in exhausted.items():
        for i in members[u].tolist():
            for key in dict.fromkeys(keys):
                blocked_col[i].append(dict(used_up[key]))
    ids = frame["account_id"].to_numpy()
    if len(unit.ids) < n:
        _share_blocked(blocked_col, members, ids)
    act = np.full(n, "none", dtype=object)
    chan = np.full(n, "", dtype=object)
    contact = np.full(n, "", dtype=object)
    send_after = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    offer_col = np.full(n, None, dtype=object)
    message_col = np.full(n, "", dtype=object)
    benefit_col = np.zeros(n)
    facts = MessageFacts(frame, reasons, policy, messages, lang, settings["lender"])
    now_ns = int(now.tz_convert("UTC").value)
    instalment, term, total = plans
    due = pd.DatetimeIndex(frame["due_date"]).to_numpy()
    stamp = now.tz_convert("UTC").strftime("%Y-%m-%dT%H:%MZ")
    channel_index = {c: k for k, c in enumerate(policy.channels)}
    picked = np.flatnonzero((chosen >= 0) & ~control)
    m = len(unit.ids)
    unit_act = np.full(m, "none", dtype=object)
    unit_chan = np.full(m, "", dtype=object)
    unit_text = np.full(m, "", dtype=object)
    unit_offer = np.full(m, None, dtype=object)
    unit_when = np.full(m, np.datetime64("NaT"), dtype="datetime64[ns]")
    unit_benefit = np.zeros(m)
    row_gain = unit.value_at_risk.copy()  # per row, the chosen action's value at risk x effect (set below)
    sizes = np.bincount(of, minlength=m)
    lead_segment = frame["segment"].astype(object).fillna("unknown").astype(str).to_numpy()
    for u in picked.tolist():
        k = int(chosen[u])
        rows = members[u]
        a, c = str(action[k, u]), str(channel[k, u])
        offer = None
        if a == "repayment_plan":
            first = due[rows][~np.isnat(due[rows])]
            offer = {
                "instalment": float(instalment[u]),
                "term_months": int(term[u]),
                "total": float(total[u]),
                "first_due": pd.Timestamp(first.min()).strftime("%Y-%m-%d") if len(first) else None,
            }
        unit_offer[u] = offer
        unit_text[u] = facts.render(int(unit.lead[u]), a, c, offer, rows if len(rows) > 1 else None)
        unit_act[u], unit_chan[u] = a, ("" if a == "human_review" else c)
        unit_when[u] = np.datetime64(now_ns if a == "human_review" else int(unit.earliest[channel_index[c], u]), "ns")
        unit_benefit[u] = benefit[k, u]
        if a in unit.gains:
            row_gain[rows] = unit.gains[a][rows]
        else:
            row_gain[rows] = unit.value_at_risk[rows] * treatments.effect_of(a, lead_segment[int(unit.lead[u])])
    contacted = np.isin(of, picked)
    at, whose = np.flatnonzero(contacted), of[contacted]
    act[at], chan[at], message_col[at] = unit_act[whose], unit_chan[whose], unit_text[whose]
    offer_col[at], send_after[at] = unit_offer[whose], unit_when[whose]
    contact[at] = [f"{_plain_id(unit.ids[u])}@{stamp}" for u in whose.tolist()]
    # A customer's benefit shared by its accounts: each its own value at risk x effect, the cost split evenly.
    minus_cost = unit_benefit - np.bincount(of[at], weights=row_gain[at], minlength=m)
    share = np.where(sizes[whose] == 1, unit_benefit[whose], row_gain[at] + minus_cost[whose] / sizes[whose])
    benefit_col[at] = np.round(share, 6)
    out = pd.DataFrame(
        {
            "account_id": ids,
            "customer_id": unit.ids[of] if len(of) else ids,
            "as_of": frame["as_of"].to_numpy(),
            "pd": frame["pd"].to_numpy(dtype=np.float64),
            "band": frame["band"].to_numpy(),
            "segment": frame["segment"].to_numpy(),
            "action": act,
            "channel": chan,
            "contact_id": contact,
            "send_after": pd.DatetimeIndex(send_after).tz_localize("UTC"),
            "timezone": zones,
            "offer": offer_col,
            "message": message_col,
            "reasons": reasons,
            "blocked": blocked_col.values,
            "expected_benefit": benefit_col,
            "control": row_control,
            "treatment": unit.treatment[of] if len(of) else np.full(0, "none", dtype=object),
            "model_version": str(settings["model_version"]),
            "policy_version": policy.version,
        }
    )
    trail = {"evaluation": evaluation, "chosen": chosen[of], "rank": rank[of],
             "exhausted": {int(i): keys for u, keys in exhausted.items() for i in members[u].tolist()}}  # fmt: skip
    return out, trail


def _share_blocked(blocked: _Lists, members: list[np.ndarray], ids: np.ndarray) -> None:
    """What stopped one account of a customer stopped the customer's contact: shown on each of its accounts."""
    for rows in members:
        if len(rows) < 2:
            continue
        own = {int(i): list(blocked.values[i]) for i in rows.tolist()}
        for i in rows.tolist():
            seen = {(e["rule"], e["channel"], e["why"]) for e in own[i]}
            for j in rows.tolist():
                for entry in own[j] if j != i else ():
                    key = (entry["rule"], entry["channel"], entry["why"])
                    if key not in seen:
                        seen.add(key)
                        blocked[i].append({**entry, "why": f"{entry['why']} (account {_plain_id(ids[j])})"})


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
