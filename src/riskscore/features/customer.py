"""Customer features (prefix ``cust_``): the customer's *other* accounts, as known before ``as_of``.

The strongest early warning for one account is trouble on the borrower's
others: a missed loan instalment before the card goes late, a new account
opened to pay an old one. For an observation (account, ``as_of``) this family
looks at every other account of the same ``accounts.customer_id`` opened before
``as_of`` and reads only their events dated before ``as_of`` (the one
point-in-time rule). Without ``customer_id``, or when no customer holds two
accounts, the family is not used and the feature matrix is what it was.

Because an account's features need its customer's other accounts, the builder
computes this family once over the whole event data, never per range of
accounts (``WHOLE``); batch chunks hold whole customers for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from riskscore.data import EventData
from riskscore.features import engine as E
from riskscore.features._base import Context, FeatureSpec, FitOptions, SpecList, Window
from riskscore.features.status import dpd_at

NAME = "customer"
TABLE = "accounts"
WHOLE = True
OPENED = (Window("90d", 90 * E.DAY), Window("180d", 180 * E.DAY))
"""Windows of the "accounts opened recently" counts."""
_TOL = 0.005


def applies(events: EventData) -> bool:
    """Whether the data name customers at all: a ``customer_id`` that some customer holds twice."""
    accounts = events.accounts
    return "customer_id" in accounts.columns and bool(accounts["customer_id"].duplicated().any())


def fit(events: EventData, options: FitOptions) -> dict[str, Any]:
    """Nothing to learn: which tables the other accounts' features can read."""
    return {"cards": events.statements is not None, "loans": events.installments is not None}


def specs(windows: Sequence[Window], fitted: dict[str, Any]) -> list[FeatureSpec]:
    """The catalogue entries of this family, in output order."""
    specs = SpecList("cust", NAME)
    add = specs.add
    add(
        "other_accounts", None, "number of other accounts of the customer open at the scoring date", 0, "other_accounts"
    )
    for w in OPENED:
        add("opened", w, "number of other accounts of the customer opened {w}", 1, "other_accounts")
    add("dpd_now_max", None, "most days past due now on another account of the customer", 1, "other_delinquency")
    for w in windows:
        add("dpd_max", w, "most days past due on another account of the customer {w}", 1, "other_delinquency")
        add(
            "late_count",
            w,
            "number of late or missed payments on the customer's other accounts {w}",
            1,
            "other_delinquency",
        )
        add("paid", w, "amount paid on the customer's other accounts {w}", 0, "other_payments")
    if fitted.get("cards", True):
        add(
            "card_util",
            None,
            "balance over credit limit of the customer's other cards (latest statements)",
            1,
            "other_utilisation",
        )
    return specs.specs


def _siblings(events: EventData, obs: E.Observations) -> tuple[np.ndarray, np.ndarray]:
    """Every (observation, other account of its customer) pair: observation positions and account codes."""
    customer = events.accounts["customer_id"].to_numpy()
    groups = np.unique(customer, return_inverse=True)[1]
    order = np.argsort(groups, kind="stable")
    first = np.searchsorted(groups[order], np.arange(groups.max(initial=-1) + 2))
    g = groups[obs.code]
    lo, hi = first[g], first[g + 1]
    which, at = E.expand(lo, hi)
    other = order[at]
    keep = other != obs.code[which]
    return which[keep], other[keep]


