"""The closed-loop simulator: a portfolio lived month by month, with a strategy's contacts changing what happens.

:func:`simulate` draws the same kind of portfolio as
:func:`~riskscore.datasets.make_portfolio` and steps it one month at a time. At
each month start the strategy sees the events known so far and returns its
decisions (a ``recommend`` frame); the contacts are written to ``contacts``
with their outcomes, and the :class:`~riskscore.datasets.Response` decides what
they change: a contact that works makes the borrower pay what falls due next.

Each decision row also gets ``true_effect``, known in simulation only: the drop
in the chance of reaching 30+ days past due within the horizon that the row's
action causes (for a held-out row, the action it was held out from). It is
found by living the account's next months twice from the moment of the
decision, with and without the contact working, on the same random numbers
(no later contact in either), so the mean of the column over any group is an
unbiased estimate of the group's true average effect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.datasets.dunning import dunning
from riskscore.datasets.panels import Accounts, CardCycles, LoanCycles
from riskscore.datasets.response import RESPONSE_ACTIONS, Response
from riskscore.datasets.simulator import (
    _customers,
    _draw_accounts,
    _share_person,
    _stress_paths,
    accounts_table,
    truth_table,
)
from riskscore.datasets.tables import installment_table, statement_table, transaction_table
from riskscore.labels import horizon_delta, make_labels

__all__ = ["STRATEGIES", "simulate"]

STRATEGIES: tuple[str, ...] = ("none", "dunning")
"""The built-in strategies of :func:`simulate` (any callable ``(events, now) -> decisions`` also works)."""

_NEEDED = ("account_id", "action", "channel", "control", "treatment", "send_after")
_CONTACT_COLUMNS = ("account_id", "timestamp", "channel", "outcome", "direction", "contact_id")
_TRUE = ("true_effect", "reached_without")
_OUTCOME = {"reminder": "delivered", "repayment_plan": "plan_offered"}

Strategy = Callable[[EventData, pd.Timestamp], pd.DataFrame]


def simulate(
    strategy: str | Strategy,
    n_accounts: int = 20_000,
    months: int = 12,
    seed: int = 0,
    response: Response | None = None,
    *,
    start: str | pd.Timestamp = "2023-01-01",
    warmup: int = 4,
    horizon: str = "90D",
    capacity: dict[str, int] | None = None,
    events_timezone: str = "America/New_York",
    multi_account_share: float = 1 / 3,
) -> tuple[EventData, pd.DataFrame, pd.DataFrame]:
    """Run a portfolio month by month under an outreach strategy, with borrowers who respond to it.

    Parameters
    ----------
    strategy : {"none", "dunning"} or callable
        ``"none"``: no contact. ``"dunning"``: the usual practice, a call (or,
        past the call capacity, an SMS) to every customer with an account past
        due, most days past due first (:func:`~riskscore.datasets.dunning.dunning`).
        A callable ``(events, now) -> decisions`` gets the events known at
        ``now`` (a month start, tz-aware in ``events_timezone``) and returns the
        ``recommend`` frame, such as :class:`riskscore.outreach.Strategy`.
    n_accounts, months, seed, start, multi_account_share
        The portfolio, as for :func:`~riskscore.datasets.make_portfolio` (the
        same seed gives the same world under every strategy, bit for bit, up
        to what the contacts change).
    response : Response, optional
        How borrowers respond; the default :class:`Response` when absent.
    warmup : int, default=4
        Months of history before the first decision.
    horizon : str, default="90D"
        The performance window of ``true_effect``; decisions are made at every
        month start from ``warmup`` on whose horizon ends inside the window.
    capacity : dict, optional
        Contacts per channel at each monthly decision, for ``"dunning"``
        (a callable strategy carries its own).
    events_timezone : str, default="America/New_York"
        The zone of the events' naive timestamps and of ``now``.

    Returns
    -------
    events : EventData
        The whole window, contacts and their outcomes (``delivered``,
        ``attempt``, ``connected``, ``plan_offered``, ``plan_accepted``,
        ``opt_out``) included.
    truth : DataFrame
        As :func:`make_portfolio`'s, indexed by ``account_id``.
    decisions : DataFrame
        Every decision row the strategy returned, with ``as_of``,
        ``true_effect`` and ``reached_without`` (1 if the account reaches 30+
        days past due within the horizon without the row's action, on the
        same random numbers; NaN for rows neither acted on nor held out from
        an action). Over a group,
        ``true_effect.sum() / reached_without.sum()`` is the action's true
        relative effect, the number ``recommend``'s benefit model calls
        ``effect``.
    """
    response = Response() if response is None else response
    if not isinstance(response, Response):
        raise TypeError(f"response must be a riskscore.datasets.Response; got {type(response).__name__}")
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {list(STRATEGIES)} or a callable; got {strategy!r}")
    elif not callable(strategy):
        raise TypeError(f"strategy must be a name or a callable (events, now) -> decisions; got {strategy!r}")
    if n_accounts < 1 or months < 3:
        raise ValueError(f"need n_accounts >= 1 and months >= 3; got n_accounts={n_accounts}, months={months}")
    if not 1 <= warmup < months:
        raise ValueError(f"warmup must be a whole number of months in [1, months); got {warmup!r}")
    h = horizon_delta(horizon)
    world = _World(seed, n_accounts, months, start, multi_account_share, response, events_timezone)
    decide = _builtin(strategy, capacity) if isinstance(strategy, str) else strategy
    # The last decision's horizon must end before the last statements (the read-out's data end).
    last = world.month_starts[months - 1] + np.timedelta64(20, "D")
    if decide is not None and not world.month_starts[warmup] + h.to_timedelta64() <= last:
        raise ValueError(
            f"no decision: with months={months} and warmup={warmup}, the first decision's horizon {horizon} "
            f"ends after the window's last statements (about {pd.Timestamp(last).date()}); add months or "
            "shorten the warm-up or the horizon"
        )
    decided: list[pd.DataFrame] = []
    for t in range(months):
        now = world.month_starts[t]
        if t >= warmup and decide is not None and now + h.to_timedelta64() <= last:
            snapshot = world.events(now)
            now_ts = pd.Timestamp(now).tz_localize(events_timezone)
            rows = _checked(decide(snapshot, now_ts), snapshot, t)
            if len(rows):
                rows["as_of"] = pd.Timestamp(now)
                rows["true_effect"], rows["reached_without"] = world.apply(rows, t, h)
                decided.append(rows)
        world.step(t)
    events = world.events(world.month_starts[months])
    decisions = pd.concat(decided, ignore_index=True) if decided else pd.DataFrame(columns=[*_NEEDED, "as_of",
                                                                                           *_TRUE])  # fmt: skip
    return events, world.truth(), decisions


def _builtin(name: str, capacity: dict[str, int] | None) -> Strategy | None:
    if name == "none":
        return None
    return lambda events, now: dunning(events, now, capacity=capacity)


def _checked(rows: Any, snapshot: EventData, t: int) -> pd.DataFrame:
    """The strategy's decisions, refused unless they are a recommend-like frame of known accounts."""
    if not isinstance(rows, pd.DataFrame):
        raise TypeError(f"the strategy returned {type(rows).__name__} at month {t}; it must return a DataFrame")
    missing = [c for c in _NEEDED if c not in rows.columns]
    if missing:
        raise ValueError(
            f"the strategy's decisions at month {t} lack the columns {missing}; they must carry {list(_NEEDED)} "
            "(the recommend output does)"
        )
    rows = rows.reset_index(drop=True).copy()
    known = rows["account_id"].isin(snapshot.accounts["account_id"])
    if not known.all():
        raise ValueError(
            f"the strategy decided on {int((~known).sum())} accounts not in the events at month {t}, "
            f"e.g. {rows.loc[~known, 'account_id'].head(3).tolist()}"
        )
    if rows["account_id"].duplicated().any():
        dup = rows.loc[rows["account_id"].duplicated(), "account_id"].head(3).tolist()
        raise ValueError(f"the strategy decided twice on some accounts at month {t}, e.g. {dup}")
    return rows


