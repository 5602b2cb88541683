"""Instalment features from loan schedules and their payments (prefix ``inst_``).

An instalment is an obligation known at its ``due_date``; each payment row is
known at its ``paid_date``. For an observation at ``as_of`` only instalments due
before ``as_of`` count, and only payments made before ``as_of``: an instalment due
before ``as_of`` but paid on or after it is unpaid at ``as_of``, late by
``as_of - due_date`` days (DESIGN.md section 2).

The instalment's *full-payment date* is the first payment date at which the
payments made so far cover ``amount_due``. Its status at ``as_of`` follows from
that one date: on time when it is on or before the due date, paid late when it is
between the due date and ``as_of``, unpaid otherwise. Partial payments before
``as_of`` count towards the share paid and the outstanding amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from riskscore.data import EventData
from riskscore.features import engine as E
from riskscore.features._base import Context, FeatureSpec, FitOptions, SpecList, Window, blank_where
from riskscore.features.extra import contract_columns

NAME = "instalment"
TABLE = "installments"
_TOL = 0.005


def fit(events: EventData, options: FitOptions) -> dict[str, Any]:
    """Nothing to learn: the instalment features need only the contract's columns.

    The lender's own instalment columns are reported under ``skipped``, not
    summarised: a row is one payment of a scheduled instalment, so whether a
    value is known at the due date or at the payment date is not ours to guess.
    """
    table = events.installments
    own = [] if table is None else [c for c in table.columns if c not in contract_columns(TABLE)]
    why = "the lender's own instalment columns are not summarised: a value may be known at the due or the paid date"
    return {"skipped": {f"{TABLE}.{c}": why for c in own}} if own else {}


def specs(windows: Sequence[Window], fitted: dict[str, Any]) -> list[FeatureSpec]:
    """The catalogue entries of this family, in output order."""
    specs = SpecList("inst", NAME, "due in the last {days} days")
    add = specs.add

    add(
        "history_count",
        None,
        "instalments due before the scoring date (0: no instalment history)",
        0,
        "instalment_history",
    )
    add("dpd_now", None, "days past due at the scoring date (oldest unpaid instalment)", 1, "instalment_arrears")
    add(
        "outstanding_due",
        None,
        "amount of instalments due and still unpaid at the scoring date",
        1,
        "instalment_arrears",
    )
    add(
        "days_since_missed",
        None,
        "days since the due date of the last instalment not paid on time (empty: none missed)",
        -1,
        "instalment_lateness",
    )
    add(
        "ontime_streak", None, "consecutive instalments paid on time, up to the scoring date", -1, "instalment_lateness"
    )
    add("days_since_last_payment", None, "days since the last instalment payment", 1, "instalment_lateness")
    add("amount_due_last", None, "amount of the latest instalment due", 0, "instalment_history")
    for w in windows:
        add("due_count", w, "instalments {w}", 0, "instalment_history")
        add("ontime_count", w, "instalments {w} paid in full by their due date", -1, "instalment_lateness")
        add("late_count", w, "instalments {w} paid in full after their due date", 1, "instalment_lateness")
        add("unpaid_count", w, "instalments {w} not paid in full at the scoring date", 1, "instalment_arrears")
        add("days_late_mean", w, "mean days late of instalments {w}", 1, "instalment_lateness")
        add("days_late_max", w, "most days late of an instalment {w}", 1, "instalment_lateness")
        add(
            "paid_share", w, "share of the amount of instalments {w} paid by the scoring date", -1, "instalment_arrears"
        )
    return specs.specs


class Schedule:
    """Instalment-level arrays (one element per instalment) and their payment rows."""

    def __init__(self, ctx: Context) -> None:
        inst, code, _ = ctx.table("installments", "due_date")
        tl = ctx.timeline
        due = tl.offsets(inst["due_date"].to_numpy())
        paid = tl.offsets(inst["paid_date"].to_numpy())
        number = inst["instalment_no"].to_numpy(dtype=np.int64) if "instalment_no" in inst.columns else None
        keys = [paid, due, code] if number is None else [paid, number, due, code]
        order = np.lexsort(keys)  # EventData sorts by due and paid date; instalment_no may interleave
        code, due, paid = code[order], due[order], paid[order]
        amount_due = inst["amount_due"].to_numpy(dtype=np.float64)[order]
        amount_paid = inst["amount_paid"].to_numpy(dtype=np.float64)[order]
        new = np.ones(len(code), dtype=bool)
        if len(code) > 1:
            same = (code[1:] == code[:-1]) & (due[1:] == due[:-1])
            if number is not None:
                same &= number[order][1:] == number[order][:-1]
            new[1:] = ~same
        group = np.cumsum(new) - 1
        g_start = np.flatnonzero(new)
        # Paid so far, per payment row, summed within its instalment in date order (exact).
        position = np.arange(len(code)) - g_start[group]
        cum = amount_paid.copy()
        for j in range(1, int(position.max(initial=0)) + 1):
            rows = np.flatnonzero(position == j)
            cum[rows] = cum[rows - 1] + amount_paid[rows]
        self.row_cum = cum
        self.row_key = group.astype(np.int64) * tl.span + paid
        self.g_start = g_start
        self.code = code[g_start]
        self.due = due[g_start]
        self.amount_due = amount_due[g_start]
        covered = (cum >= amount_due - _TOL) & (paid < tl.span - 1)
        first_cover = np.minimum.reduceat(np.where(covered, paid, tl.span - 1), g_start) if len(g_start) else paid
        self.full_paid = np.where(self.amount_due <= _TOL, self.due, first_cover)
        self.index = E.SortedTable(self.code, self.due, ctx.obs.n_accounts, tl.span)
        # Payments in time order, for "days since last payment".
        has_paid = paid < tl.span - 1
        pay_order = np.lexsort([paid[has_paid], code[has_paid]])
        self.pay_time = paid[has_paid][pay_order]
        self.payments = E.SortedTable(code[has_paid][pay_order], self.pay_time, ctx.obs.n_accounts, tl.span)
        # Running maximum of the full-payment date within the account: the first
        # instalment still open at as_of is the first whose running maximum >= as_of.
        self.running_full = (
            np.maximum.accumulate(self.code.astype(np.int64) * tl.span + self.full_paid)
            if len(self.code)
            else self.code.astype(np.int64)
        )

    def first_open(self, obs: E.Observations, start: np.ndarray) -> np.ndarray:
        """Index of the oldest instalment still unpaid at ``as_of``.

        Past the account's instalments due before ``as_of`` when there is none.
        """
        found = np.searchsorted(self.running_full, obs.code * self.index.span + obs.as_of, side="left")
        return np.maximum(found, start)

    def paid_before(self, inst: np.ndarray, as_of: np.ndarray, span: int) -> np.ndarray:
        """Amount paid on instalments ``inst`` by payments made before ``as_of``."""
        p = np.searchsorted(self.row_key, inst.astype(np.int64) * span + as_of, side="left")
        out = np.zeros(len(inst))
        some = p > self.g_start[inst]
        out[some] = self.row_cum[p[some] - 1]
        return out


def compute(ctx: Context) -> dict[str, np.ndarray]:
    """Every feature of this family, per observation in sorted order."""
    obs, span = ctx.obs, ctx.timeline.span
    s = Schedule(ctx)
    n_obs = len(obs.code)
    start = s.index.start(obs)
    hi = s.index.before(obs)
    a = obs.as_of
    out: dict[str, np.ndarray] = {"inst_history_count": (hi - start).astype(np.float64)}

    # Oldest instalment open at as_of, and everything open at as_of from it on.
    first_open = s.first_open(obs, start)
    has_open = first_open < hi
    out["inst_dpd_now"] = np.where(has_open, (a - s.due[np.minimum(first_open, len(s.due) - 1)]) / E.DAY, 0.0)
    which, inst = E.expand(np.where(has_open, first_open, hi), hi)
    still_open = s.full_paid[inst] >= a[which]
    owed = np.where(still_open, s.amount_due[inst] - s.paid_before(inst, a[which], span), 0.0)
    out["inst_outstanding_due"] = np.bincount(which, weights=np.maximum(owed, 0.0), minlength=n_obs)

    missed = s.full_paid > s.due
    last_missed = E.last_position(missed)
    lm = np.where(hi > start, last_missed[np.maximum(hi - 1, 0)], -1)
    any_missed = lm >= start
    out["inst_days_since_missed"] = np.where(
        any_missed, (a - s.due[np.maximum(lm, 0)]) / E.DAY if len(s.due) else np.nan, np.nan
    )
    out["inst_ontime_streak"] = np.where(any_missed, hi - 1 - lm, hi - start).astype(np.float64)
    p_hi = s.payments.before(obs)
    out["inst_days_since_last_payment"] = (
        a - E.last(s.pay_time.astype(np.float64), s.payments.start(obs), p_hi)
    ) / E.DAY
    out["inst_amount_due_last"] = E.last(s.amount_due, start, hi)

    # Windows: every (observation, instalment due in the longest window) pair.
    lo_max = s.index.before(obs, ctx.max_window.seconds)
    which, inst = E.expand(lo_max, hi)
    due, full, a_pair = s.due[inst], s.full_paid[inst], a[which]
    on_time = full <= due
    open_ = full >= a_pair
    late = ~on_time & ~open_
    days_late = np.maximum(np.minimum(full, a_pair) - due, 0) / E.DAY
    paid = np.where(open_, np.minimum(s.paid_before(inst, a_pair, span), s.amount_due[inst]), s.amount_due[inst])
    pairs = E.SortedTable(which, due, n_obs, span)
    run_end = np.searchsorted(which, np.arange(n_obs), side="right")
    counts = {k: E.Counter(v) for k, v in (("ontime", on_time), ("late", late), ("unpaid", open_))}
    for w in ctx.windows:
        lo = pairs.before(E.Observations(np.arange(n_obs), a, np.arange(n_obs), n_obs), w.seconds)
        lab = w.label
        n = (run_end - lo).astype(np.float64)
        out[f"inst_due_count_{lab}"] = n
        out[f"inst_ontime_count_{lab}"] = counts["ontime"](lo, run_end)
        out[f"inst_late_count_{lab}"] = counts["late"](lo, run_end)
        out[f"inst_unpaid_count_{lab}"] = counts["unpaid"](lo, run_end)
        out[f"inst_days_late_mean_{lab}"] = E.safe_div(E.range_sum(days_late, lo, run_end), n)
        out[f"inst_days_late_max_{lab}"] = E.range_max(days_late, lo, run_end)
        out[f"inst_paid_share_{lab}"] = E.safe_div(
            E.range_sum(paid, lo, run_end), E.range_sum(s.amount_due[inst], lo, run_end)
        )
    assert all(len(v) == n_obs for v in out.values())
    return blank_where(out, hi == start, keep="inst_history_count")
