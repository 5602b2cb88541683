"""The synthetic portfolio: a documented generative model of card and loan borrowers.

Income, latent stress with major and minor shocks, five behaviour types,
seasonal spending by category and channel, cash advances, instalment loans with
partial and late payments, and collection contacts (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.datasets.tables import contact_table, installment_table, statement_table, transaction_table

__all__ = ["BEHAVIOURS", "Accounts", "CardPanel", "LoanPanel", "make_portfolio"]

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
_MEAN_PURCHASE_RATE = 1.0 + (1.5 + 9.0) / 2  # 1 + Poisson(U(1.5, 9)) transactions per cycle


# --------------------------------------------------------------------------- portfolio


@dataclass
class Accounts:
    """The drawn accounts: one array element per account."""

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
    multi_account_share: float = 1 / 3,
) -> tuple[EventData, pd.DataFrame]:
    """Generate a synthetic consumer-credit portfolio with a known generative model.

    Each account is a credit card (70%) or an instalment loan (30%) of a
    customer; about a third of the customers (``multi_account_share``) hold two
    or three accounts, whose ids lie anywhere in the book. A customer has one
    monthly income, budget and savings level, one behaviour type and one latent
    financial-stress process for all their accounts (each account runs on that
    budget: it is not pooled); time zone, age and stated income are the
    customer's too. Stress
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
    multi_account_share : float, default=1/3
        Share of the customers who hold more than one account (three quarters
        of them two, a quarter three); 0 makes every account its own customer.

    Returns
    -------
    events : EventData
        ``accounts`` (with ``customer_id``, static ``age``, marked protected,
        and ``stated_income``), ``statements`` for cards, ``installments`` for loans,
        ``transactions`` for cards and ``contacts``.
    truth : DataFrame
        Indexed by ``account_id``: ``customer_id``, ``behaviour``, ``product``, ``income``,
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
    if not 0 <= multi_account_share <= 1:
        raise ValueError(f"multi_account_share must be in [0, 1]; got {multi_account_share!r}")
    rng = np.random.default_rng(seed)
    start_month = pd.Timestamp(start).to_period("M").to_timestamp()
    acc = _draw_accounts(rng, n_accounts, months, start_month)
    # Who holds which account: drawn from a stream of its own, so share 0 gives the one-account portfolio.
    lead = _customers(np.random.default_rng([seed, 13]), n_accounts, multi_account_share)
    _share_person(acc, lead)
    stress, shock = _stress_paths(rng, acc, months)
    stress, shock = (
        stress[lead],
        _Shocks(*(getattr(shock, f)[lead] for f in ("major", "major_start", "major_end", "stop", "spree"))),
    )
    ids = np.arange(100_001, 100_001 + n_accounts, dtype=np.int64)

    month_starts = pd.date_range(start_month, periods=months + 1, freq="MS").to_numpy().astype("datetime64[D]")
    card = _simulate_cards(rng, acc, stress, shock, month_starts)
    loan = _simulate_loans(rng, acc, stress, shock, month_starts)

    statements = statement_table(acc, ids, card)
    if transactions_per_cycle is not None and transactions_per_cycle < 1:
        raise ValueError(f"transactions_per_cycle must be >= 1; got {transactions_per_cycle}")
    scale = 1.0 if transactions_per_cycle is None else (transactions_per_cycle - 1.0) / (_MEAN_PURCHASE_RATE - 1.0)
    transactions = transaction_table(rng, acc, ids, card, month_starts, scale)
    installments = installment_table(acc, ids, loan)
    contacts = contact_table(rng, acc, ids, statements, installments, month_starts)

    tz_names = np.array([z for z, _ in _TIMEZONES], dtype=object)
    tz_p = np.array([p for _, p in _TIMEZONES])
    customer_ids = ids[lead] + 400_000  # the customer is named after its first account
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "customer_id": customer_ids,
            "open_date": acc.open_day.astype("datetime64[ns]"),
            "credit_limit": acc.limit,
            "product": np.where(acc.is_card, "card", "loan"),
            "timezone": rng.choice(tz_names, size=acc.n, p=tz_p / tz_p.sum())[lead],
            "close_date": loan.close_day.astype("datetime64[ns]"),
            "age": np.clip(rng.normal(41, 12, acc.n).round(), 21, 80).astype(np.int64)[lead],
            "stated_income": ((acc.income * rng.lognormal(0.05, 0.15, acc.n) / 100).round() * 100)[lead],
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
            "customer_id": customer_ids,
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