@dataclass
class _Pending:
    """Rescues waiting for their cycle: month index -> bool per account."""

    n: int
    by_month: dict[int, np.ndarray] = field(default_factory=dict)

    def mark(self, month: np.ndarray, pos: np.ndarray) -> None:
        for m in np.unique(month).tolist():
            mask = self.by_month.setdefault(int(m), np.zeros(self.n, dtype=bool))
            mask[pos[month == m]] = True

    def get(self, t: int) -> np.ndarray | None:
        return self.by_month.get(t)


class _World:
    """The portfolio's state, its event history so far, and the contacts' bookkeeping."""

    def __init__(
        self,
        seed: int,
        n: int,
        months: int,
        start: str | pd.Timestamp,
        share: float,
        response: Response,
        events_tz: str,
    ) -> None:
        if not 0 <= share <= 1:
            raise ValueError(f"multi_account_share must be in [0, 1]; got {share!r}")
        self.seed, self.n, self.months, self.response, self.events_tz = seed, n, months, response, events_tz
        rng = np.random.default_rng([seed, 0])
        start_month = pd.Timestamp(start).to_period("M").to_timestamp()
        acc = _draw_accounts(rng, n, months, start_month)
        self.lead = _customers(np.random.default_rng([seed, 13]), n, share)
        _share_person(acc, self.lead)
        stress, shock = _stress_paths(rng, acc, months)
        stress, shock = stress[self.lead], shock.take(self.lead)
        self.acc, self.shock = acc, shock
        self.ids = np.arange(100_001, 100_001 + n, dtype=np.int64)
        self.month_starts = pd.date_range(start_month, periods=months + 1, freq="MS").to_numpy().astype("datetime64[D]")
        self.cards = CardCycles(np.random.default_rng([seed, 1]), acc, stress, shock, self.month_starts)
        self.loans = LoanCycles(np.random.default_rng([seed, 2]), acc, stress, shock, self.month_starts)
        self.card_rescue, self.loan_rescue = _Pending(n), _Pending(n)
        self.rate = np.random.default_rng([seed, 3]).uniform(1.5, 9.0, n)
        self.transactions: list[pd.DataFrame] = []
        self.contacts: list[pd.DataFrame] = []
        self.contact_times: dict[int, list[np.datetime64]] = {}
        self.accounts = accounts_table(np.random.default_rng([seed, 4]), acc, self.ids, self.lead)

    # ----------------------------------------------------------------- time

    def draws(self, t: int, idx: np.ndarray | None = None) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """Month ``t``'s random numbers for the cards and the loans (of the accounts ``idx``)."""
        card = CardCycles.draw(np.random.default_rng([self.seed, 1, t]), self.n)
        loan = LoanCycles.draw(np.random.default_rng([self.seed, 2, t]), self.n)
        if idx is None:
            return card, loan
        return tuple(d[idx] for d in card), tuple(d[idx] for d in loan)

    def step(self, t: int) -> None:
        card, loan = self.draws(t)
        self.cards.step(t, card, self.card_rescue.get(t))
        self.loans.step(t, loan, self.loan_rescue.get(t))
        panel = self.cards.panel()
        month = type(panel)(**{k: (v[:, t : t + 1] if v.ndim == 2 else v) for k, v in vars(panel).items()})
        tx_rng = np.random.default_rng([self.seed, 3, t])
        part = transaction_table(tx_rng, self.acc, self.ids, month, self.month_starts[t : t + 2], rate=self.rate)
        self.transactions.append(part)

    def events(self, now: np.datetime64) -> EventData:
        """The events known at ``now`` (at the window's end: all of them)."""
        stamp = now.astype("datetime64[ns]")
        accounts = self.accounts.copy()
        loans = self.loans.panel(data_end=now)
        accounts["close_date"] = loans.close_day.astype("datetime64[ns]")
        accounts = accounts.loc[accounts["open_date"] < stamp].reset_index(drop=True)
        statements = statement_table(self.acc, self.ids, self.cards.panel())
        statements = statements.loc[statements["statement_date"] < stamp].reset_index(drop=True)
        installments = installment_table(self.acc, self.ids, loans)
        installments = installments.loc[installments["due_date"] < stamp].reset_index(drop=True)
        tx = pd.concat(self.transactions, ignore_index=True) if self.transactions else None
        contacts = pd.concat(self.contacts, ignore_index=True) if self.contacts else _no_contacts()
        contacts = contacts.loc[contacts["timestamp"] < stamp]
        keep = accounts["account_id"]
        tables = {
            "statements": statements.loc[statements["account_id"].isin(keep)],
            "installments": installments.loc[installments["account_id"].isin(keep)],
            "transactions": None if tx is None else tx.loc[tx["timestamp"] < stamp],
            "contacts": contacts.sort_values(["account_id", "timestamp"], kind="stable").reset_index(drop=True),
        }
        return EventData(accounts=accounts, **tables, protected=("age",))

    def truth(self) -> pd.DataFrame:
        return truth_table(self.acc, self.shock, self.ids, self.lead, self.month_starts)

    # ----------------------------------------------------------------- contacts

    def targets(self, t: int, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The month whose payment a contact at month start ``t`` can change, and that payment's due date."""
        now = self.month_starts[t]
        card_due = self.cards.due_day(t)[pos]
        later = t + 1 < self.months
        next_due = self.cards.due_day(t + 1)[pos] if later else card_due
        card_month = np.where(card_due >= now, t, t + 1)
        card_day = np.where(card_due >= now, card_due, next_due)
        loan_day = self.loans.due_day[pos, t]
        is_card = self.acc.is_card[pos]
        return np.where(is_card, card_month, t), np.where(is_card, card_day, loan_day)

    def apply(self, rows: pd.DataFrame, t: int, horizon: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
        """Write the contacts of month ``t``, let the response act; each row's true effect and reached-without."""
        r = self.response
        pos = np.searchsorted(self.ids, rows["account_id"].to_numpy(dtype=np.int64))
        beh = self.acc.behaviour[pos]
        control = rows["control"].to_numpy(dtype=bool)
        action = rows["action"].astype(str).to_numpy()
        treatment = rows["treatment"].astype(object).fillna("none").astype(str).to_numpy()
        acting = np.where(control, treatment, action)
        contacted = ~control & (action != "none")
        month, due_day = self.targets(t, pos)
        when = _local(rows["send_after"], self.events_tz, self.month_starts[t])
        late = contacted & (when.astype("datetime64[D]") > due_day)
        effect = np.zeros(len(rows))
        table = r.table("effect")
        for k, a in enumerate(RESPONSE_ACTIONS):
            effect[acting == a] = table[beh[acting == a], k]
        effect = np.where(late, effect * r.late_factor, effect)
        has_due = self._has_due(pos, month)
        effect = np.where(has_due, effect, 0.0)
        # One draw per customer (a contact works for the person) and month.
        who = self.lead[pos]
        u_work, u_gate, u_opt = (np.random.default_rng([self.seed, 5 + k, t]).random(self.n)[who] for k in range(3))
        gate = np.ones(len(rows))
        gate[acting == "call"] = r.table("connect")[beh[acting == "call"]]
        gate[acting == "repayment_plan"] = r.table("accept")[beh[acting == "repayment_plan"]]
        passed = u_gate < gate
        works = contacted & passed & (u_work < np.divide(effect, gate, out=np.zeros_like(effect), where=gate > 0))
        plan = acting == "repayment_plan"
        # The true effect first: the shadows carry earlier months' rescues, not this month's.
        truth = self._true_effect(rows, pos, t, month, effect, plan, horizon, acting)
        self._rescue(pos, month, works, plan)
        self._record(rows, pos, when, action, contacted, passed, beh, u_opt)
        return truth

    def _has_due(self, pos: np.ndarray, month: np.ndarray) -> np.ndarray:
        m = np.minimum(month, self.months - 1)
        return np.where(self.acc.is_card[pos], self.cards.active[pos, m], self.loans.due[pos, m]) & (
            month < self.months
        )

    def _rescue(self, pos: np.ndarray, month: np.ndarray, works: np.ndarray, plan: np.ndarray) -> None:
        """Mark the payments the working contacts save: the next one, and the plan's cycles for a plan."""
        cycles = np.where(plan, self.response.plan_cycles, 1)
        for k in range(int(cycles.max(initial=1))):
            who = works & (cycles > k)
            for pending, is_card in ((self.card_rescue, True), (self.loan_rescue, False)):
                sel = who & (self.acc.is_card[pos] == is_card)
                if sel.any():
                    pending.mark(month[sel] + k, pos[sel])

    def _record(
        self,
        rows: pd.DataFrame,
        pos: np.ndarray,
        when: np.ndarray,
        action: np.ndarray,
        contacted: np.ndarray,
        passed: np.ndarray,
        beh: np.ndarray,
        u_opt: np.ndarray,
    ) -> None:
        """The contacts made, one row per account the contact concerns, with their outcomes."""
        sent = contacted & (action != "human_review")
        if not sent.any():
            return
        channel = rows["channel"].astype(str).to_numpy()
        ids = rows["account_id"].to_numpy(dtype=np.int64)
        # One contact of a customer is recorded on each account it concerns, under one contact id.
        cid = rows["contact_id"].astype(str).to_numpy() if "contact_id" in rows else ids.astype(str)
        outcome = np.array([_OUTCOME.get(a, "attempt") for a in action], dtype=object)
        outcome[(action == "call") & passed] = "connected"
        parts = [_contacts(ids[sent], when[sent], channel[sent], outcome[sent], "outbound", cid[sent])]
        accepted = sent & (action == "repayment_plan") & passed
        if accepted.any():
            parts.append(_contacts(ids[accepted], when[accepted] + np.timedelta64(1, "D"), channel[accepted],
                                   "plan_accepted", "inbound", cid[accepted]))  # fmt: skip
        # Annoyance: opting out of the channel, likelier after recent contacts of the customer.
        who = self.lead[pos]
        recent = np.array([sum(1 for x in self.contact_times.get(int(c), []) if w - x < np.timedelta64(28, "D"))
                           for c, w in zip(who, when, strict=True)])  # fmt: skip
        chance = self.response.table("opt_out")[beh] * (1 + recent)
        opts = sent & (u_opt < chance)
        if opts.any():
            parts.append(_contacts(ids[opts], when[opts] + np.timedelta64(2, "h"), channel[opts], "opt_out",
                                   "inbound", cid[opts]))  # fmt: skip
        for c, w in zip(who[sent], when[sent], strict=True):
            self.contact_times.setdefault(int(c), []).append(w)
        self.contacts.append(pd.concat(parts, ignore_index=True))

    def _true_effect(
        self,
        rows: pd.DataFrame,
        pos: np.ndarray,
        t: int,
        month: np.ndarray,
        effect: np.ndarray,
        plan: np.ndarray,
        horizon: pd.Timedelta,
        acting: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per row: ``effect`` x (reached without the contact working - reached with it), and reached without.

        Both on common random numbers, from the state at the decision, with no
        later contact; rows neither acted on nor held out from an action get 0 and NaN.
        """
        true_effect = np.zeros(len(rows))
        without = np.full(len(rows), np.nan)
        sub = np.flatnonzero(np.isin(acting, RESPONSE_ACTIONS))
        if not len(sub):
            return true_effect, without
        idx = pos[sub]
        now = self.month_starts[t]
        end = int(np.searchsorted(self.month_starts, now + horizon.to_timedelta64() + np.timedelta64(1, "D")))
        end = min(end, self.months)
        reached = []
        for works in (False, True):
            cards, loans = self.cards.take(idx), self.loans.take(idx)
            forced = np.zeros((self.months + self.response.plan_cycles + 1, len(idx)), dtype=bool)
            if works:
                for k in range(self.response.plan_cycles):
                    keep = ((k == 0) | plan[sub]) & (effect[sub] > 0)
                    forced[month[sub][keep] + k, np.flatnonzero(keep)] = True
            for m in range(t, end):
                card, loan = self.draws(m, idx)
                c_r, l_r = self.card_rescue.get(m), self.loan_rescue.get(m)
                cards.step(m, card, forced[m] | (c_r[idx] if c_r is not None else False))
                loans.step(m, loan, forced[m] | (l_r[idx] if l_r is not None else False))
            reached.append(_reached(self.acc.take(idx), self.ids[idx], cards, loans, now, self.month_starts[end],
                                    horizon))  # fmt: skip
        true_effect[sub] = effect[sub] * (reached[0] - reached[1])
        without[sub] = reached[0]
        return true_effect, without


def _reached(
    acc: Accounts,
    ids: np.ndarray,
    cards: CardCycles,
    loans: LoanCycles,
    now: np.datetime64,
    end: np.datetime64,
    horizon: pd.Timedelta,
) -> np.ndarray:
    """Whether each account reaches 30+ days past due in ``[now, now + horizon)``, as the read-out counts it."""
    stamp = end.astype("datetime64[ns]")
    loan_panel = loans.panel(data_end=end)
    statements = statement_table(acc, ids, cards.panel())
    statements = statements.loc[statements["statement_date"] < stamp]
    installments = installment_table(acc, ids, loan_panel)
    installments = installments.loc[installments["due_date"] < stamp]
    accounts = pd.DataFrame(
        {"account_id": ids, "open_date": acc.open_day.astype("datetime64[ns]"), "credit_limit": acc.limit}
    )
    events = EventData(accounts=accounts, statements=statements, installments=installments)
    obs = pd.DataFrame({"account_id": ids, "as_of": np.full(len(ids), now.astype("datetime64[ns]"))})
    y = make_labels(events, obs, horizon=f"{horizon.days}D", data_end=pd.Timestamp(end))
    return y.fillna(0).to_numpy(dtype=np.float64)


def _local(send_after: pd.Series, zone: str, fallback: np.datetime64) -> np.ndarray:
    """Contact times as naive timestamps in the events' zone (the decision's month start where empty)."""
    times = pd.to_datetime(send_after, utc=True, errors="coerce")
    local = times.dt.tz_convert(zone).dt.tz_localize(None)
    return local.fillna(pd.Timestamp(fallback)).to_numpy(dtype="datetime64[ns]")


def _contacts(
    ids: np.ndarray, when: np.ndarray, channel: Any, outcome: Any, direction: str, contact_id: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ids,
            "timestamp": np.asarray(when, dtype="datetime64[ns]"),
            "channel": channel,
            "outcome": outcome,
            "direction": direction,
            "contact_id": contact_id,
        }
    )


def _no_contacts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": np.array([], dtype=np.int64),
            "timestamp": np.array([], dtype="datetime64[ns]"),
            **{c: np.array([], dtype=object) for c in _CONTACT_COLUMNS[2:]},
        }
    )
