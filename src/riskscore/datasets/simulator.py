"""The synthetic portfolio: a documented generative model of card and loan borrowers.

Income, latent stress with major and minor shocks, five behaviour types,
seasonal spending by category and channel, cash advances, instalment loans with
partial and late payments, and collection contacts (docs/architecture.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.datasets.panels import Accounts, CardCycles, LoanCycles, Shocks
from riskscore.datasets.tables import contact_table, installment_table, statement_table, transaction_table

__all__ = ["BEHAVIOURS", "make_portfolio"]

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
        shock.take(lead),
    )
    ids = np.arange(100_001, 100_001 + n_accounts, dtype=np.int64)

    month_starts = pd.date_range(start_month, periods=months + 1, freq="MS").to_numpy().astype("datetime64[D]")
    cards = CardCycles(rng, acc, stress, shock, month_starts)
    for t in range(months):
        cards.step(t, cards.draw(rng, acc.n))
    loans = LoanCycles(rng, acc, stress, shock, month_starts)
    for t in range(months):
        loans.step(t, loans.draw(rng, acc.n))
    card, loan = cards.panel(), loans.panel()

    statements = statement_table(acc, ids, card)
    if transactions_per_cycle is not None and transactions_per_cycle < 1:
        raise ValueError(f"transactions_per_cycle must be >= 1; got {transactions_per_cycle}")
    scale = 1.0 if transactions_per_cycle is None else (transactions_per_cycle - 1.0) / (_MEAN_PURCHASE_RATE - 1.0)
    transactions = transaction_table(rng, acc, ids, card, month_starts, scale)
    installments = installment_table(acc, ids, loan)
    contacts = contact_table(rng, acc, ids, statements, installments, month_starts)

    accounts = accounts_table(rng, acc, ids, lead)
    accounts.insert(6, "close_date", loan.close_day.astype("datetime64[ns]"))
    events = EventData(
        accounts=accounts,
        statements=statements,
        installments=installments,
        transactions=transactions,
        contacts=contacts,
        protected=("age",),
    )
    truth = truth_table(acc, shock, ids, lead, month_starts)
    return events, truth


def accounts_table(rng: np.random.Generator, acc: Accounts, ids: np.ndarray, lead: np.ndarray) -> pd.DataFrame:
    """The accounts table but ``close_date``: the static columns, time zone, age and stated income the customer's.

    The time zone, age and stated income are drawn from ``rng`` in that order.
    """
    tz_names = np.array([z for z, _ in _TIMEZONES], dtype=object)
    tz_p = np.array([p for _, p in _TIMEZONES])
    return pd.DataFrame(
        {
            "account_id": ids,
            "customer_id": ids[lead] + 400_000,  # the customer is named after its first account
            "open_date": acc.open_day.astype("datetime64[ns]"),
            "credit_limit": acc.limit,
            "product": np.where(acc.is_card, "card", "loan"),
            "timezone": rng.choice(tz_names, size=acc.n, p=tz_p / tz_p.sum())[lead],
            "age": np.clip(rng.normal(41, 12, acc.n).round(), 21, 80).astype(np.int64)[lead],
            "stated_income": ((acc.income * rng.lognormal(0.05, 0.15, acc.n) / 100).round() * 100)[lead],
        }
    )


def truth_table(
    acc: Accounts, shock: Shocks, ids: np.ndarray, lead: np.ndarray, month_starts: np.ndarray
) -> pd.DataFrame:
    """What the generator knows and the data do not: type, income and the shock calendar per account."""
    months = len(month_starts) - 1
    return pd.DataFrame(
        {
            "customer_id": ids[lead] + 400_000,
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


def _stress_paths(rng: np.random.Generator, acc: Accounts, months: int) -> tuple[np.ndarray, Shocks]:
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
    return stress, Shocks(hardship, major_start, major_end, stop, spree)


def _month_dates(index: np.ndarray, present: np.ndarray, month_starts: np.ndarray) -> np.ndarray:
    """First day of month ``index`` (counted from the window start; may be negative)."""
    months = month_starts[0].astype("datetime64[M]") + index.astype("timedelta64[M]")
    out = months.astype("datetime64[D]").astype("datetime64[ns]")
    out[~present] = np.datetime64("NaT")
    return out
