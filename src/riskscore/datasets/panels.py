"""The simulated card cycles and loan schedules, one month at a time.

:class:`CardCycles` and :class:`LoanCycles` hold a portfolio's state (balances,
arrears, savings, missed cycles) and advance it one month per :meth:`step`.
:func:`~riskscore.datasets.make_portfolio` steps them through the whole window
in one go; :func:`~riskscore.datasets.simulate` steps them month by month,
between a strategy's decisions, and copies them to see what a contact changes.

Every random number a month uses is drawn up front by :meth:`draw` (the same
size whatever the state), so a copy of some accounts given the same draws
lives the same life as the originals (the common random numbers a
counterfactual needs). A *rescue* makes a borrower who would miss the cycle's
payment pay what is due instead: that is how a contact changes what happens.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["Accounts", "CardCycles", "CardPanel", "LoanCycles", "LoanPanel", "Shocks"]


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

    def take(self, idx: np.ndarray) -> Accounts:
        """The accounts at positions ``idx``."""
        values = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name != "n"}
        return Accounts(n=len(idx), **values)


@dataclass
class Shocks:
    """The shock calendar: one element per account."""

    major: np.ndarray  # bool: meets a major shock
    major_start: np.ndarray  # month index of the major shock (may be before the window)
    major_end: np.ndarray  # month index of recovery (may be after the window)
    stop: np.ndarray  # month index a strategic borrower stops paying (-1: none)
    spree: np.ndarray  # bool: maxes the card out just before stopping

    def take(self, idx: np.ndarray) -> Shocks:
        """The shocks of the accounts at positions ``idx``."""
        return Shocks(*(getattr(self, f.name)[idx] for f in fields(self)))


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


def min_due(balance: np.ndarray) -> np.ndarray:
    """A card's minimum payment: 3% of the balance, at least 25, at most the balance."""
    pos = np.maximum(balance, 0.0)
    return np.round(np.minimum(pos, np.maximum(0.03 * pos, 25.0)), 2)


class _Cycles:
    """What the card and the loan simulations share: the accounts, their stress and shocks, and copying."""

    per_account: tuple[str, ...] = ()  # the state arrays indexed by account (first axis), copied by take

    def __init__(self, acc: Accounts, stress: np.ndarray, shock: Shocks) -> None:
        self.acc, self.stress, self.shock = acc, stress, shock

    def take(self, idx: np.ndarray) -> Any:
        """A copy of the accounts at ``idx``, state and history included."""
        other = copy.copy(self)
        other.acc, other.stress, other.shock = self.acc.take(idx), self.stress[idx], self.shock.take(idx)
        for name in self.per_account:
            setattr(other, name, getattr(self, name)[idx].copy())
        return other


