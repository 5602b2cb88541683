"""recommend(): from scores and reasons to one compliant outreach decision per account.

Steps, all vectorised over accounts except the capacity allocation (a greedy
pass over the accounts that want a contact):

1. account facts from the events as known at ``now``: time zone, flags,
   exposure, amount and date of the next payment, recent payments;
2. the policy's rules (:mod:`riskscore.outreach.rules`): per channel, blocked or
   the earliest allowed moment;
3. the treatment options for each account's band and segment (support and
   suppression routes first), each with its expected benefit
   PD x exposure x LGD x effect(action) - cost(channel), the effect from the
   treatment table or, with ``uplift``, the account's own predicted drop;
4. capacity: accounts in order of expected benefit take their first allowed
   option whose channel has capacity left;
5. a seeded control group among the customers granted a contact (a hash of
   seed and customer, so it does not depend on the others): the contact is
   withheld, and its capacity goes to the next in line (``control_capacity``);
6. messages rendered from the linted templates, and the audit record.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from riskscore.errors import PolicyError
from riskscore.outreach import audit as audit_log
from riskscore.outreach.allocation import CONTROL_CAPACITY
from riskscore.outreach.decision import ACCOUNT_EFFECT, decide
from riskscore.outreach.inputs import FLAGS, check_capacity, check_now, prepare_inputs
from riskscore.outreach.messages import DEFAULT_LENDER, Templates
from riskscore.outreach.policy import OutreachPolicy
from riskscore.outreach.treatments import Treatments
from riskscore.outreach.uplift import account_effects
from riskscore.segments import SEGMENTS

__all__ = ["FLAGS", "OUTPUT_COLUMNS", "check_lender", "decision_settings", "recommend"]

OUTPUT_COLUMNS: tuple[str, ...] = (
    "account_id",
    "customer_id",
    "as_of",
    "pd",
    "band",
    "segment",
    "action",
    "channel",
    "contact_id",
    "send_after",
    "timezone",
    "offer",
    "message",
    "reasons",
    "blocked",
    "expected_benefit",
    "control",
    "treatment",
    "model_version",
    "policy_version",
)


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
    control_capacity: str = "reuse",
    uplift: Mapping[str, Any] | None = None,
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
        Share of the customers granted a contact of a standard treatment that
        is held out (``control=True``): the draw (a hash of seed and customer)
        withholds the contact the allocation grants. Contacted and held-out
        customers are then alike but for the contact, so the read-out measures
        the effect of a contact made. Customers on a support or suppression
        path are never held out.
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
    control_capacity : {"reuse", "hold"}, default="reuse"
        What a held-out customer's granted contact does with its capacity:
        ``"reuse"`` gives it to the next customers in line (the held-out
        customer is granted as if it used none), so the contacts made equal
        what capacity allows with or without a control group; ``"hold"``
        leaves it unused (fewer contacts, the same contacted customers as
        without a control group).
    uplift : dict, optional
        Per-account effects for some actions: ``{action: UpliftModel}``
        (``predict`` is called on the explained rows' features, as
        :class:`~riskscore.outreach.UpliftModel` fitted on an experiment gives
        them) or ``{action: Series}`` of predicted drops in the chance of
        reaching 30+ DPD, indexed by ``account_id`` (any uplift library's
        output). For those actions an account's benefit is its exposure x LGD
        x the predicted drop (at most its PD; a predicted rise is no benefit)
        instead of PD x exposure x LGD x the table's effect, and a customer's
        options are ordered by benefit. Accounts without an explanation keep
        the table's effect. The run's audit record lists the actions.

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
        treatment wanted, an empty tuple when nothing did; ``treatment`` the
        action the capacity allocation granted (for a control row, the action
        it was held out from; ``none`` when nothing was granted), which
        :func:`riskscore.outreach.readout` compares by.
        ``customer_id`` and ``contact_id`` (``"<customer>@<now>"``, empty when
        no contact) tie the rows of one customer's single decision together.
    """
    policy = policy if isinstance(policy, OutreachPolicy) else OutreachPolicy.load(policy)
    table = treatments if isinstance(treatments, Treatments) else Treatments.load(treatments)
    table = table.with_costs(costs)
    messages = Templates.load(policy, templates)
    now_ts = check_now(now)
    version = model_version or str(scores.attrs.get("model_version", "unknown"))
    settings = decision_settings(policy, capacity, control_share, seed, lang, lender, version, control_capacity)
    events_tz = events_timezone or str(now_ts.tz)
    inputs = prepare_inputs(scores, explanation, events, table, now_ts, events_tz, settings["lang"])
    if uplift is not None:
        effects = account_effects(uplift, inputs.frame, explanation, table.effect)
        for action, effect in effects.items():
            inputs.frame[f"{ACCOUNT_EFFECT}{action}"] = effect
        settings = {**settings, "uplift": sorted(uplift)}
    table.check(policy, sorted(inputs.frame["band"].unique()), list(SEGMENTS))
    out, trail = decide(inputs, policy, table, messages, now_ts, settings)
    if audit is not None:
        audit_log.write(audit, inputs, out, trail, policy, table, messages, now_ts, settings)
    return out


def check_lender(lender: Mapping[str, str] | None, policy: OutreachPolicy, lang: str) -> dict[str, str]:
    """The lender identity quoted in messages: the default of ``lang`` with ``lender``'s texts, linted.

    Only ``name`` and ``contact`` are known; each must be non-empty text free of
    the policy's banned content (it reaches every message).
    """
    if lender is None:
        return dict(DEFAULT_LENDER[lang])
    if not isinstance(lender, Mapping):
        raise ValueError(f"lender must be a mapping with 'name' and 'contact'; got {type(lender).__name__}")
    unknown = sorted(str(k) for k in lender if k not in DEFAULT_LENDER[lang])
    if unknown:
        raise ValueError(f"lender: unknown key(s) {unknown}; the known keys are 'name' and 'contact'")
    out = dict(DEFAULT_LENDER[lang])
    for key, value in lender.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"lender {key} must be non-empty text; got {value!r}")
        breaches = policy.content.breaches(value)
        if breaches:
            raise PolicyError(
                f"lender {key} {value!r} {breaches[0].describe()} under policy {policy.id}: "
                "it would be quoted in every message"
            )
        out[str(key)] = value
    return out


def decision_settings(
    policy: OutreachPolicy,
    capacity: Mapping[str, int] | None,
    control_share: float,
    seed: int,
    lang: str | None,
    lender: Mapping[str, str] | None,
    model_version: str,
    control_capacity: str = "reuse",
) -> dict[str, Any]:
    """The run-wide settings of a decision, checked: what ``decide`` and the audit record use.

    ``lang`` defaults to the policy's language; ``lender`` fills in the default
    lender identity of that language.
    """
    lang = policy.language if lang is None else lang
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh'; got {lang!r}")
    if not 0 <= control_share < 1:
        raise ValueError(f"control_share must be in [0, 1); got {control_share!r}")
    if control_capacity not in CONTROL_CAPACITY:
        raise ValueError(f"control_capacity must be one of {list(CONTROL_CAPACITY)}; got {control_capacity!r}")
    return {
        "capacity": check_capacity(capacity, policy),
        "control_share": float(control_share),
        "control_capacity": control_capacity,
        "seed": int(seed),
        "lang": lang,
        "lender": check_lender(lender, policy, lang),
        "model_version": model_version,
    }
