"""Evaluate a policy's rules for many accounts at once, before any ranking.

Everything is vectorised over accounts: contact hours per time zone (a handful
of zones, each converted once), attempt caps and quiet periods from the sorted
contact ledger with ``bincount`` and group offsets. Times are int64 nanoseconds
since the epoch in UTC; :data:`NEVER` marks a channel that may not be used.

For each account and channel the result is the earliest moment a contact is
allowed (``now`` when nothing stands in the way) and the rule hits that
explain it: a *block* (opt-out, cease, suppression, unknown time zone) or a
*deferral* until a given moment (contact hours, attempt caps, quiet periods).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskscore.errors import DataValidationError, Problem
from riskscore.outreach.policy import OutreachPolicy, Rule

__all__ = ["NEVER", "RuleEvaluation", "RuleHit", "evaluate_rules", "format_local"]

NEVER = np.iinfo(np.int64).max
_NS_PER_HOUR = 3_600_000_000_000


@dataclass
class RuleHit:
    """Accounts (``mask``) for which rule ``rule`` blocks or defers ``channel``."""

    rule: str
    channel: str
    mask: np.ndarray
    until: np.ndarray  # int64 ns UTC per account; NEVER for a block
    why: list[str] | str  # one text for all, or one per masked account (in mask order)


@dataclass
class RuleEvaluation:
    """Rule outcomes for ``n`` accounts: earliest allowed time per channel and the hits."""

    n: int
    now: int
    channels: tuple[str, ...]
    earliest: dict[str, np.ndarray]
    hits: list[RuleHit] = field(default_factory=list)
    route: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    route_rule: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    route_why: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    support: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    support_rule: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    offer_until: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    offer_rule: str = ""
    checked: list[str] = field(default_factory=list)

    def hits_by_account(self) -> list[list[tuple[RuleHit, int]]]:
        """For each account, the (hit, position in the hit's mask) pairs that concern it."""
        out: list[list[tuple[RuleHit, int]]] = [[] for _ in range(self.n)]
        for hit in self.hits:
            for k, i in enumerate(np.flatnonzero(hit.mask)):
                out[i].append((hit, k))
        return out


def zone_array(column: pd.Series | None, n: int) -> np.ndarray:
    """Time-zone names as an object array, ``None`` where unknown (never NaN)."""
    if column is None:
        return np.full(n, None, dtype=object)
    values = np.array(column.astype(object).to_numpy(), dtype=object)
    values[np.asarray(column.isna())] = None
    return values


def format_local(ns: int, zone: str | None) -> str:
    """An int64 UTC time as local ISO text (``YYYY-MM-DD HH:MM zone``)."""
    if ns == NEVER:
        return "never"
    ts = pd.Timestamp(ns, tz="UTC")
    if isinstance(zone, str) and zone:
        ts = ts.tz_convert(zone)
    return ts.strftime("%Y-%m-%d %H:%M %Z")


def _flag(accounts: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(flagged, unknown) for a boolean account column; absent column: nobody flagged."""
    n = len(accounts)
    if name not in accounts.columns:
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    col = accounts[name]
    unknown = col.isna().to_numpy()
    if not (pd.api.types.is_bool_dtype(col.dtype) or col.dropna().isin([True, False, 0, 1]).all()):
        raise ValueError(
            f"accounts.{name} must be boolean (a suppression flag); got values such as {col.dropna().unique()[:3]!r}"
        )
    flagged = col.fillna(False).astype(bool).to_numpy()
    return flagged | unknown, unknown


def _local_minutes(t: np.ndarray, zone: str) -> np.ndarray:
    local = pd.DatetimeIndex(t.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(zone)
    return np.asarray(local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60)


def _local_day_start(t: np.ndarray, zone: str, days_ahead: int) -> np.ndarray:
    """UTC ns of local midnight ``days_ahead`` days after the local date of ``t``."""
    local = pd.DatetimeIndex(t.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(zone)
    dates = local.tz_localize(None).normalize() + pd.Timedelta(days=days_ahead)
    return _localize(dates, zone)


def _localize(naive: pd.DatetimeIndex, zone: str) -> np.ndarray:
    """Wall-clock times in ``zone`` -> UTC ns; a time skipped by DST moves forward, a repeated one is the first."""
    aware = naive.tz_localize(zone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward")
    return np.asarray(aware.tz_convert("UTC").tz_localize(None).asi8, dtype=np.int64)


def _next_open(t: np.ndarray, zone: str, start: int, end: int) -> np.ndarray:
    """Earliest time >= t whose local wall-clock time lies in [start, end) minutes."""
    if len(t) == 0:
        return t
    minutes = _local_minutes(t, zone)
    inside = (minutes >= start) & (minutes < end)
    local = pd.DatetimeIndex(t.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(zone).tz_localize(None)
    day = local.normalize() + pd.to_timedelta(np.where(minutes >= end, 1, 0), unit="D")
    opening = _localize(day + pd.Timedelta(minutes=start), zone)
    return np.where(inside, t, np.maximum(opening, t))


class _Labels:
    """A label column as integer codes into ``levels`` (-1: missing), for fast membership tests."""

    def __init__(self, values: pd.Series | None, n: int) -> None:
        if values is None:
            self.codes = np.full(n, -1, dtype=np.int64)
            self.levels: list[str] = []
            return
        if isinstance(values.dtype, pd.CategoricalDtype):  # the codes are there already
            self.codes = np.asarray(values.cat.codes.to_numpy(), dtype=np.int64)
            self.levels = [str(v) for v in values.cat.categories]
            return
        codes, levels = pd.factorize(values.astype(object), use_na_sentinel=True)
        self.codes = np.asarray(codes, dtype=np.int64)
        self.levels = [str(v) for v in levels]

    def isin(self, wanted: list[str]) -> np.ndarray:
        lookup = np.append(np.isin(np.asarray(self.levels, dtype=object), wanted), False)
        return lookup[self.codes]  # code -1 picks the trailing False

    def missing(self) -> np.ndarray:
        return self.codes < 0

    def take(self, index: np.ndarray) -> _Labels:
        out = _Labels.__new__(_Labels)
        out.codes, out.levels = self.codes[index], self.levels
        return out


CONTACT_OUTCOMES: tuple[str, ...] = (
    "attempt",
    "connected",
    "delivered",
    "opt_out",
    "cease",
    "plan_offered",
    "plan_accepted",
)
"""Contact outcomes every policy understands (DESIGN.md section 1); a policy's rules may name more."""

OTHER_CHANNELS: tuple[str, ...] = ("letter", "visit")
"""Contact channels riskscore recognises but never recommends; any other channel a policy lacks is refused."""


def normalise_label(value: object) -> str:
    """A contact label as the policies spell it: trimmed, lower case, spaces and hyphens as underscores.

    >>> normalise_label(" Opt-Out ")
    'opt_out'
    """
    return "_".join(str(value).strip().lower().replace("-", " ").split())


def most_restrictive_outcome(policy: OutreachPolicy) -> str:
    """The outcome an unknown one is read as: the policy's strongest stop.

    A suppression outcome (``cease``: no automated contact at all) if the policy
    has one, else an opt-out of the contact's channel, else an attempt (it counts
    towards every cap).
    """
    for kind in ("suppress", "opt_out"):
        for rule in policy.rules_of(kind):
            outcomes = list(rule.params.get("outcomes", []))
            if outcomes:
                return str(outcomes[0])
    return "attempt"


def known_outcomes(policy: OutreachPolicy) -> set[str]:
    """Every outcome the policy's rules name, the offer outcome and :data:`CONTACT_OUTCOMES`."""
    named = {str(o) for rule in policy.rules for o in rule.params.get("outcomes", [])}
    return named | {policy.offer_outcome} | set(CONTACT_OUTCOMES)


def _normalised(column: pd.Series, keep: tuple[str, ...] | None) -> pd.Series:
    """``column`` as a categorical of normalised labels (work per level, not per row); others missing with ``keep``."""
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype(object).astype("category")
    names = [normalise_label(v) for v in cat.cat.categories]
    levels = list(dict.fromkeys(n for n in names if keep is None or n in keep))
    where = {name: i for i, name in enumerate(levels)}
    lookup = np.array([where.get(n, -1) for n in names] + [-1], dtype=np.int64)
    codes = lookup[np.asarray(cat.cat.codes.to_numpy(), dtype=np.int64)]  # code -1 (missing) picks the trailing -1
    labels = pd.Categorical.from_codes(codes, categories=pd.Index(levels, dtype=object))
    return pd.Series(labels, index=column.index, name=column.name)


def check_contact_labels(contacts: pd.DataFrame | None, policy: OutreachPolicy) -> pd.DataFrame | None:
    """Contacts with their labels normalised; unknown channels refused, unknown outcomes made restrictive.

    Labels are compared after :func:`normalise_label` (``"OPT_OUT"``, ``"sms "``
    and ``"SMS"`` are ``opt_out`` and ``sms``). A channel the policy does not
    know (nor :data:`OTHER_CHANNELS`) raises a ``DataValidationError`` listing
    the labels: a contact on it could be an opt-out riskscore would miss. An
    outcome no rule knows is read as :func:`most_restrictive_outcome` (with a
    warning naming it): an opt-out spelled in a way nobody foresaw stops
    contact instead of being ignored.
    """
    if contacts is None or contacts.empty:
        return contacts
    out = contacts.copy()
    problems = []
    for column in ("channel", "outcome", "direction"):
        if column in out.columns:
            keep = ("inbound", "outbound") if column == "direction" else None
            out[column] = _normalised(out[column], keep)  # an unknown direction counts as either (fail closed)
    channels = set(policy.channels) | set(OTHER_CHANNELS)
    bad = out["channel"].notna() & ~out["channel"].isin(list(channels))
    if bad.any():
        labels = sorted({str(v) for v in contacts.loc[bad.to_numpy(), "channel"]})[:10]
        ids = pd.unique(out.loc[bad, "account_id"])[:5].tolist()
        problems.append(
            Problem(
                "contacts",
                "channel",
                "known_label",
                f"must be a channel of policy {policy.id} {sorted(policy.channels)} or one of {list(OTHER_CHANNELS)} "
                f"(compared in lower case); got {labels}",
                int(bad.sum()),
                tuple(ids),
                int(out.loc[bad, "account_id"].nunique()),
            )
        )
    missing = out["outcome"].isna() | out["channel"].isna()
    if missing.any():
        ids = pd.unique(out.loc[missing, "account_id"])[:5].tolist()
        problems.append(
            Problem("contacts", "outcome", "not_null", "channel and outcome must not be empty", int(missing.sum()),
                    tuple(ids), int(out.loc[missing, "account_id"].nunique()))
        )  # fmt: skip
    if problems:
        raise DataValidationError(problems)
    unknown = ~out["outcome"].isin(list(known_outcomes(policy)))
    if unknown.any():
        strongest = most_restrictive_outcome(policy)
        labels = sorted({str(v) for v in contacts.loc[unknown.to_numpy(), "outcome"]})[:10]
        warnings.warn(
            f"contacts.outcome: {int(unknown.sum())} contacts of {out.loc[unknown, 'account_id'].nunique()} accounts "
            f"have outcomes policy {policy.id} does not know ({labels}); they are read as {strongest!r}, "
            "the most restrictive: map them to known outcomes to contact these borrowers",
            UserWarning,
            stacklevel=3,
        )
        outcome = out["outcome"]
        if strongest not in outcome.cat.categories:
            outcome = outcome.cat.add_categories([strongest])
        out["outcome"] = outcome.where(~unknown, strongest)
    return out


class _Ledger:
    """The contact ledger of one scope: contacts coded by unit (account or customer), in unit order then time."""

    def __init__(
        self, contacts: pd.DataFrame | None, code: np.ndarray, now: int, utc: np.ndarray, distinct: bool = False
    ) -> None:
        """Code, time and labels of the contacts known at ``now``, in unit order then time.

        With ``distinct``, rows of one unit that share a ``contact_id`` (a
        contacts column naming one message or call, which ``recommend`` gives
        as ``"<customer>@<time>"``), its channel, outcome and direction are one
        contact recorded on each account it concerned. Rows without an id
        always count on their own.
        """
        if contacts is None or contacts.empty:
            self.code = np.array([], dtype=np.int64)
            self.time = np.array([], dtype=np.int64)
            self.channel = self.outcome = self.direction = _Labels(None, 0)
            return
        keep = np.flatnonzero(code >= 0)
        time = utc[keep]
        before = time < now  # what is known at `now`
        rows = keep[before]
        order = np.lexsort((time[before], code[rows]))
        take = rows[order]
        if distinct and "contact_id" in contacts.columns and len(take) > 1:
            take = _one_per_contact(contacts, code, take)
        self.code = code[take]
        self.time = utc[take]
        self.channel = _Labels(contacts["channel"], len(contacts)).take(take)
        self.outcome = _Labels(contacts["outcome"], len(contacts)).take(take)
        direction = contacts["direction"] if "direction" in contacts.columns else None
        self.direction = _Labels(direction, len(contacts)).take(take)

    def select(self, channels: list[str], outcomes: list[str], directions: list[str] | None = None) -> np.ndarray:
        mask = self.channel.isin(channels) & self.outcome.isin(outcomes)
        if directions is not None:
            # A contact of unknown direction counts (fail closed).
            mask &= self.direction.missing() | self.direction.isin(directions)
        return mask

    def with_outcome(self, outcome: str) -> np.ndarray:
        return self.outcome.isin([outcome])


def _one_per_contact(contacts: pd.DataFrame, code: np.ndarray, take: np.ndarray) -> np.ndarray:
    """``take`` without the repeats of a contact: same unit, ``contact_id``, channel, outcome and direction."""
    key = contacts.iloc[take][[c for c in ("contact_id", "channel", "outcome", "direction") if c in contacts]]
    key = key.astype(object).assign(_unit=code[take])
    named = key["contact_id"].notna().to_numpy() & (key["contact_id"].astype(str) != "").to_numpy()
    repeat = key.duplicated().to_numpy() & named
    return take[~repeat]


def _utc_times(contacts: pd.DataFrame, events_tz: str) -> np.ndarray:
    """Every contact's time as int64 UTC nanoseconds (naive times in the events' zone, of any precision).

    A repeated DST hour counts as the later instant, which keeps an attempt in
    a rolling window longer (fail closed).
    """
    naive = pd.DatetimeIndex(contacts["timestamp"].to_numpy()).as_unit("ns")  # asi8 below is ns
    aware = naive.tz_localize(events_tz, ambiguous=np.zeros(len(naive), dtype=bool), nonexistent="shift_forward")
    return np.asarray(aware.tz_convert("UTC").tz_localize(None).asi8, dtype=np.int64)


@dataclass
class _Scope:
    """Who a ledger rule counts: ``m`` units (accounts or customers), the unit of each row, the unit's ledger."""

    m: int
    of_row: np.ndarray
    first: np.ndarray  # a row of each unit (the unit's zone: a customer's accounts share one)
    ledger: _Ledger
    note: str  # added to the reasons of a customer-scoped hit


def _scopes(accounts: pd.DataFrame, contacts: pd.DataFrame | None, now: int, events_tz: str) -> dict[str, _Scope]:
    """The account and the customer scope of the rows of ``accounts``.

    A contact counts for a customer through its ``customer_id`` column (the
    customer of the contact's account, which need not be among the rows);
    without customers every account is its own customer and both scopes agree.
    """
    n = len(accounts)
    ids = pd.Index(accounts["account_id"])
    rows = np.arange(n)
    code, utc = rows[:0], rows[:0]
    if contacts is not None and len(contacts):
        code = ids.get_indexer(pd.Index(contacts["account_id"]))
        utc = _utc_times(contacts, events_tz)  # once, for both scopes
    by_account = _Scope(n, rows, rows, _Ledger(contacts, code, now, utc), "")
    if "customer_id" not in accounts.columns:
        return {"account": by_account, "customer": by_account}
    of_row, customers = pd.factorize(accounts["customer_id"])
    first = np.full(len(customers), n, dtype=np.int64)
    np.minimum.at(first, of_row, rows)
    code = rows[:0]
    if contacts is not None and len(contacts):
        if "customer_id" in contacts.columns:  # as prepare_inputs gives them: any account of the customers
            owner = contacts["customer_id"]
        else:  # the customers of the rows' own accounts
            owner = pd.Series(np.asarray(customers)[of_row], index=ids).reindex(contacts["account_id"])
        code = pd.Index(customers).get_indexer(pd.Index(owner))
    ledger = _Ledger(contacts, np.asarray(code, dtype=np.int64), now, utc, distinct=True)
    return {
        "account": by_account,
        "customer": _Scope(len(customers), of_row, first, ledger, " (all the customer's accounts)"),
    }


def evaluate_rules(
    policy: OutreachPolicy,
    accounts: pd.DataFrame,
    contacts: pd.DataFrame | None,
    now: pd.Timestamp,
    events_tz: str,
) -> RuleEvaluation:
    """Evaluate every rule of ``policy`` for the accounts (rows of ``accounts``, in order).

    ``accounts`` has ``account_id`` and, when known, ``timezone`` and the
    boolean flag columns; ``contacts`` is the contact ledger (naive times in
    ``events_tz``); ``now`` is tz-aware.
    """
    n = len(accounts)
    now_ns = int(now.tz_convert("UTC").value)
    scopes = _scopes(accounts, check_contact_labels(contacts, policy), now_ns, events_tz)
    channels = policy.channels
    earliest = {c: np.full(n, now_ns, dtype=np.int64) for c in channels}
    result = RuleEvaluation(n=n, now=now_ns, channels=channels, earliest=earliest)
    result.route = np.full(n, "", dtype=object)
    result.route_rule = np.full(n, "", dtype=object)
    result.route_why = np.full(n, "", dtype=object)
    result.support = np.full(n, "", dtype=object)
    result.support_rule = np.full(n, "", dtype=object)
    result.offer_until = np.zeros(n, dtype=np.int64)
    zones = zone_array(accounts["timezone"] if "timezone" in accounts.columns else None, n)
    has_zone = np.array([z is not None for z in zones], dtype=bool)

    def block(rule: Rule, channel: str, mask: np.ndarray, why: list[str] | str) -> None:
        if mask.any():
            earliest[channel][mask] = NEVER
            result.hits.append(RuleHit(rule.id, channel, mask, np.full(int(mask.sum()), NEVER), why))

    def defer(rule: Rule, channel: str, until: np.ndarray, why: str) -> None:
        mask = until > now_ns
        if mask.any():
            current = earliest[channel]
            current[mask] = np.maximum(current[mask], until[mask])
            result.hits.append(RuleHit(rule.id, channel, mask, until[mask], why))

    # Fixed blocks and deferrals first, contact hours last (they apply at the deferred time).
    for rule in policy.rules:
        result.checked.append(rule.id)
        kind = rule.kind
        if kind == "timezone_required":
            why = (
                "the accounts table has no timezone column: contact hours cannot be checked"
                if "timezone" not in accounts.columns
                else "the account has no time zone: contact hours cannot be checked"
            )
            for c in rule.channels:
                block(rule, c, ~has_zone, why)
        elif kind == "opt_out":
            s = scopes[rule.scope]
            for c in rule.channels:
                sel = s.ledger.select([c], list(rule.params["outcomes"]))
                opted = np.bincount(s.ledger.code[sel], minlength=s.m) > 0
                block(rule, c, opted[s.of_row], f"the borrower opted out of {c}{s.note}")
        elif kind == "suppress":
            mask = np.zeros(n, dtype=bool)
            reasons: dict[int, list[str]] = {}
            for flag in rule.params["flags"]:
                flagged, unknown = _flag(accounts, flag)
                for i in np.flatnonzero(flagged).tolist():
                    reasons.setdefault(i, []).append(
                        f"{flag} flag unknown (missing value)" if unknown[i] else f"account flagged {flag}"
                    )
                mask |= flagged
            s = scopes[rule.scope]
            for outcome in rule.params.get("outcomes", []):
                sel = s.ledger.with_outcome(outcome)
                hit = (np.bincount(s.ledger.code[sel], minlength=s.m) > 0)[s.of_row]
                for i in np.flatnonzero(hit).tolist():
                    reasons.setdefault(i, []).append(f"a contact recorded '{outcome}'{s.note}")
                mask |= hit
            texts = ["; ".join(reasons[i]) for i in np.flatnonzero(mask).tolist()]
            for c in rule.channels:
                block(rule, c, mask, texts)
            route = str(rule.params["route"])
            fresh = mask & ((result.route == "") | (route == "none"))  # "none" is the stricter route
            result.route[fresh] = route
            result.route_rule[fresh] = rule.id
            why_of = dict(zip(np.flatnonzero(mask).tolist(), texts, strict=True))
            for i in np.flatnonzero(fresh).tolist():
                result.route_why[i] = why_of[i]
        elif kind == "support":
            mask = np.zeros(n, dtype=bool)
            for flag in rule.params["flags"]:
                mask |= _flag(accounts, flag)[0]
            fresh = mask & (result.support == "")
            result.support[fresh] = str(rule.params["action"])
            result.support_rule[fresh] = rule.id
        elif kind == "attempt_cap":
            s = scopes[rule.scope]
            for c, until in _attempt_cap(rule, s.ledger, s.m, now_ns, zones[s.first], has_zone[s.first]):
                if isinstance(until, str):
                    block(rule, c, np.ones(n, dtype=bool), until)
                else:
                    defer(rule, c, until[0][s.of_row], until[1] + s.note)
        elif kind == "quiet_after_conversation":
            s = scopes[rule.scope]
            sel = s.ledger.select(list(rule.channels), list(rule.params["outcomes"]))
            last = np.zeros(s.m, dtype=np.int64)
            np.maximum.at(last, s.ledger.code[sel], s.ledger.time[sel])
            period = int(float(rule.params["hours"]) * _NS_PER_HOUR)
            until = np.where(last > 0, last + period, 0)[s.of_row]
            for c in rule.channels:
                defer(rule, c, until, f"a conversation less than {rule.params['hours']:g} h ago{s.note}")
        elif kind == "offer_cooldown":
            s = scopes[rule.scope]
            sel = s.ledger.with_outcome(policy.offer_outcome)
            last = np.zeros(s.m, dtype=np.int64)
            np.maximum.at(last, s.ledger.code[sel], s.ledger.time[sel])
            days = float(rule.params["days"])
            result.offer_until = np.where(last > 0, last + int(days * 24 * _NS_PER_HOUR), 0)[s.of_row]
            result.offer_rule = rule.id
    for rule in policy.rules_of("contact_hours"):
        start, end = rule.minutes("start"), rule.minutes("end")
        for c in rule.channels:
            t = earliest[c]
            until = np.full(n, 0, dtype=np.int64)
            todo = has_zone & (t != NEVER)
            for zone in pd.unique(zones[todo]):
                rows = np.flatnonzero(todo & (zones == zone))
                until[rows] = _next_open(t[rows], str(zone), start, end)
            changed = until > t
            if changed.any():
                t[changed] = until[changed]
                result.hits.append(
                    RuleHit(
                        rule.id,
                        c,
                        changed,
                        until[changed],
                        f"outside contact hours {rule.params['start']}-{rule.params['end']} local time",
                    )
                )
    return result


def _attempt_cap(
    rule: Rule, ledger: _Ledger, n: int, now_ns: int, zones: np.ndarray, has_zone: np.ndarray
) -> list[tuple[str, Any]]:
    """Per channel of an ``attempt_cap``: a block text (limit 0), or (until per unit, why) when a unit is at the cap."""
    limit = int(rule.params["max"])
    hours = rule.window_hours()
    what = "/".join(rule.params["outcomes"])
    out: list[tuple[str, Any]] = []
    for c in rule.channels:
        if limit == 0:
            out.append((c, f"no {c} contact allowed (limit 0)"))
            continue
        sel = ledger.select([c], list(rule.params["outcomes"]), list(rule.params["directions"]))
        code, time = ledger.code[sel], ledger.time[sel]
        if hours is not None:
            since = np.full(n, now_ns - int(hours * _NS_PER_HOUR), dtype=np.int64)
        else:
            # The borrower's local calendar day (UTC day when the zone is unknown: blocked anyway).
            since = np.full(n, now_ns, dtype=np.int64)
            now_arr = np.full(n, now_ns, dtype=np.int64)
            since[~has_zone] = (now_ns // (24 * _NS_PER_HOUR)) * 24 * _NS_PER_HOUR
            for zone in pd.unique(zones[has_zone]):
                rows = np.flatnonzero(has_zone & (zones == zone))
                since[rows] = _local_day_start(now_arr[rows], str(zone), 0)
        inside = time > since[code] if hours is not None else time >= since[code]
        count = np.bincount(code[inside], minlength=n)
        over = count >= limit
        if not over.any():
            continue
        if hours is not None:
            # Allowed again when enough of the counted contacts have left the window:
            # the (count - limit + 1)-th oldest one in the window, plus the window.
            win_code, win_time = code[inside], time[inside]
            first = np.searchsorted(win_code, np.arange(n))
            idx = first + (count - limit)
            until = np.zeros(n, dtype=np.int64)
            until[over] = win_time[idx[over]] + int(hours * _NS_PER_HOUR)
            label = f"{rule.params['window']}"
        else:
            until = np.zeros(n, dtype=np.int64)
            now_arr = np.full(n, now_ns, dtype=np.int64)
            rows_all = np.flatnonzero(over)
            no_zone = rows_all[~has_zone[rows_all]]
            until[no_zone] = since[no_zone] + 24 * _NS_PER_HOUR
            for zone in pd.unique(zones[rows_all[has_zone[rows_all]]]):
                rows = rows_all[has_zone[rows_all] & (zones[rows_all] == zone)]
                until[rows] = _local_day_start(now_arr[rows], str(zone), 1)
            label = "local day"
        why = f"{limit} {c} contacts ({what}) already in the {label} (limit {limit})"
        out.append((c, (np.where(over, until, 0), why)))
    return out