class CardCycles(_Cycles):
    """Card accounts' state, advanced one statement cycle (one month) per :meth:`step`."""

    per_account = ("stmt_day", "prev_day", "active", "balance_prev", "arrears", "min_prev", "missed", "forgot_last",
                   "savings", "dpd", "day_num")  # fmt: skip

    def __init__(
        self,
        rng: np.random.Generator,
        acc: Accounts,
        stress: np.ndarray,
        shock: Shocks,
        month_starts: np.ndarray,
    ) -> None:
        n, months = stress.shape
        super().__init__(acc, stress, shock)
        self.stmt_day = _cycle_dates(acc, month_starts)
        self.prev_day = np.concatenate([self.stmt_day[:, :1] - np.timedelta64(30, "D"), self.stmt_day[:, :-1]], axis=1)
        # A card's first statement comes at least 20 days after it opens.
        self.active = acc.is_card[:, None] & (self.stmt_day >= acc.open_day[:, None] + np.timedelta64(20, "D"))
        self.season = _season(month_starts[:months])
        seasoned = acc.open_day < month_starts[0] - np.timedelta64(60, "D")
        balance_prev = np.where(seasoned, acc.limit * rng.beta(1.2, 3.5, n), 0.0)
        self.balance_prev = np.where(acc.behaviour == 0, balance_prev * 0.3, balance_prev).round(2)
        self.arrears = np.zeros(n)
        self.min_prev = min_due(self.balance_prev)
        self.missed = np.zeros(n, dtype=np.int64)
        self.forgot_last = np.zeros(n, dtype=bool)
        self.savings = acc.savings.copy()
        self.out = {k: np.zeros((n, months)) for k in ("balance", "payment", "min_due", "purchases", "cash_advance")}
        self.dpd = np.zeros((n, months), dtype=np.int64)
        self.day_num = self.stmt_day.astype(np.int64)

    @staticmethod
    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        """One month's random numbers for ``n`` accounts (forgetting, spend, spree, cash advance)."""
        return (rng.random(n), rng.lognormal(-0.03, 0.25, n), rng.uniform(0.5, 0.95, n), rng.random(n),
                rng.uniform(0.05, 0.25, n))  # fmt: skip

    def due_day(self, t: int) -> np.ndarray:
        """Due date of the payment recorded on cycle ``t``'s statement (the previous statement's)."""
        prev = self.stmt_day[:, t - 1] if t > 0 else self.prev_day[:, 0]
        return prev + self.acc.grace.astype("timedelta64[D]")

    def take(self, idx: np.ndarray) -> CardCycles:
        """A copy of the accounts at ``idx``, state and history included."""
        other: CardCycles = super().take(idx)
        other.out = {k: v[idx].copy() for k, v in self.out.items()}
        return other

    def step(self, t: int, draws: tuple[np.ndarray, ...], rescue: np.ndarray | None = None) -> None:
        """Advance to cycle ``t``'s statement; ``rescue`` (bool per account) pays what is due instead of missing."""
        acc, shock = self.acc, self.shock
        n = acc.n
        forget_u, spend_ln, spree_u, advance_u, advance_amt = draws
        balance_prev, min_prev, arrears = self.balance_prev, self.min_prev, self.arrears
        on = self.active[:, t]
        s = self.stress[:, t]
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
        intended = np.where(self.forgot_last, np.maximum(intended, due), intended)
        cash = cap + self.savings
        # Short of cash for what they meant to pay, people pay what this month's
        # budget allows, drawing on savings for the minimum only; short of the
        # minimum, whatever they have.
        affordable = np.maximum(due, np.minimum(intended, cap))
        paid = np.where(cash >= intended, intended, np.where(cash >= due, affordable, cash))
        forgets = forget_u < np.where(self.forgot_last, acc.forget_rate * 2.0, acc.forget_rate)
        paid = np.where(forgets | stopped, 0.0, paid)
        if rescue is not None:  # a contact that works: what is due gets paid
            saved = rescue & (paid < due - 0.005)
            paid = np.where(saved, due, paid)
            forgets = forgets & ~rescue
        paid = np.where(on, np.round(paid, 2), 0.0)
        self.savings = _save(acc, self.savings, cap, paid, s)
        late = on & (due > 0.005) & (paid < due - 0.005)
        self.missed = missed = np.where(on, np.where(late, self.missed + 1, 0), self.missed)
        self.arrears = np.where(late, due - paid, 0.0)
        self.forgot_last = on & forgets & late
        # Spending: seasonal, rising with stress (credit covers essentials), a
        # spree before a strategic stop, nothing once the card is blocked at 60+.
        spend = acc.spend_base * self.season[t] * (1.0 + 0.9 * s) * spend_ln
        spree = shock.spree & (shock.stop >= 0) & (t >= shock.stop - 2) & (t < shock.stop)
        carried = balance_prev - paid
        room = np.maximum(acc.limit * 1.02 - carried, 0.0)
        spend = np.where(spree, room * spree_u, spend)
        advance_p = np.where(s > 0.15, 0.25 + 0.5 * s, 0.01)
        advance = np.where(advance_u < advance_p, acc.limit * advance_amt, 0.0)
        spend, advance = np.minimum(spend, room), np.minimum(advance, np.maximum(room - spend, 0.0))
        blocked = missed >= 2
        spend = np.where(on & ~blocked, np.round(spend, 2), 0.0)
        advance = np.where(on & ~blocked, np.round(advance, 2), 0.0)
        interest = np.where(carried > 0, carried * acc.apr / 12.0, 0.0)
        fee = np.where(late, 25.0, 0.0)
        balance = np.where(on, np.round(carried + spend + advance + interest + fee + 0.0, 2), balance_prev)
        # dpd at the statement: days since the due date of the oldest unpaid cycle.
        day_num = self.day_num
        oldest = np.clip(t - missed + 1, 0, t) - 1
        oldest_day = np.where(oldest >= 0, day_num[np.arange(n), np.maximum(oldest, 0)], day_num[:, 0] - 30)
        self.dpd[:, t] = np.where(on & (missed > 0), day_num[:, t] - oldest_day - acc.grace, 0)
        out = self.out
        out["balance"][:, t] = balance
        out["payment"][:, t] = paid
        out["min_due"][:, t] = np.where(on, min_due(balance), 0.0)
        out["purchases"][:, t] = spend
        out["cash_advance"][:, t] = advance
        self.balance_prev = np.where(on, balance, balance_prev)
        self.min_prev = np.where(on, min_due(balance), min_prev)

    def panel(self) -> CardPanel:
        """The cycles stepped so far (later months hold zeros)."""
        return CardPanel(
            active=self.active,
            stmt_day=self.stmt_day,
            prev_day=self.prev_day,
            dpd=np.maximum(self.dpd, 0),
            **self.out,
        )


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


