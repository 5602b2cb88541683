"""Spending features from card transactions (prefix ``txn_``).

A transaction is known at its ``timestamp``; an observation sees the ones strictly
before its ``as_of``. Amounts are taken as given (refunds may be negative); shares
are shares of gross spending (positive amounts). Cash advances are the rows whose
``channel`` is ``cash_advance`` or ``atm`` (a card used at a cash machine).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.features import engine as E
from riskscore.features._base import Context, FeatureSpec, FitOptions, SpecList, Window, blank_where
from riskscore.features.extra import level_codes, own_columns
from riskscore.features.names import level_token

NAME = "spending"
TABLE = "transactions"

ESSENTIAL_CATEGORIES: frozenset[str] = frozenset(
    {
        "grocery",
        "groceries",
        "supermarket",
        "utilities",
        "utility",
        "fuel",
        "health",
        "healthcare",
        "pharmacy",
        "medical",
        "transport",
        "rent",
        "housing",
        "education",
        "insurance",
        "childcare",
        "telecom",
    }
)
"""Default essential categories (matched case-insensitively); others are discretionary."""

_MAX_CATEGORIES = 24


def fit(events: EventData, options: FitOptions) -> dict[str, Any]:
    """Learn the category levels (most frequent first, at most 24) used for distinct counts, and the own columns.

    The lender's own transaction columns (outside the contract) are summarised
    per window as ``txn_extra_<column>_*``: numbers by their sum and mean over
    the window's transactions, text codes with few levels (an entry mode, a
    merchant group) by the transactions with each level. Protected columns,
    identifiers, personal details and free text never are (``skipped``).
    """
    events_table, essential = events.transactions, options.essential_categories
    assert events_table is not None
    fitted: dict[str, Any] = {"essential": sorted(essential if essential is not None else ESSENTIAL_CATEGORIES)}
    if "category" in events_table.columns and events_table["category"].notna().any():
        column = events_table["category"]
        if isinstance(column.dtype, pd.CategoricalDtype):  # count codes, not 10M strings
            codes = column.cat.codes.to_numpy()
            per_code = np.bincount(codes[codes >= 0], minlength=len(column.cat.categories))
            counts = pd.Series(per_code, index=[str(c).lower() for c in column.cat.categories])
            counts = counts.groupby(level=0).sum()
        else:
            counts = column.dropna().astype(str).str.lower().value_counts()
        # Most frequent first; ties by name, so the choice never depends on row order.
        ranked = sorted(counts[counts > 0].items(), key=lambda kv: (-kv[1], kv[0]))
        fitted["categories"] = [str(name) for name, _ in ranked[:_MAX_CATEGORIES]]
    fitted["has_channel"] = "channel" in events_table.columns
    own = own_columns(TABLE, events_table, options.excluded)
    fitted.update(extra=own.numeric, coded=own.coded, skipped=own.skipped)
    return fitted


def specs(windows: Sequence[Window], fitted: dict[str, Any]) -> list[FeatureSpec]:
    """The catalogue entries of this family, in output order."""
    specs = SpecList("txn", NAME)
    add = specs.add

    add("history_count", None, "transactions before the scoring date (0: no spending history)", 0, "spending_activity")
    add("days_since_last", None, "days since the latest transaction", 0, "spending_activity")
    add(
        "amount_mom_change",
        None,
        "change of spending in the last 30 days against the 30 days before, as a share of the earlier",
        0,
        "spending_change",
    )
    for w in windows:
        add("count", w, "transactions {w}", 0, "spending_activity")
        add("amount_sum", w, "amount spent {w}", 0, "spending_level")
        add("amount_mean", w, "mean transaction amount {w}", 0, "spending_level")
        add("amount_max", w, "largest transaction {w}", 0, "spending_level")
        add("amount_std", w, "standard deviation of transaction amounts {w} (volatility)", 0, "spending_level")
        if fitted.get("has_channel"):
            add("cash_advance_share", w, "share of spending taken as cash advances {w}", 1, "cash_advance")
            add("atm_share", w, "share of spending withdrawn at cash machines {w}", 1, "cash_advance")
            add("online_share", w, "share of spending online {w}", 0, "spending_mix")
        if "categories" in fitted:
            add(
                "essential_share",
                w,
                "share of spending on essentials (groceries, utilities, fuel, health, ...) {w}",
                0,
                "spending_mix",
            )
            add("category_distinct", w, "distinct spending categories {w}", 0, "spending_mix")
        for col in fitted.get("extra", []):
            d = fitted.get("directions", {}).get(col, 0)
            add(f"extra_{col}_sum", w, f"total {col} of transactions {{w}}", d, "spending_extra")
            add(f"extra_{col}_mean", w, f"mean {col} of transactions {{w}}", d, "spending_extra")
        for col, levels in fitted.get("coded", {}).items():
            for level in levels:
                add(f"extra_{col}_count_{level_token(level)}", w, f"transactions {{w}} with {col} {level}", 0,
                    "spending_extra")  # fmt: skip
    for short, long in itertools.pairwise(windows):
        specs.specs.append(
            FeatureSpec(
                f"txn_amount_velocity_{short.label}_{long.label}",
                NAME,
                short.label,
                f"daily spending in the last {short.label[:-1]} days against the last {long.label[:-1]} days",
                0,
                "spending_change",
            )
        )
    return specs.specs


def compute(ctx: Context) -> dict[str, np.ndarray]:
    """Every feature of this family, per observation in sorted order."""
    tx, _code, index = ctx.table("transactions", "timestamp")
    obs = ctx.obs
    fitted = ctx.fitted
    amount = tx["amount"].to_numpy(dtype=np.float64)
    gross = np.maximum(amount, 0.0)
    start = index.start(obs)
    hi = index.before(obs)
    out: dict[str, np.ndarray] = {"txn_history_count": (hi - start).astype(np.float64)}
    t = ctx.timeline.offsets(tx["timestamp"].to_numpy()).astype(np.float64)
    out["txn_days_since_last"] = (obs.as_of - E.last(t, start, hi)) / E.DAY
    month = 30 * E.DAY
    recent = E.range_sum(amount, index.before(obs, month), hi)
    lo2 = index.before(obs, 2 * month)
    earlier = E.range_sum(amount, lo2, index.before(obs, month))
    out["txn_amount_mom_change"] = E.safe_div(recent - earlier, np.where(earlier > 0, earlier, np.nan))

    channel_amounts: dict[str, np.ndarray] = {}
    if fitted.get("has_channel"):
        channel_amounts = {
            name: np.where(E.label_mask(tx["channel"], {name}), gross, 0.0)
            for name in ("cash_advance", "atm", "online")
        }
    category_codes = None
    essential_amount = None
    if "categories" in fitted:
        essential_amount = np.where(E.label_mask(tx["category"], set(fitted["essential"])), gross, 0.0)
        category_codes = E.label_codes(tx["category"], list(dict.fromkeys(fitted["categories"])))

    extras = {col: tx[col].to_numpy(dtype=np.float64, na_value=np.nan) for col in fitted.get("extra", [])}
    known = {col: E.Counter(~np.isnan(v)) for col, v in extras.items()}
    coded: dict[str, list[E.Counter]] = {}
    for col, levels in fitted.get("coded", {}).items():
        codes = level_codes(tx[col], levels)
        coded[col] = [E.Counter(codes == k) for k in range(len(levels))]
    sums: dict[str, np.ndarray] = {}
    for w in ctx.windows:
        lo = index.before(obs, w.seconds)
        s = w.label
        n = (hi - lo).astype(np.float64)
        total = E.range_sum(amount, lo, hi)
        sums[s] = total
        out[f"txn_count_{s}"] = n
        out[f"txn_amount_sum_{s}"] = total
        mean = E.safe_div(total, n)
        out[f"txn_amount_mean_{s}"] = mean
        out[f"txn_amount_max_{s}"] = E.range_max(amount, lo, hi)
        square = E.range_sum(amount * amount, lo, hi)
        var = np.maximum(E.safe_div(square, n) - mean * mean, 0.0)
        out[f"txn_amount_std_{s}"] = np.where(n >= 2, np.sqrt(var * n / np.maximum(n - 1, 1)), np.nan)
        spend = E.range_sum(gross, lo, hi)
        spend_den = np.where(spend > 0, spend, np.nan)
        for name, values in channel_amounts.items():
            out[f"txn_{name}_share_{s}"] = E.safe_div(E.range_sum(values, lo, hi), spend_den)
        if essential_amount is not None:
            out[f"txn_essential_share_{s}"] = E.safe_div(E.range_sum(essential_amount, lo, hi), spend_den)
        for col, values in extras.items():
            total_col = E.range_sum(np.nan_to_num(values), lo, hi)
            n_col = known[col](lo, hi)
            out[f"txn_extra_{col}_sum_{s}"] = total_col
            out[f"txn_extra_{col}_mean_{s}"] = E.safe_div(total_col, n_col)
        for col, counters in coded.items():
            for level, counter in zip(fitted["coded"][col], counters, strict=True):
                out[f"txn_extra_{col}_count_{level_token(level)}_{s}"] = counter(lo, hi)
    if category_codes is not None:
        # A category is in the window when its last row before as_of is inside it:
        # one searchsorted per category over that category's row positions.
        bounds = {w.label: index.before(obs, w.seconds) for w in ctx.windows}
        distinct = {label: np.zeros(len(hi)) for label in bounds}
        by_category = np.argsort(category_codes, kind="stable")
        edges = np.searchsorted(category_codes[by_category], np.arange(len(fitted["categories"]) + 1))
        for k in range(len(fitted["categories"])):
            rows = by_category[edges[k] : edges[k + 1]]
            before = np.searchsorted(rows, hi)
            last_row = np.where(before > 0, rows[np.maximum(before - 1, 0)] if len(rows) else -1, -1)
            for label, lo in bounds.items():
                distinct[label] += last_row >= lo
        for label, counted in distinct.items():
            out[f"txn_category_distinct_{label}"] = counted
    for short, long in itertools.pairwise(ctx.windows):
        rate_short = sums[short.label] / short.days
        rate_long = sums[long.label] / long.days
        out[f"txn_amount_velocity_{short.label}_{long.label}"] = E.safe_div(
            rate_short, np.where(rate_long > 0, rate_long, np.nan)
        )
    return blank_where(out, hi == start, keep="txn_history_count")