def compute(ctx: Context) -> dict[str, np.ndarray]:
    """Every feature of this family, per observation in sorted order."""
    events, obs = ctx.events, ctx.obs
    n = len(obs.code)
    which, other = _siblings(events, obs)
    t = obs.as_of[which]
    accounts = events.accounts
    opened = ctx.timeline.offsets(accounts["open_date"].to_numpy())[other]
    closed = (
        ctx.timeline.offsets(accounts["close_date"].to_numpy())[other]
        if "close_date" in accounts.columns
        else np.full(len(other), ctx.timeline.span - 1)
    )
    known = opened < t  # an account opened on or after as_of is not known yet
    which, other, t, opened, closed = which[known], other[known], t[known], opened[known], closed[known]
    out: dict[str, np.ndarray] = {
        "cust_other_accounts": np.bincount(which, weights=(closed >= t).astype(np.float64), minlength=n)
    }
    for w in OPENED:
        recent = (opened >= t - w.seconds).astype(np.float64)
        out[f"cust_opened_{w.label}"] = np.bincount(which, weights=recent, minlength=n)
    # The other accounts as observations of their own at the same as_of, sorted as the engine wants.
    order = np.lexsort([t, other])
    pairs = E.Observations(other[order], t[order], order, obs.n_accounts)
    sub = Context(events, pairs, ctx.timeline, ctx.windows, {})
    w_of = which[order]
    has = np.bincount(w_of, minlength=n) > 0
    out["cust_dpd_now_max"] = _max_by(w_of, dpd_at(sub), n, has)
    late: dict[str, np.ndarray] = {w.label: np.zeros(len(order)) for w in ctx.windows}
    dpd_max: dict[str, np.ndarray] = {w.label: np.zeros(len(order)) for w in ctx.windows}
    paid: dict[str, np.ndarray] = {w.label: np.zeros(len(order)) for w in ctx.windows}
    balance = np.zeros(len(order))
    limit = np.zeros(len(order))
    if events.statements is not None and len(events.statements):
        st, _code, index = sub.table("statements", "statement_date")
        dpd = st["dpd"].to_numpy(dtype=np.float64)
        start, hi = index.start(pairs), index.before(pairs)
        last_balance = E.last(st["balance"].to_numpy(dtype=np.float64), start, hi)
        stated = hi > start
        balance = np.where(stated, np.maximum(np.nan_to_num(last_balance), 0.0), 0.0)
        limit = np.where(stated, accounts["credit_limit"].to_numpy(dtype=np.float64)[pairs.code], 0.0)
        late_n = E.Counter(dpd > 0)
        payment = st["payment"].to_numpy(dtype=np.float64)
        for w in ctx.windows:
            lo = index.before(pairs, w.seconds)
            late[w.label] += late_n(lo, hi)
            dpd_max[w.label] = np.fmax(dpd_max[w.label], np.nan_to_num(E.range_max(dpd, lo, hi)))
            paid[w.label] += np.nan_to_num(E.range_sum(payment, lo, hi))
    if events.installments is not None and len(events.installments):
        _instalments(sub, pairs, late, dpd_max, paid)
    for w in ctx.windows:
        out[f"cust_dpd_max_{w.label}"] = _max_by(w_of, dpd_max[w.label], n, has)
        out[f"cust_late_count_{w.label}"] = np.bincount(w_of, weights=late[w.label], minlength=n)
        out[f"cust_paid_{w.label}"] = np.where(has, np.bincount(w_of, weights=paid[w.label], minlength=n), np.nan)
    if ctx.fitted.get("cards", True):
        total_limit = np.bincount(w_of, weights=limit, minlength=n)
        total_balance = np.bincount(w_of, weights=balance, minlength=n)
        out["cust_card_util"] = E.safe_div(total_balance, np.where(total_limit > 0, total_limit, np.nan))
    return out


def _max_by(which: np.ndarray, values: np.ndarray, n: int, has: np.ndarray) -> np.ndarray:
    """The largest value per observation; NaN for an observation without another account."""
    out = np.zeros(n)
    np.maximum.at(out, which, np.nan_to_num(values))
    return np.where(has, out, np.nan)


def _instalments(
    sub: Context,
    pairs: E.Observations,
    late: dict[str, np.ndarray],
    dpd_max: dict[str, np.ndarray],
    paid: dict[str, np.ndarray],
) -> None:
    """Add the other accounts' loan instalments: not paid in full by the due date, days late, amounts paid."""
    from riskscore.features.instalment import Schedule

    s = Schedule(sub)
    hi = s.index.before(pairs)
    a = pairs.as_of
    inst, pay_code, _ = sub.table("installments", "due_date")
    pay_day = sub.timeline.offsets(inst["paid_date"].to_numpy())
    amount = inst["amount_paid"].fillna(0.0).to_numpy(dtype=np.float64)
    has_paid = pay_day < sub.timeline.span - 1
    by_time = np.lexsort([pay_day[has_paid], pay_code[has_paid]])
    span = sub.timeline.span
    payments = E.SortedTable(pay_code[has_paid][by_time], pay_day[has_paid][by_time], pairs.n_accounts, span)
    pay_amount = amount[has_paid][by_time]
    p_hi = payments.before(pairs)
    for w in sub.windows:
        lo = s.index.before(pairs, w.seconds)
        which, row = E.expand(lo, hi)
        # Due before as_of and not paid in full by its due date: known late or missed at as_of.
        missed = s.full_paid[row] > s.due[row]
        days = np.maximum(np.minimum(s.full_paid[row], a[which]) - s.due[row], 0) / E.DAY
        late[w.label] += np.bincount(which, weights=missed.astype(np.float64), minlength=len(a))
        most = np.zeros(len(a))
        np.maximum.at(most, which, days)
        dpd_max[w.label] = np.fmax(dpd_max[w.label], most)
        p_lo = payments.before(pairs, w.seconds)
        paid[w.label] += np.nan_to_num(E.range_sum(pay_amount, p_lo, p_hi))