class LoanCycles(_Cycles):
    """Instalment loans' state, advanced one instalment (one month) per :meth:`step`."""

    per_account = ("term", "amount", "open_month", "number", "day_in_month", "due_day", "due", "paid1_day",
                   "paid2_day", "paid1_amt", "paid2_amt", "owed", "savings", "forgot_last")  # fmt: skip

    def __init__(
        self,
        rng: np.random.Generator,
        acc: Accounts,
        stress: np.ndarray,
        shock: Shocks,
        month_starts: np.ndarray,
    ) -> None:
        n, months = stress.shape
        super().__init__(acc, stress, shock)
        self.term = rng.choice(np.array([12, 24, 36, 48]), size=n)
        rate = acc.apr / 12.0 * 0.6
        self.amount = np.round(acc.limit * rate / (1.0 - (1.0 + rate) ** -self.term), 2)
        self.open_month = acc.open_day.astype("datetime64[M]")
        window_month = month_starts[:months].astype("datetime64[M]")
        self.number = (window_month[None, :] - self.open_month[:, None]).astype(np.int64)
        open_dom = (acc.open_day - self.open_month.astype("datetime64[D]")).astype(np.int64)
        self.day_in_month = np.minimum(open_dom, 27).astype("timedelta64[D]")
        self.due_day = window_month.astype("datetime64[D]")[None, :] + self.day_in_month[:, None]
        self.due = (~acc.is_card)[:, None] & (self.number >= 1) & (self.number <= self.term[:, None])
        self.data_end = month_starts[-1]
        nat = np.datetime64("NaT", "D")
        self.paid1_day = np.full((n, months), nat)
        self.paid2_day = np.full((n, months), nat)
        self.paid1_amt = np.zeros((n, months))
        self.paid2_amt = np.zeros((n, months))
        self.owed = np.zeros((n, months))  # still outstanding per instalment
        self.savings = acc.savings.copy()
        self.forgot_last = np.zeros(n, dtype=bool)

    @staticmethod
    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        """One month's random numbers for ``n`` accounts (forgetting, payment days, slips)."""
        return (rng.random(n), rng.integers(0, 6, n), rng.integers(0, 8, n), rng.random(n), rng.integers(1, 21, n),
                rng.integers(21, 50, n), rng.random(n), rng.integers(1, 12, n))  # fmt: skip

    def step(self, t: int, draws: tuple[np.ndarray, ...], rescue: np.ndarray | None = None) -> None:
        """Advance through month ``t``'s instalment; ``rescue`` (bool per account) pays it on time in full."""
        acc, shock, amount = self.acc, self.shock, self.amount
        forget_u, catch_d, early_d, late_u, late_short, late_long, slip_u, slip_d = draws
        paid1_day, paid2_day, paid1_amt, paid2_amt, owed = (
            self.paid1_day, self.paid2_day, self.paid1_amt, self.paid2_amt, self.owed,
        )  # fmt: skip
        due_day = self.due_day
        nat = np.datetime64("NaT", "D")
        on = self.due[:, t]
        cap = _capacity(acc, self.stress[:, t])
        stopped = (shock.stop >= 0) & (t >= shock.stop)
        cash = cap + self.savings
        forgets = on & (forget_u < np.where(self.forgot_last, acc.forget_rate * 2, acc.forget_rate))
        # First settle arrears of earlier instalments when there is room.
        arrears = owed[:, :t].sum(axis=1)
        catch_up = on & ~stopped & (arrears > 0) & (cash >= arrears + amount)
        catch_day = due_day[:, t] + catch_d.astype("timedelta64[D]")
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
        early = early_d.astype("timedelta64[D]")
        late_days = np.where(late_u < 0.85, late_short, late_long)
        # Under stress, payments slip past the due date by a few days first.
        slips = slip_u < self.stress[:, t]
        slip = np.where(slips, slip_d, 0).astype("timedelta64[D]")
        if rescue is not None:  # a contact that works: the instalment is paid on time, in full
            forgets, slips = forgets & ~rescue, slips & ~rescue
            pay = np.where(rescue, amount, pay)
        when = np.where(forgets, due_day[:, t] + late_days.astype("timedelta64[D]"), due_day[:, t] - early)
        when = np.where(slips & ~forgets, due_day[:, t] + slip, when)
        when = np.maximum(when, acc.open_day)
        known = when < self.data_end
        pay = np.where(known & on, pay, 0.0)
        paid1_day[:, t] = np.where(on & (pay > 0), when, nat)
        paid1_amt[:, t] = pay
        owed[:, t] = np.where(on, np.round(amount - pay, 2), 0.0)
        self.savings = _save(acc, self.savings, cap, pay, self.stress[:, t])
        self.forgot_last = forgets

    def panel(self, data_end: np.datetime64 | None = None) -> LoanPanel:
        """The instalments stepped so far, with the payments known at ``data_end`` (the window's end) and closings."""
        acc, due, amount = self.acc, self.due, self.amount
        data_end = self.data_end if data_end is None else data_end
        nat = np.datetime64("NaT", "D")
        paid1_day, paid1_amt = self.paid1_day.copy(), self.paid1_amt.copy()
        paid2_day, paid2_amt = self.paid2_day.copy(), self.paid2_amt.copy()
        # A late settlement that falls after the data end is not known yet.
        for day, amt in ((paid1_day, paid1_amt), (paid2_day, paid2_amt)):
            unknown = ~np.isnat(day) & (day >= data_end)
            day[unknown] = nat
            amt[unknown] = 0.0
        # A loan closes when its last instalment is settled: at its last payment, or at
        # its final due date when the schedule ended before the window.
        final_due = (self.open_month + self.term.astype("timedelta64[M]")).astype("datetime64[D]") + self.day_in_month
        settled = np.where(due, paid1_amt + paid2_amt >= amount[:, None] - 0.005, True).all(axis=1)
        paid_days = np.where(np.isnat(paid2_day), paid1_day, paid2_day)
        last_paid = np.where(due & ~np.isnat(paid_days), paid_days, np.datetime64("1900-01-01")).max(axis=1)
        any_due = due.any(axis=1)
        close = np.where(any_due, last_paid, final_due)
        done = (~acc.is_card) & (final_due < data_end) & settled
        close_day = np.where(done, np.maximum(close, acc.open_day + np.timedelta64(1, "D")), nat)
        return LoanPanel(due, self.due_day, self.number, amount, paid1_day, paid1_amt, paid2_day, paid2_amt, close_day)
