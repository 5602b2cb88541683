"""Repayment features from card statements (prefix ``stmt_``).

A statement is known at its ``statement_date``; an observation sees the
statements dated strictly before its ``as_of``. ``payment`` is what was paid
during the cycle that ends at the statement, so the payment ratio pairs it with
the *previous* statement's balance (and the minimum due printed on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.features import engine as E
from riskscore.features._base import Context, FeatureSpec, FitOptions, SpecList, Window, blank_where
from riskscore.features.extra import level_codes, own_columns
from riskscore.features.names import level_token

NAME = "repayment"
TABLE = "statements"
_TOL = 0.005  # half a cent: amounts equal up to rounding
_TREND_MIN_DAYS = 60


def fit(events: EventData, options: FitOptions) -> dict[str, Any]:
    """What the family learns from the training data: which optional columns exist, and the lender's own fields.

    The lender's own statement columns (every column outside the contract, by
    default; ``options.statement_columns`` to choose) are summarised as
    ``stmt_extra_<column>_*``: numbers by their latest and previous value, the
    change between them and the mean, minimum and maximum per window; text codes
    with few levels (a status) by the latest level and, per window, the
    statements with each level. Protected columns, identifiers, personal details
    and free text are never used (``skipped``, with the reason, in the builder's
    ``excluded_``).
    """
    table = events.statements
    assert table is not None
    own = own_columns(TABLE, table, options.excluded, options.statement_columns, "statement_columns")
    return {"min_due": "min_due" in table.columns, "extra": own.numeric, "coded": own.coded, "skipped": own.skipped}


def specs(windows: Sequence[Window], fitted: dict[str, Any]) -> list[FeatureSpec]:
    """The catalogue entries of this family, in output order."""
    specs = SpecList("stmt", NAME)
    add = specs.add

    add("history_count", None, "statements before the scoring date (0: no statement history)", 0, "statement_history")
    add("days_since_last", None, "days since the latest statement", 0, "statement_history")
    add("dpd_last", None, "days past due on the latest statement", 1, "recent_delinquency")
    add(
        "cycles_since_late",
        None,
        "statements since the last one that was past due (empty: never late)",
        -1,
        "recent_delinquency",
    )
    add("util_last", None, "utilisation (balance / credit limit) on the latest statement", 1, "utilisation")
    add("pay_ratio_last", None, "latest payment as a share of the previous balance", -1, "payment_pattern")
    add("balance_last", None, "balance on the latest statement", 0, "balance_level")
    add("balance_prev", None, "balance on the statement before the latest", 0, "balance_level")
    add("payment_last", None, "amount paid in the cycle of the latest statement", 0, "payment_pattern")
    add("payment_prev", None, "amount paid in the cycle before the latest", 0, "payment_pattern")
    add("dpd_prev", None, "days past due on the statement before the latest", 1, "recent_delinquency")
    add("util_prev", None, "utilisation on the statement before the latest", 1, "utilisation")
    add(
        "pay_ratio_prev",
        None,
        "payment as a share of the previous balance, one statement earlier",
        -1,
        "payment_pattern",
    )
    coded, sign = fitted.get("coded", {}), fitted.get("directions", {})
    for col in fitted.get("extra", []):
        d = sign.get(col, 0)
        add(f"extra_{col}_last", None, f"{col} on the latest statement", d, "statement_extra")
        add(f"extra_{col}_prev", None, f"{col} on the statement before the latest", d, "statement_extra")
        add(f"extra_{col}_change", None, f"change of {col} from the statement before the latest", 0,
            "statement_extra")  # fmt: skip
    for col in coded:
        add(f"extra_{col}_last", None, f"{col} on the latest statement", 0, "statement_extra")
    for w in windows:
        for col in fitted.get("extra", []):
            d = sign.get(col, 0)
            add(f"extra_{col}_mean", w, f"mean {col} of statements {{w}}", d, "statement_extra")
            add(f"extra_{col}_min", w, f"lowest {col} of statements {{w}}", d, "statement_extra")
            add(f"extra_{col}_max", w, f"highest {col} of statements {{w}}", d, "statement_extra")
        for col, levels in coded.items():
            for level in levels:
                add(f"extra_{col}_count_{level_token(level)}", w, f"statements {{w}} with {col} {level}", 0,
                    "statement_extra")  # fmt: skip
        add("count", w, "statements {w}", 0, "statement_history")
        add("balance_mean", w, "mean balance of statements {w}", 0, "balance_level")
        add("balance_min", w, "lowest balance of statements {w}", 0, "balance_level")
        add("balance_max", w, "highest balance of statements {w}", 0, "balance_level")
        add("payment_mean", w, "mean amount paid per statement cycle {w}", 0, "payment_pattern")
        add("payment_min", w, "lowest amount paid in a statement cycle {w}", 0, "payment_pattern")
        add("payment_max", w, "highest amount paid in a statement cycle {w}", 0, "payment_pattern")
        add("dpd_max", w, "highest days past due {w}", 1, "recent_delinquency")
        add("late_count", w, "statements past due {w}", 1, "recent_delinquency")
        add("late_streak_max", w, "longest run of consecutive past-due statements {w}", 1, "recent_delinquency")
        add("util_mean", w, "mean utilisation {w}", 1, "utilisation")
        add("util_max", w, "highest utilisation {w}", 1, "utilisation")
        add("overlimit_count", w, "statements over the credit limit {w}", 1, "over_limit")
        add("pay_ratio_mean", w, "mean payment as a share of the previous balance {w}", -1, "payment_pattern")
        add("pay_ratio_min", w, "lowest payment as a share of the previous balance {w}", -1, "payment_pattern")
        add("full_pay_count", w, "cycles where the previous balance was paid in full {w}", -1, "payment_pattern")
        if fitted.get("min_due"):
            add("min_only_count", w, "cycles where only about the minimum due was paid {w}", 1, "payment_pattern")
            add("below_min_count", w, "cycles where less than the minimum due was paid {w}", 1, "payment_pattern")
        if w.seconds >= _TREND_MIN_DAYS * 86_400:  # a trend needs at least two statements
            add("util_slope", w, "change of utilisation per 30 days {w} (least-squares slope)", 1, "utilisation")
            add("balance_growth", w, "change of balance {w}, as a share of the credit limit", 1, "balance_level")
    return specs.specs


def compute(ctx: Context) -> dict[str, Any]:
    """Every feature of this family, per observation in sorted order."""
    st, code, index = ctx.table("statements", "statement_date")
    obs = ctx.obs
    n_obs = len(obs.code)
    dpd = st["dpd"].to_numpy(dtype=np.float64)
    balance = st["balance"].to_numpy(dtype=np.float64)
    payment = st["payment"].to_numpy(dtype=np.float64)
    limit = ctx.events.accounts["credit_limit"].to_numpy(dtype=np.float64)[code]
    if "credit_limit" in st.columns:
        own = st["credit_limit"].to_numpy(dtype=np.float64)
        limit = np.where(np.isnan(own), limit, own)
    util = np.where(limit > 0, balance / np.where(limit > 0, limit, 1.0), np.nan)
    days = ctx.timeline.offsets(st["statement_date"].to_numpy()) / E.DAY
    late = dpd > 0
    prev_balance = E.previous_in_account(balance, code)
    owed = prev_balance > _TOL
    pay_ratio = np.where(owed, payment / np.where(owed, prev_balance, 1.0), np.nan)
    full_pay = owed & (payment >= prev_balance - _TOL)
    overlimit = (limit > 0) & (balance > limit + _TOL)
    # Length of the run of past-due statements ending at each row (within the account).
    first_row = index.starts[code]
    streak = np.where(late, np.arange(len(late)) - np.maximum(E.last_position(~late), first_row - 1), 0)
    next_current = E.next_position(~late)

    start = index.start(obs)
    hi = index.before(obs)
    out: dict[str, Any] = {}
    out["stmt_history_count"] = (hi - start).astype(np.float64)
    t_as_of = obs.as_of / E.DAY
    out["stmt_days_since_last"] = t_as_of - E.last(days, start, hi)
    out["stmt_dpd_last"] = E.last(dpd, start, hi)
    last_late = E.last_position(late)
    late_at = np.where(hi > start, last_late[np.maximum(hi - 1, 0)], -1)
    out["stmt_cycles_since_late"] = np.where(late_at >= start, hi - 1 - late_at, np.nan).astype(np.float64)
    out["stmt_util_last"] = E.last(util, start, hi)
    out["stmt_pay_ratio_last"] = E.last(pay_ratio, start, hi)
    out["stmt_balance_last"] = E.last(balance, start, hi)
    before_last = np.maximum(hi - 1, start)  # the range up to the statement before the latest
    out["stmt_balance_prev"] = E.last(balance, start, before_last)
    out["stmt_payment_last"] = E.last(payment, start, hi)
    out["stmt_payment_prev"] = E.last(payment, start, before_last)
    out["stmt_dpd_prev"] = E.last(dpd, start, before_last)
    out["stmt_util_prev"] = E.last(util, start, before_last)
    out["stmt_pay_ratio_prev"] = E.last(pay_ratio, start, before_last)
    extras = {col: st[col].to_numpy(dtype=np.float64, na_value=np.nan) for col in ctx.fitted.get("extra", [])}
    for col, values in extras.items():
        out[f"stmt_extra_{col}_last"] = E.last(values, start, hi)
        out[f"stmt_extra_{col}_prev"] = E.last(values, start, before_last)
        out[f"stmt_extra_{col}_change"] = out[f"stmt_extra_{col}_last"] - out[f"stmt_extra_{col}_prev"]
    coded = {col: (levels, level_codes(st[col], levels)) for col, levels in ctx.fitted.get("coded", {}).items()}
    for col, (levels, codes) in coded.items():
        latest = E.last(np.where(codes >= 0, codes, np.nan), start, hi)
        at = np.where(np.isnan(latest), -1, latest).astype(np.int64)
        out[f"stmt_extra_{col}_last"] = pd.Categorical.from_codes(at, dtype=pd.CategoricalDtype(levels))

    late_n = E.Counter(late)
    over_n = E.Counter(overlimit)
    full_n = E.Counter(full_pay)
    util_ok = ~np.isnan(util)
    util_n = E.Counter(util_ok)
    util0 = np.where(util_ok, util, 0.0)
    ratio_ok = ~np.isnan(pay_ratio)
    ratio_n = E.Counter(ratio_ok)
    ratio0 = np.where(ratio_ok, pay_ratio, 0.0)
    # Days from the account's first statement: the slope's sums then depend on this
    # account's statements only (not on where the table's timeline starts), so a
    # chunk of accounts gets the very same features as the whole book.
    own_days = days - days[index.starts[code]] if len(code) else days
    x = np.where(util_ok, own_days, 0.0)
    if ctx.fitted.get("min_due"):
        prev_min = E.previous_in_account(st["min_due"].to_numpy(dtype=np.float64), code)
        due = owed & (prev_min > _TOL)
        min_only = due & (payment >= prev_min - _TOL) & (payment <= prev_min * 1.05 + _TOL)
        min_only &= payment < prev_balance - _TOL
        below = due & (payment < prev_min - _TOL)
        min_n, below_n = E.Counter(min_only), E.Counter(below)
    for w in ctx.windows:
        lo = index.before(obs, w.seconds)
        s = w.label
        count = (hi - lo).astype(np.float64)
        for name, values in (("balance", balance), ("payment", payment)):
            out[f"stmt_{name}_mean_{s}"] = E.safe_div(E.range_sum(values, lo, hi), count)
            out[f"stmt_{name}_min_{s}"] = E.range_min(values, lo, hi)
            out[f"stmt_{name}_max_{s}"] = E.range_max(values, lo, hi)
        for col, values in extras.items():
            known = ~np.isnan(values)
            out[f"stmt_extra_{col}_mean_{s}"] = E.safe_div(
                E.range_sum(np.where(known, values, 0.0), lo, hi), E.Counter(known)(lo, hi)
            )
            out[f"stmt_extra_{col}_min_{s}"] = E.range_min(values, lo, hi)
            out[f"stmt_extra_{col}_max_{s}"] = E.range_max(values, lo, hi)
        for col, (levels, codes) in coded.items():
            for k, level in enumerate(levels):
                out[f"stmt_extra_{col}_count_{level_token(level)}_{s}"] = E.Counter(codes == k)(lo, hi)
        out[f"stmt_count_{s}"] = count
        out[f"stmt_dpd_max_{s}"] = E.range_max(dpd, lo, hi)
        out[f"stmt_late_count_{s}"] = late_n(lo, hi)
        # A run that started before the window counts only for its part inside it.
        head_end = np.minimum(np.where(lo < len(late), next_current[np.minimum(lo, len(late) - 1)], hi), hi)
        head = np.where(hi > lo, head_end - lo, 0)
        rest = np.nan_to_num(E.range_max(streak.astype(np.float64), head_end, hi))
        out[f"stmt_late_streak_max_{s}"] = np.where(hi > lo, np.maximum(head, rest), np.nan)
        n_util = util_n(lo, hi)
        sum_u = E.range_sum(util0, lo, hi)
        out[f"stmt_util_mean_{s}"] = E.safe_div(sum_u, n_util)
        out[f"stmt_util_max_{s}"] = E.range_max(util, lo, hi)
        if w.seconds >= _TREND_MIN_DAYS * E.DAY:
            sx, sxx, sxy = (E.range_sum(v, lo, hi) for v in (x, x * x, x * util0))
            den = n_util * sxx - sx * sx
            slope = E.safe_div(n_util * sxy - sx * sum_u, np.where(n_util >= 2, den, np.nan))
            out[f"stmt_util_slope_{s}"] = slope * 30.0
            limit_last = E.last(limit, lo, hi)
            growth = E.last(balance, lo, hi) - E.first(balance, lo, hi)
            out[f"stmt_balance_growth_{s}"] = np.where(count >= 2, E.safe_div(growth, limit_last), np.nan)
        out[f"stmt_overlimit_count_{s}"] = over_n(lo, hi)
        out[f"stmt_pay_ratio_mean_{s}"] = E.safe_div(E.range_sum(ratio0, lo, hi), ratio_n(lo, hi))
        out[f"stmt_pay_ratio_min_{s}"] = E.range_min(pay_ratio, lo, hi)
        out[f"stmt_full_pay_count_{s}"] = full_n(lo, hi)
        if ctx.fitted.get("min_due"):
            out[f"stmt_min_only_count_{s}"] = min_n(lo, hi)
            out[f"stmt_below_min_count_{s}"] = below_n(lo, hi)
    assert all(len(v) == n_obs for v in out.values())
    return blank_where(out, hi == start, keep="stmt_history_count")
