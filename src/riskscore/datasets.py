"""Data sets to learn and test on.

A synthetic portfolio with a known generative model, the bundled sample made from
it, and the UCI Taiwan credit-card data as event tables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.errors import DataValidationError, Problem

__all__ = ["BEHAVIOURS", "SAMPLE_CALL", "load_sample", "load_taiwan", "make_portfolio", "sample_dir"]

BEHAVIOURS: tuple[str, ...] = ("full_payer", "revolver", "forgetful", "hardship", "strategic")
"""The borrower behaviour types of :func:`make_portfolio`, as found in ``truth.behaviour``."""

_BEHAVIOUR_MIX = (0.27, 0.27, 0.18, 0.20, 0.08)
_TIMEZONES = (
    ("America/New_York", 0.35),
    ("America/Chicago", 0.20),
    ("America/Denver", 0.07),
    ("America/Phoenix", 0.04),
    ("America/Los_Angeles", 0.25),
    ("Pacific/Honolulu", 0.02),
    (None, 0.02),  # a few accounts have no known zone: outreach must fail closed
)
_CATEGORIES = ("grocery", "dining", "fuel", "utilities", "online_retail", "travel", "entertainment", "health")
_CHANNELS = ("pos", "online", "atm", "cash_advance")
_MEAN_PURCHASE_RATE = 1.0 + (1.5 + 9.0) / 2  # 1 + Poisson(U(1.5, 9)) transactions per cycle
_CATEGORY_WEIGHTS = np.array([0.30, 0.16, 0.12, 0.10, 0.14, 0.06, 0.07, 0.05])

SAMPLE_CALL: dict[str, object] = {"n_accounts": 2000, "months": 24, "seed": 20240101, "start": "2023-01-01"}
"""The exact arguments of :func:`make_portfolio` that made ``data/sample/``."""


# --------------------------------------------------------------------------- portfolio


@dataclass
class _Accounts:
    n: int
    is_card: np.ndarray
    behaviour: np.ndarray  # index into BEHAVIOURS
    income: np.ndarray
    slack: np.ndarray  # share of income free for debt service
    open_day: np.ndarray  # datetime64[D]
    cycle_day: np.ndarray
    grace: np.ndarray
    limit: np.ndarray
    spend_base: np.ndarray
    revolve_share: np.ndarray
    apr: np.ndarray
    forget_rate: np.ndarray
    savings: np.ndarray


def make_portfolio(
    n_accounts: int = 2000,
    months: int = 24,
    seed: int = 0,
    start: str | pd.Timestamp = "2023-01-01",
    *,
    transactions_per_cycle: float | None = None,
) -> tuple[EventData, pd.DataFrame]:
    """Generate a synthetic consumer-credit portfolio with a known generative model.

    Each borrower holds one account, a credit card (70%) or an instalment loan
    (30%), and has a monthly income and a latent financial-stress process. Stress
    comes from shocks (job loss, illness: income falls, expenses rise) that build
    up over a few months as savings run out and fade again on recovery. Payments,
    utilisation, cash advances and days past due all follow from income, stress
    and the borrower's behaviour type:

    ``full_payer``
        pays the statement balance (or the instalment) on time.
    ``revolver``
        pays a small share of the balance, often only the minimum.
    ``forgetful``
        able to pay, but now and then forgets a due date: a few days late,
        self-curing, and once in a while two cycles in a row (30+ days past due).
    ``hardship``
        meets a major shock during the window: utilisation rises, cash
        advances appear, payments fall to the minimum, then partial, then
        missed; some recover and cure.
    ``strategic``
        stops paying at some point while still able to, often after a spending
        spree that maxes out the card.

    Every borrower may also meet minor shocks. Spending has seasonality
    (December, summer travel) and is split into transactions by category and
    channel (``pos``, ``online``, cash advances through ``atm`` and
    ``cash_advance``). Delinquent accounts receive collection contacts.

    Parameters
    ----------
    n_accounts : int, default=2000
    months : int, default=24
        Length of the observed window in months, starting at ``start``.
    seed : int, default=0
        The same seed gives the same portfolio, bit for bit.
    start : date-like, default="2023-01-01"
        First day of the window (the month it falls in).
    transactions_per_cycle : float, optional
        Mean number of purchase transactions per card statement cycle (about
        6.25 by default); raise it for transaction-heavy benchmarks. Spending per
        cycle stays the same, spread over more transactions.

    Returns
    -------
    events : EventData
        ``accounts`` (with static ``age``, marked protected, and
        ``stated_income``), ``statements`` for cards, ``installments`` for loans,
        ``transactions`` for cards and ``contacts``.
    truth : DataFrame
        Indexed by ``account_id``: ``behaviour``, ``product``, ``income``,
        ``shock_date`` (start of the first major shock, or NaT),
        ``recovery_date``, ``stop_date`` (strategic defaulters), ``forget_rate``.

    Examples
    --------
    >>> events, truth = make_portfolio(n_accounts=50, months=6, seed=1)
    >>> sorted(truth["behaviour"].unique()) <= sorted(BEHAVIOURS)
    True
    """
    if n_accounts < 1 or months < 3:
        raise ValueError(f"need n_accounts >= 1 and months >= 3; got n_accounts={n_accounts}, months={months}")
    rng = np.random.default_rng(seed)
    start_month = pd.Timestamp(start).to_period("M").to_timestamp()
    acc = _draw_accounts(rng, n_accounts, months, start_month)
    stress, shock = _stress_paths(rng, acc, months)
    ids = np.arange(100_001, 100_001 + n_accounts, dtype=np.int64)

    month_starts = pd.date_range(start_month, periods=months + 1, freq="MS").to_numpy().astype("datetime64[D]")
    card = _simulate_cards(rng, acc, stress, shock, month_starts)
    loan = _simulate_loans(rng, acc, stress, shock, month_starts)

    statements = _statement_table(acc, ids, card)
    if transactions_per_cycle is not None and transactions_per_cycle < 1:
        raise ValueError(f"transactions_per_cycle must be >= 1; got {transactions_per_cycle}")
    scale = 1.0 if transactions_per_cycle is None else (transactions_per_cycle - 1.0) / (_MEAN_PURCHASE_RATE - 1.0)
    transactions = _transaction_table(rng, acc, ids, card, month_starts, scale)
    installments = _installment_table(acc, ids, loan)
    contacts = _contact_table(rng, acc, ids, statements, installments, month_starts)

    tz_names = np.array([z for z, _ in _TIMEZONES], dtype=object)
    tz_p = np.array([p for _, p in _TIMEZONES])
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "open_date": acc.open_day.astype("datetime64[ns]"),
            "credit_limit": acc.limit,
            "product": np.where(acc.is_card, "card", "loan"),
            "timezone": rng.choice(tz_names, size=acc.n, p=tz_p / tz_p.sum()),
            "close_date": loan.close_day.astype("datetime64[ns]"),
            "age": np.clip(rng.normal(41, 12, acc.n).round(), 21, 80).astype(np.int64),
            "stated_income": (acc.income * rng.lognormal(0.05, 0.15, acc.n) / 100).round() * 100,
        }
    )
    events = EventData(
        accounts=accounts,
        statements=statements,
        installments=installments,
        transactions=transactions,
        contacts=contacts,
        protected=("age",),
    )
    truth = pd.DataFrame(
        {
            "behaviour": pd.Categorical(np.array(BEHAVIOURS)[acc.behaviour], categories=BEHAVIOURS),
            "product": np.where(acc.is_card, "card", "loan"),
            "income": acc.income,
            "shock_date": _month_dates(shock.major_start, shock.major, month_starts),
            "recovery_date": _month_dates(shock.major_end, shock.major & (shock.major_end < months), month_starts),
            "stop_date": _month_dates(shock.stop, shock.stop >= 0, month_starts),
            "forget_rate": acc.forget_rate,
        },
        index=pd.Index(ids, name="account_id"),
    )
    return events, truth


@dataclass
class _Shocks:
    major: np.ndarray  # bool: meets a major shock
    major_start: np.ndarray  # month index of the major shock (may be before the window)
    major_end: np.ndarray  # month index of recovery (may be after the window)
    stop: np.ndarray  # month index a strategic borrower stops paying (-1: none)
    spree: np.ndarray  # bool: maxes the card out just before stopping


def _draw_accounts(rng: np.random.Generator, n: int, months: int, start: pd.Timestamp) -> _Accounts:
    is_card = rng.random(n) < 0.7
    behaviour = rng.choice(len(BEHAVIOURS), size=n, p=_BEHAVIOUR_MIX)
    income = np.round(rng.lognormal(np.log(4800), 0.45, n), -1)
    # Share of income free for debt service: revolvers run thin budgets (that is
    # why they revolve), full payers and the forgetful have room; types in order
    # of BEHAVIOURS.
    low = np.array([0.25, 0.06, 0.25, 0.12, 0.20])[behaviour]
    high = np.array([0.50, 0.28, 0.50, 0.40, 0.45])[behaviour]
    slack = rng.uniform(low, high)
    # 75% of accounts were opened before the window, the rest during its first part.
    start_d = np.datetime64(start.date(), "D")
    seasoned = rng.random(n) < 0.75
    before = start_d - rng.integers(30, 5 * 365, n).astype("timedelta64[D]")
    during = start_d + rng.integers(0, max(31, (months - 4) * 30), n).astype("timedelta64[D]")
    open_day = np.where(seasoned, before, during)
    limit_card = np.round(income * rng.uniform(0.8, 3.5, n), -2)
    limit_loan = np.round(income * rng.uniform(1.5, 6.0, n), -2)
    forget = np.where(behaviour == 2, rng.uniform(0.06, 0.22, n), rng.uniform(0.0, 0.01, n))
    # Share of the balance paid when not paying in full: revolvers pay little;
    # the forgetful, whose capacity is intact, pay most of it when they remember.
    revolve_low = np.where(behaviour == 2, 0.5, 0.3)
    revolve = np.where(behaviour == 1, rng.uniform(0.0, 0.2, n), rng.uniform(revolve_low, 1.0, n))
    return _Accounts(
        n=n,
        is_card=is_card,
        behaviour=behaviour,
        income=income,
        slack=slack,
        open_day=open_day,
        cycle_day=rng.integers(1, 29, n),
        grace=rng.integers(20, 26, n),
        limit=np.where(is_card, limit_card, limit_loan),
        spend_base=income * rng.uniform(0.06, 0.35, n),
        revolve_share=revolve,
        apr=rng.uniform(0.14, 0.30, n),
        forget_rate=forget,
        savings=income * rng.exponential(0.5, n),
    )


def _stress_paths(rng: np.random.Generator, acc: _Accounts, months: int) -> tuple[np.ndarray, _Shocks]:
    """Latent stress in [0, 1] per account and month, and the shock calendar."""
    n = acc.n
    hardship = acc.behaviour == 3
    major_start = rng.integers(-2, months - 2, n)
    major_end = major_start + rng.integers(4, 14, n)
    magnitude = rng.uniform(0.6, 1.0, n)
    stress = np.zeros((n, months))
    level = np.zeros(n)
    # Minor shocks (a repair, a short illness) a month: stretched revolvers feel more of them.
    minor_hazard = np.where(acc.behaviour == 1, 0.03, 0.012)
    for t in range(months):
        in_major = hardship & (t >= major_start) & (t < major_end)
        minor = (~hardship) & (rng.random(n) < minor_hazard)
        target = np.where(in_major, magnitude, 0.0)
        # Stress builds as savings run out and fades on recovery, over months.
        level = np.where(target > level, level + (target - level) * 0.3, level * 0.8)
        level = np.maximum(level, np.where(minor, rng.uniform(0.4, 0.95, n), 0.0))
        stress[:, t] = level
    stop = np.where(acc.behaviour == 4, rng.integers(2, months + 6, n), -1)
    stop = np.where(stop >= months, -1, stop)  # some stop only after the window
    spree = rng.random(n) < 0.6
    return stress, _Shocks(hardship, major_start, major_end, stop, spree)


def _month_dates(index: np.ndarray, present: np.ndarray, month_starts: np.ndarray) -> np.ndarray:
    """First day of month ``index`` (counted from the window start; may be negative)."""
    months = month_starts[0].astype("datetime64[M]") + index.astype("timedelta64[M]")
    out = months.astype("datetime64[D]").astype("datetime64[ns]")
    out[~present] = np.datetime64("NaT")
    return out


@dataclass
class _CardPanel:
    active: np.ndarray  # (n, months) bool: a statement exists
    stmt_day: np.ndarray  # (n, months) datetime64[D]
    prev_day: np.ndarray  # (n, months) start of the cycle
    balance: np.ndarray
    payment: np.ndarray
    min_due: np.ndarray
    dpd: np.ndarray
    purchases: np.ndarray
    cash_advance: np.ndarray


def _cycle_dates(acc: _Accounts, month_starts: np.ndarray) -> np.ndarray:
    months = len(month_starts) - 1
    offsets = (acc.cycle_day - 1).astype("timedelta64[D]")
    return month_starts[None, :months] + offsets[:, None]


def _season(month_starts: np.ndarray) -> np.ndarray:
    month = (month_starts.astype("datetime64[M]").astype(np.int64) % 12) + 1
    bump = {11: 1.12, 12: 1.35, 1: 0.85, 7: 1.12, 8: 1.1}
    return np.array([bump.get(int(m), 1.0) for m in month])


def _capacity(acc: _Accounts, stress_t: np.ndarray) -> np.ndarray:
    # Money free for debt service: income after essentials, cut by stress (lost
    # income and extra expenses).
    return acc.income * acc.slack * np.clip(1.0 - 1.3 * stress_t, 0.0, 1.0)


def _save(acc: _Accounts, savings: np.ndarray, cap: np.ndarray, paid: np.ndarray, stress: np.ndarray) -> np.ndarray:
    # Savings grow slowly from spare capacity and drain under stress, when living
    # costs exceed a reduced income; paying more than capacity draws on them too.
    change = 0.3 * cap - 0.9 * stress * acc.income - np.maximum(paid - cap, 0.0)
    return np.clip(savings + change, 0.0, 1.5 * acc.income)


def _simulate_cards(
    rng: np.random.Generator, acc: _Accounts, stress: np.ndarray, shock: _Shocks, month_starts: np.ndarray
) -> _CardPanel:
    n, months = stress.shape
    stmt_day = _cycle_dates(acc, month_starts)
    prev_day = np.concatenate([stmt_day[:, :1] - np.timedelta64(30, "D"), stmt_day[:, :-1]], axis=1)
    # A card's first statement comes at least 20 days after it opens.
    active = acc.is_card[:, None] & (stmt_day >= acc.open_day[:, None] + np.timedelta64(20, "D"))
    season = _season(month_starts[:months])
    seasoned = acc.open_day < month_starts[0] - np.timedelta64(60, "D")
    balance_prev = np.where(seasoned, acc.limit * rng.beta(1.2, 3.5, n), 0.0)
    balance_prev = np.where(acc.behaviour == 0, balance_prev * 0.3, balance_prev).round(2)
    arrears = np.zeros(n)
    min_prev = _min_due(balance_prev)
    missed = np.zeros(n, dtype=np.int64)
    forgot_last = np.zeros(n, dtype=bool)
    savings = acc.savings.copy()
    out = {k: np.zeros((n, months)) for k in ("balance", "payment", "min_due", "purchases", "cash_advance")}
    dpd = np.zeros((n, months), dtype=np.int64)
    day_num = stmt_day.astype(np.int64)
    for t in range(months):
        on = active[:, t]
        s = stress[:, t]
        cap = _capacity(acc, s)
        due = np.where(balance_prev > 0, min_prev + arrears, 0.0)
        due = np.minimum(due, np.maximum(balance_prev, 0.0))
        stopped = (shock.stop >= 0) & (t >= shock.stop)
        stressed = s > 0.25
        full = np.maximum(balance_prev, 0.0)
        share = np.maximum(due, acc.revolve_share * full)
        pays_full = (acc.behaviour == 0) | ((acc.behaviour != 1) & (acc.revolve_share > 0.65))
        intended = np.where(pays_full, full, share)
        intended = np.where(stressed, due * (1.0 + (s < 0.5)), intended)  # cut back to the minimum
        intended = np.where(forgot_last, np.maximum(intended, due), intended)
        cash = cap + savings
        # Short of cash for what they meant to pay, people pay what this month's
        # budget allows, drawing on savings for the minimum only; short of the
        # minimum, whatever they have.
        affordable = np.maximum(due, np.minimum(intended, cap))
        paid = np.where(cash >= intended, intended, np.where(cash >= due, affordable, cash))
        forgets = rng.random(n) < np.where(forgot_last, acc.forget_rate * 2.0, acc.forget_rate)
        paid = np.where(forgets | stopped, 0.0, paid)
        paid = np.where(on, np.round(paid, 2), 0.0)
        savings = _save(acc, savings, cap, paid, s)
        late = on & (due > 0.005) & (paid < due - 0.005)
        missed = np.where(on, np.where(late, missed + 1, 0), missed)
        arrears = np.where(late, due - paid, 0.0)
        forgot_last = on & forgets & late
        # Spending: seasonal, rising with stress (credit covers essentials), a
        # spree before a strategic stop, nothing once the card is blocked at 60+.
        spend = acc.spend_base * season[t] * (1.0 + 0.9 * s) * rng.lognormal(-0.03, 0.25, n)
        spree = shock.spree & (shock.stop >= 0) & (t >= shock.stop - 2) & (t < shock.stop)
        carried = balance_prev - paid
        room = np.maximum(acc.limit * 1.02 - carried, 0.0)
        spend = np.where(spree, room * rng.uniform(0.5, 0.95, n), spend)
        advance_p = np.where(s > 0.15, 0.25 + 0.5 * s, 0.01)
        advance = np.where(rng.random(n) < advance_p, acc.limit * rng.uniform(0.05, 0.25, n), 0.0)
        spend, advance = np.minimum(spend, room), np.minimum(advance, np.maximum(room - spend, 0.0))
        blocked = missed >= 2
        spend = np.where(on & ~blocked, np.round(spend, 2), 0.0)
        advance = np.where(on & ~blocked, np.round(advance, 2), 0.0)
        interest = np.where(carried > 0, carried * acc.apr / 12.0, 0.0)
        fee = np.where(late, 25.0, 0.0)
        balance = np.where(on, np.round(carried + spend + advance + interest + fee + 0.0, 2), balance_prev)
        # dpd at the statement: days since the due date of the oldest unpaid cycle.
        oldest = np.clip(t - missed + 1, 0, t) - 1
        oldest_day = np.where(oldest >= 0, day_num[np.arange(n), np.maximum(oldest, 0)], day_num[:, 0] - 30)
        dpd[:, t] = np.where(on & (missed > 0), day_num[:, t] - oldest_day - acc.grace, 0)
        out["balance"][:, t] = balance
        out["payment"][:, t] = paid
        out["min_due"][:, t] = np.where(on, _min_due(balance), 0.0)
        out["purchases"][:, t] = spend
        out["cash_advance"][:, t] = advance
        balance_prev = np.where(on, balance, balance_prev)
        min_prev = np.where(on, _min_due(balance), min_prev)
    return _CardPanel(active=active, stmt_day=stmt_day, prev_day=prev_day, dpd=np.maximum(dpd, 0), **out)


def _min_due(balance: np.ndarray) -> np.ndarray:
    pos = np.maximum(balance, 0.0)
    return np.round(np.minimum(pos, np.maximum(0.03 * pos, 25.0)), 2)


@dataclass
class _LoanPanel:
    due: np.ndarray  # (n, months) bool: an instalment falls due
    due_day: np.ndarray
    number: np.ndarray
    amount: np.ndarray  # (n,)
    paid1_day: np.ndarray
    paid1_amt: np.ndarray
    paid2_day: np.ndarray
    paid2_amt: np.ndarray
    close_day: np.ndarray  # (n,) the loan was repaid in full (NaT: still running, or a card)


def _simulate_loans(
    rng: np.random.Generator, acc: _Accounts, stress: np.ndarray, shock: _Shocks, month_starts: np.ndarray
) -> _LoanPanel:
    n, months = stress.shape
    term = rng.choice(np.array([12, 24, 36, 48]), size=n)
    rate = acc.apr / 12.0 * 0.6
    amount = np.round(acc.limit * rate / (1.0 - (1.0 + rate) ** -term), 2)
    open_month = acc.open_day.astype("datetime64[M]")
    window_month = month_starts[:months].astype("datetime64[M]")
    number = (window_month[None, :] - open_month[:, None]).astype(np.int64)
    open_dom = (acc.open_day - open_month.astype("datetime64[D]")).astype(np.int64)
    day_in_month = np.minimum(open_dom, 27).astype("timedelta64[D]")
    due_day = window_month.astype("datetime64[D]")[None, :] + day_in_month[:, None]
    due = (~acc.is_card)[:, None] & (number >= 1) & (number <= term[:, None])
    data_end = month_starts[-1]
    nat = np.datetime64("NaT", "D")
    paid1_day = np.full((n, months), nat)
    paid2_day = np.full((n, months), nat)
    paid1_amt = np.zeros((n, months))
    paid2_amt = np.zeros((n, months))
    owed = np.zeros((n, months))  # still outstanding per instalment
    savings = acc.savings.copy()
    forgot_last = np.zeros(n, dtype=bool)
    for t in range(months):
        on = due[:, t]
        cap = _capacity(acc, stress[:, t])
        stopped = (shock.stop >= 0) & (t >= shock.stop)
        cash = cap + savings
        forgets = on & (rng.random(n) < np.where(forgot_last, acc.forget_rate * 2, acc.forget_rate))
        # First settle arrears of earlier instalments when there is room.
        arrears = owed[:, :t].sum(axis=1)
        catch_up = on & ~stopped & (arrears > 0) & (cash >= arrears + amount)
        catch_day = due_day[:, t] + rng.integers(0, 6, n).astype("timedelta64[D]")
        for j in range(t):
            settle = catch_up & (owed[:, j] > 0)
            first = settle & np.isnat(paid1_day[:, j])
            second = settle & ~first
            paid1_day[first, j] = catch_day[first]
            paid1_amt[first, j] = owed[first, j]
            paid2_day[second, j] = catch_day[second]
            paid2_amt[second, j] = owed[second, j]
            owed[settle, j] = 0.0
        cash = cash - np.where(catch_up, arrears, 0.0)
        pay = np.where(stopped, 0.0, np.minimum(amount, np.maximum(cash, 0.0)))
        pay = np.where(pay < 0.3 * amount, 0.0, np.round(pay, 2))  # too little to bother: skip
        early = rng.integers(0, 8, n).astype("timedelta64[D]")
        late_days = np.where(rng.random(n) < 0.85, rng.integers(1, 21, n), rng.integers(21, 50, n))
        # Under stress, payments slip past the due date by a few days first.
        slips = rng.random(n) < stress[:, t]
        slip = np.where(slips, rng.integers(1, 12, n), 0).astype("timedelta64[D]")
        when = np.where(forgets, due_day[:, t] + late_days.astype("timedelta64[D]"), due_day[:, t] - early)
        when = np.where(slips & ~forgets, due_day[:, t] + slip, when)
        when = np.maximum(when, acc.open_day)
        known = when < data_end
        pay = np.where(known & on, pay, 0.0)
        paid1_day[:, t] = np.where(on & (pay > 0), when, nat)
        paid1_amt[:, t] = pay
        owed[:, t] = np.where(on, np.round(amount - pay, 2), 0.0)
        savings = _save(acc, savings, cap, pay, stress[:, t])
        forgot_last = forgets
    # A late settlement that falls after the data end is not known yet.
    for day, amt in ((paid1_day, paid1_amt), (paid2_day, paid2_amt)):
        unknown = ~np.isnat(day) & (day >= data_end)
        day[unknown] = nat
        amt[unknown] = 0.0
    # A loan closes when its last instalment is settled: at its last payment, or at
    # its final due date when the schedule ended before the window.
    final_due = (open_month + term.astype("timedelta64[M]")).astype("datetime64[D]") + day_in_month
    settled = np.where(due, paid1_amt + paid2_amt >= amount[:, None] - 0.005, True).all(axis=1)
    paid_days = np.where(np.isnat(paid2_day), paid1_day, paid2_day)
    last_paid = np.where(due & ~np.isnat(paid_days), paid_days, np.datetime64("1900-01-01")).max(axis=1)
    any_due = due.any(axis=1)
    close = np.where(any_due, last_paid, final_due)
    done = (~acc.is_card) & (final_due < data_end) & settled
    close_day = np.where(done, np.maximum(close, acc.open_day + np.timedelta64(1, "D")), nat)
    return _LoanPanel(due, due_day, number, amount, paid1_day, paid1_amt, paid2_day, paid2_amt, close_day)


def _statement_table(acc: _Accounts, ids: np.ndarray, card: _CardPanel) -> pd.DataFrame:
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


def _installment_table(acc: _Accounts, ids: np.ndarray, loan: _LoanPanel) -> pd.DataFrame:
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


def _transaction_table(
    rng: np.random.Generator,
    acc: _Accounts,
    ids: np.ndarray,
    card: _CardPanel,
    month_starts: np.ndarray,
    scale: float = 1.0,
) -> pd.DataFrame:
    n, months = card.active.shape
    rate = np.asarray(rng.uniform(1.5, 9.0, n)) * scale
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


def _contact_table(
    rng: np.random.Generator,
    acc: _Accounts,
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


# --------------------------------------------------------------------------- sample


def sample_dir() -> Path:
    """The folder of the bundled sample (installed package or source tree)."""
    packaged = resources.files("riskscore") / "sample"
    if packaged.is_dir() and (Path(str(packaged)) / "accounts.parquet").exists():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "data" / "sample"
    if (source / "accounts.parquet").exists():
        return source
    raise FileNotFoundError(
        "the bundled sample is missing: expected accounts.parquet in the package's sample folder "
        f"or in {source}; regenerate it with riskscore.datasets.write_sample()"
    )


def load_sample(*, with_truth: bool = False) -> EventData | tuple[EventData, pd.DataFrame]:
    """Load the bundled sample portfolio (``data/sample/``).

    About 2,000 accounts over 24 months, made by ``make_portfolio(**SAMPLE_CALL)``.

    Parameters
    ----------
    with_truth : bool, default=False
        Also return the generator's ``truth`` table (behaviour type and shock
        dates per account), e.g. to check what a segmentation finds.

    Examples
    --------
    >>> events = load_sample()
    >>> len(events.accounts)
    2000
    """
    folder = sample_dir()
    events = EventData.from_dir(folder)
    if not with_truth:
        return events
    truth = pd.read_parquet(folder / "truth.parquet").set_index("account_id")
    return events, truth


def write_sample(path: str | os.PathLike[str]) -> Path:
    """Regenerate the bundled sample into ``path``: the tables and ``truth.parquet``.

    ``write_sample("data/sample")`` in the source tree remakes the bundled sample.
    """
    events, truth = make_portfolio(**SAMPLE_CALL)  # type: ignore[arg-type]
    folder = events.to_dir(path, overwrite=True)
    truth.reset_index().to_parquet(folder / "truth.parquet", index=False)
    return folder


# --------------------------------------------------------------------------- Taiwan


_TAIWAN_MONTHS = ("2005-09-30", "2005-08-31", "2005-07-31", "2005-06-30", "2005-05-31", "2005-04-30")
_TAIWAN_STATUS = ("PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6")
TAIWAN_PROTECTED: tuple[str, ...] = ("sex", "education", "marriage", "age")


def load_taiwan(csv_path: str | os.PathLike[str]) -> tuple[EventData, pd.Series]:
    """The UCI "default of credit card clients" data (Taiwan, 2005) as event tables.

    Mapping (see the data's ``SOURCE.md`` for the oddities):

    * ``accounts``: ``account_id`` = ``ID``; ``credit_limit`` = ``LIMIT_BAL``;
      ``product`` = ``"card"``; ``SEX``, ``EDUCATION``, ``MARRIAGE`` and ``AGE``
      kept with their raw codes as ``sex``, ``education``, ``marriage``, ``age``
      and marked protected (``events.protected``): never features. The data has
      no account dates, so ``open_date`` is 2005-04-01, the first day the data
      covers.
    * ``statements``: six per account, ``statement_date`` the last day of each
      month April–September 2005 (month index k = 1 is September, 6 is April);
      ``balance`` = ``BILL_AMTk`` (negative = credit balance); ``payment`` =
      ``PAY_AMTk``, the amount paid during month k, which settles the previous
      month's bill ``BILL_AMT(k+1)`` (oddity 7), exactly the contract's meaning of
      ``payment`` (paid during the cycle ending at ``statement_date``, against the
      previous balance); ``dpd`` = 30 × months of delay for status 1..9 and 0 for
      -2, -1 and 0; the raw status in ``pay_status`` (categories -2, -1, 0 are
      not an ordinal scale, and month 1 seems coded differently from months 2-6).
    * ``target``: ``default payment next month`` (October 2005) as an ``int64``
      Series named ``default_next_month``, indexed by ``account_id``.

    Parameters
    ----------
    csv_path : path
        The CSV with the real column names as its header (``ID, LIMIT_BAL, ...``).

    Returns
    -------
    events : EventData
    target : Series

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataValidationError
        If columns are missing or values are not the expected codes.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"Taiwan credit-card CSV not found: {path}")
    raw = pd.read_csv(path)
    needed = ["ID", "LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "default payment next month"]
    needed += list(_TAIWAN_STATUS) + [f"BILL_AMT{k}" for k in range(1, 7)] + [f"PAY_AMT{k}" for k in range(1, 7)]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise DataValidationError(
            [Problem("taiwan", str(missing[0]), "required_column", f"required columns are missing: {missing}")]
        )
    status = raw[list(_TAIWAN_STATUS)].to_numpy()
    if not np.isin(status, np.arange(-2, 10)).all():
        bad = status[~np.isin(status, np.arange(-2, 10))][0]
        raise DataValidationError(
            [Problem("taiwan", "PAY_0", "status_code", f"repayment status must be -2..9; got {bad}")]
        )
    n = len(raw)
    ids = raw["ID"].to_numpy()
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "open_date": pd.Timestamp("2005-04-01"),
            "credit_limit": raw["LIMIT_BAL"].astype("float64"),
            "product": "card",
            "sex": raw["SEX"].to_numpy(),
            "education": raw["EDUCATION"].to_numpy(),
            "marriage": raw["MARRIAGE"].to_numpy(),
            "age": raw["AGE"].to_numpy(),
        }
    )
    parts = []
    for k in range(1, 7):
        code = raw[_TAIWAN_STATUS[k - 1]].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "account_id": ids,
                    "statement_date": np.full(n, np.datetime64(_TAIWAN_MONTHS[k - 1], "ns")),
                    "balance": raw[f"BILL_AMT{k}"].astype("float64"),
                    "payment": raw[f"PAY_AMT{k}"].astype("float64"),
                    "dpd": np.where(code > 0, 30 * code, 0).astype(np.int64),
                    "pay_status": code.astype(np.int64),
                }
            )
        )
    statements = pd.concat(parts, ignore_index=True)
    events = EventData(accounts=accounts, statements=statements, protected=TAIWAN_PROTECTED)
    target = pd.Series(
        raw["default payment next month"].to_numpy(dtype=np.int64),
        index=pd.Index(ids, name="account_id"),
        name="default_next_month",
    )
    return events, target