def _customers(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """The first account of each account's customer: customers of one to three accounts, ids spread out.

    ``share`` of the customers hold two (three quarters) or three accounts
    (a quarter); which accounts is a random draw, so a customer's account ids
    are not neighbours.
    """
    lead = np.arange(n)
    if share <= 0 or n < 2:
        return lead
    # Customers per account: E[size] = 1 + share * 1.25; sizes drawn per customer.
    sizes = np.where(rng.random(n) < share, np.where(rng.random(n) < 0.75, 2, 3), 1)
    ends = np.cumsum(sizes)
    sizes = sizes[: int(np.searchsorted(ends, n)) + 1]
    sizes[-1] -= int(sizes.sum() - n)
    order = rng.permutation(n)
    owner = np.repeat(np.arange(len(sizes)), sizes)  # customer of each account in `order`
    first = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first, owner, order)
    lead[order] = first[owner]
    return lead


def _share_person(acc: Accounts, lead: np.ndarray) -> None:
    """Give each customer's accounts the customer's traits: behaviour, income, budget, savings, habits.

    Each account then runs on the customer's share of income free for debt
    service and savings level; the budget is not pooled across the accounts
    (a simplification: splitting it made the borrowers of several accounts look
    strained whatever their type).
    """
    if (lead == np.arange(acc.n)).all():
        return
    for name in ("behaviour", "income", "forget_rate", "revolve_share", "slack", "savings"):
        setattr(acc, name, getattr(acc, name)[lead])


@dataclass
class _Shocks:
    major: np.ndarray  # bool: meets a major shock
    major_start: np.ndarray  # month index of the major shock (may be before the window)
    major_end: np.ndarray  # month index of recovery (may be after the window)
    stop: np.ndarray  # month index a strategic borrower stops paying (-1: none)
    spree: np.ndarray  # bool: maxes the card out just before stopping


def _draw_accounts(rng: np.random.Generator, n: int, months: int, start: pd.Timestamp) -> Accounts:
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
    return Accounts(
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


def _stress_paths(rng: np.random.Generator, acc: Accounts, months: int) -> tuple[np.ndarray, _Shocks]:
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
class CardPanel:
    """The simulated card cycles: (accounts, months) arrays."""

    active: np.ndarray  # (n, months) bool: a statement exists
    stmt_day: np.ndarray  # (n, months) datetime64[D]
    prev_day: np.ndarray  # (n, months) start of the cycle
    balance: np.ndarray
    payment: np.ndarray
    min_due: np.ndarray
    dpd: np.ndarray
    purchases: np.ndarray
    cash_advance: np.ndarray


def _cycle_dates(acc: Accounts, month_starts: np.ndarray) -> np.ndarray:
    months = len(month_starts) - 1
    offsets = (acc.cycle_day - 1).astype("timedelta64[D]")
    return month_starts[None, :months] + offsets[:, None]


def _season(month_starts: np.ndarray) -> np.ndarray:
    month = (month_starts.astype("datetime64[M]").astype(np.int64) % 12) + 1
    bump = {11: 1.12, 12: 1.35, 1: 0.85, 7: 1.12, 8: 1.1}
    return np.array([bump.get(int(m), 1.0) for m in month])


def _capacity(acc: Accounts, stress_t: np.ndarray) -> np.ndarray:
    # Money free for debt service: income after essentials, cut by stress (lost
    # income and extra expenses).
    return acc.income * acc.slack * np.clip(1.0 - 1.3 * stress_t, 0.0, 1.0)


def _save(acc: Accounts, savings: np.ndarray, cap: np.ndarray, paid: np.ndarray, stress: np.ndarray) -> np.ndarray:
    # Savings grow slowly from spare capacity and drain under stress, when living
    # costs exceed a reduced income; paying more than capacity draws on them too.
    change = 0.3 * cap - 0.9 * stress * acc.income - np.maximum(paid - cap, 0.0)
    return np.clip(savings + change, 0.0, 1.5 * acc.income)


def _simulate_cards(
    rng: np.random.Generator, acc: Accounts, stress: np.ndarray, shock: _Shocks, month_starts: np.ndarray
) -> CardPanel:
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
    return CardPanel(active=active, stmt_day=stmt_day, prev_day=prev_day, dpd=np.maximum(dpd, 0), **out)


def _min_due(balance: np.ndarray) -> np.ndarray:
    pos = np.maximum(balance, 0.0)
    return np.round(np.minimum(pos, np.maximum(0.03 * pos, 25.0)), 2)


@dataclass
class LoanPanel:
    """The simulated loan schedules and payments: (accounts, months) arrays."""

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
    rng: np.random.Generator, acc: Accounts, stress: np.ndarray, shock: _Shocks, month_starts: np.ndarray
) -> LoanPanel:
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
    return LoanPanel(due, due_day, number, amount, paid1_day, paid1_amt, paid2_day, paid2_amt, close_day)
