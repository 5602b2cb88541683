"""The event tables of a simulated portfolio, from the simulator's panels.

Statements from the card panel, instalments (and their payments) from the loan
panel, card transactions by category and channel, and collection contacts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from riskscore.datasets.panels import Accounts, CardPanel, LoanPanel

__all__ = ["contact_table", "installment_table", "statement_table", "transaction_table"]

_CATEGORIES = ("grocery", "dining", "fuel", "utilities", "online_retail", "travel", "entertainment", "health")
_CHANNELS = ("pos", "online", "atm", "cash_advance")
_CATEGORY_WEIGHTS = np.array([0.30, 0.16, 0.12, 0.10, 0.14, 0.06, 0.07, 0.05])


def statement_table(acc: Accounts, ids: np.ndarray, card: CardPanel) -> pd.DataFrame:
    """One statement per active card cycle."""
    i, t = np.nonzero(card.active)
    return pd.DataFrame(
        {
            "account_id": ids[i],
            "statement_date": card.stmt_day[i, t].astype("datetime64[ns]"),
            "balance": card.balance[i, t],
            "payment": card.payment[i, t],
            "dpd": card.dpd[i, t],
            "min_due": card.min_due[i, t],
            "credit_limit": acc.limit[i],
        }
    )


def installment_table(acc: Accounts, ids: np.ndarray, loan: LoanPanel) -> pd.DataFrame:
    """One row per instalment payment (a second row where an instalment was paid in two parts)."""
    i, t = np.nonzero(loan.due)
    first_paid = ~np.isnat(loan.paid1_day[i, t])
    second = ~np.isnat(loan.paid2_day[i, t])
    base = {
        "account_id": ids[i],
        "instalment_no": loan.number[i, t],
        "due_date": loan.due_day[i, t].astype("datetime64[ns]"),
        "amount_due": loan.amount[i],
    }
    rows = pd.DataFrame(
        {
            **base,
            "paid_date": np.where(first_paid, loan.paid1_day[i, t], np.datetime64("NaT")).astype("datetime64[ns]"),
            "amount_paid": np.where(first_paid, loan.paid1_amt[i, t], 0.0),
        }
    )
    extra = pd.DataFrame(
        {
            **{k: v[second] for k, v in base.items()},
            "paid_date": loan.paid2_day[i, t][second].astype("datetime64[ns]"),
            "amount_paid": loan.paid2_amt[i, t][second],
        }
    )
    return pd.concat([rows, extra], ignore_index=True)


def transaction_table(
    rng: np.random.Generator,
    acc: Accounts,
    ids: np.ndarray,
    card: CardPanel,
    month_starts: np.ndarray,
    scale: float = 1.0,
    rate: np.ndarray | None = None,
) -> pd.DataFrame:
    """Card purchases by category and channel summing to each cycle's spend, and cash advances.

    ``rate`` (per account) is the mean number of purchases per cycle beyond the
    first; drawn here when absent.
    """
    n, months = card.active.shape
    rate = (np.asarray(rng.uniform(1.5, 9.0, n)) if rate is None else np.asarray(rate)) * scale
    # Purchases: a few transactions per cycle that sum to the cycle's spend.
    i, t = np.nonzero(card.purchases > 0)
    count = 1 + rng.poisson(rate[i])
    row_i, row_t = np.repeat(i, count), np.repeat(t, count)
    weights = rng.exponential(1.0, len(row_i))
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    totals = np.add.reduceat(weights, starts)
    amount = np.round(card.purchases[i, t].repeat(count) * weights / totals.repeat(count), 2)
    # Category mix by calendar month: summer travel, December online shopping.
    weights = np.tile(_CATEGORY_WEIGHTS, (12, 1))
    weights[[6, 7], 5] *= 2.5
    weights[11, 4] *= 2.0
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    month = month_starts[:months].astype("datetime64[M]").astype(np.int64) % 12
    draw = rng.random(len(row_i))
    cat = np.zeros(len(row_i), dtype=np.int8)
    row_cum = cum[month[row_t]]
    for k in range(len(_CATEGORIES) - 1):
        cat += draw > row_cum[:, k]
    online = (cat == _CATEGORIES.index("online_retail")) | (rng.random(len(row_i)) < 0.15)
    channel = np.where(online, _CHANNELS.index("online"), _CHANNELS.index("pos")).astype(np.int8)
    # Cash advances: one transaction per cycle that has one.
    j, u = np.nonzero(card.cash_advance > 0)
    all_i = np.concatenate([row_i, j])
    all_t = np.concatenate([row_t, u])
    amount = np.concatenate([amount, card.cash_advance[j, u]])
    cat = np.concatenate([cat, np.full(len(j), len(_CATEGORIES), dtype=np.int8)])
    adv = np.where(rng.random(len(j)) < 0.3, _CHANNELS.index("atm"), _CHANNELS.index("cash_advance"))
    channel = np.concatenate([channel, adv.astype(np.int8)])
    # Timestamps inside the cycle, strictly before its statement, not before opening.
    lo = np.maximum(card.prev_day[all_i, all_t], acc.open_day[all_i]).astype("datetime64[s]").astype(np.int64)
    hi = card.stmt_day[all_i, all_t].astype("datetime64[s]").astype(np.int64)
    span = np.maximum(hi - lo, 1)
    day_part = (rng.random(len(all_i)) * (span // 86400).clip(1)).astype(np.int64) * 86400
    seconds = np.clip(rng.normal(14.5, 3.5, len(all_i)), 7, 23.9) * 3600
    stamp = np.minimum(lo + day_part + seconds.astype(np.int64), hi - 1)
    return pd.DataFrame(
        {
            "account_id": ids[all_i],
            "timestamp": stamp.astype("datetime64[s]").astype("datetime64[ns]"),
            "amount": amount,
            "category": pd.Categorical.from_codes(cat, dtype=pd.CategoricalDtype([*_CATEGORIES, "cash"])),
            "channel": pd.Categorical.from_codes(channel, dtype=pd.CategoricalDtype(list(_CHANNELS))),
        }
    )


def contact_table(
    rng: np.random.Generator,
    acc: Accounts,
    ids: np.ndarray,
    statements: pd.DataFrame,
    installments: pd.DataFrame,
    month_starts: np.ndarray,
) -> pd.DataFrame:
    """Collection contacts after missed payments, reminders, and a few opt-outs."""
    data_end = month_starts[-1].astype("datetime64[ns]")
    late_stmt = statements.loc[statements["dpd"] > 0, ["account_id", "statement_date"]]
    unpaid = installments.loc[installments["paid_date"].isna(), ["account_id", "due_date"]]
    trigger = pd.concat(
        [
            late_stmt.set_axis(["account_id", "day"], axis=1),
            unpaid.assign(due_date=unpaid["due_date"] + pd.Timedelta(days=3)).set_axis(["account_id", "day"], axis=1),
        ],
        ignore_index=True,
    )
    calls = rng.integers(1, 5, len(trigger))
    acct = np.repeat(trigger["account_id"].to_numpy(), calls)
    day = np.repeat(trigger["day"].to_numpy().astype("datetime64[D]"), calls)
    day = day + rng.integers(0, 10, len(acct)).astype("timedelta64[D]")
    when = day.astype("datetime64[s]") + (rng.uniform(9, 20, len(acct)) * 3600).astype("timedelta64[s]")
    connected = rng.random(len(acct)) < 0.35
    calls_df = pd.DataFrame(
        {
            "account_id": acct,
            "timestamp": when.astype("datetime64[ns]"),
            "channel": "call",
            "outcome": np.where(connected, "connected", "attempt"),
            "direction": np.where(connected & (rng.random(len(acct)) < 0.1), "inbound", "outbound"),
        }
    )
    # Opt-outs from SMS: a few percent of accounts, at a random point in the window.
    opt = rng.random(acc.n) < 0.03
    opt_day = month_starts[0] + rng.integers(0, int((month_starts[-1] - month_starts[0]).astype(int)), acc.n).astype(
        "timedelta64[D]"
    )
    opt_day = np.maximum(opt_day, acc.open_day + np.timedelta64(1, "D"))
    opts = pd.DataFrame(
        {
            "account_id": ids[opt],
            "timestamp": opt_day[opt].astype("datetime64[ns]") + np.timedelta64(12, "h"),
            "channel": "sms",
            "outcome": "opt_out",
            "direction": "inbound",
        }
    )
    out = pd.concat([calls_df, opts], ignore_index=True)
    return out.loc[out["timestamp"] < data_end].reset_index(drop=True)
