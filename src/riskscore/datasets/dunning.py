"""The usual collections practice, as a strategy for the simulator: contact borrowers once they are past due.

:func:`dunning` calls every customer with an account past due at ``now``, most
days past due first (the largest balance breaking ties), while the call
capacity lasts, and sends an SMS to the rest while that capacity lasts. It
contacts at 10:00 the next day in the borrower's time zone, skips a channel the
customer opted out of, and never contacts an account of unknown zone. It holds
out no control group: it is the champion a challenger is compared with.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from riskscore.data import EventData

__all__ = ["dunning"]

_CHANNELS = ("call", "sms")


def dunning(events: EventData, now: pd.Timestamp, capacity: Mapping[str, int] | None = None) -> pd.DataFrame:
    """One decision per account past due at ``now``: a call, else an SMS, within ``capacity`` per channel.

    Returns the columns of ``recommend`` that the simulator and the read-out use:
    ``account_id``, ``customer_id``, ``action`` (``call``, ``reminder`` or
    ``none``), ``channel``, ``contact_id``, ``send_after`` (UTC), ``timezone``,
    ``segment`` (``past_due``), ``treatment`` (``call``), ``control`` (False),
    ``dpd``.
    """
    stamp = pd.Timestamp(now).tz_localize(None)
    dpd = _days_past_due(events, stamp)
    accounts = events.accounts.set_index("account_id")
    behind = dpd[dpd > 0]
    if behind.empty:
        return pd.DataFrame(columns=["account_id", "customer_id", "action", "channel", "contact_id", "send_after",
                                     "timezone", "segment", "treatment", "control", "dpd"])  # fmt: skip
    customers = events.customers
    frame = pd.DataFrame({"account_id": behind.index, "dpd": behind.to_numpy()})
    frame["customer_id"] = customers.reindex(frame["account_id"]).to_numpy()
    frame["balance"] = _balances(events, stamp).reindex(frame["account_id"]).fillna(0.0).to_numpy()
    frame["timezone"] = accounts["timezone"].reindex(frame["account_id"]).to_numpy() if "timezone" in accounts else None
    frame = frame.sort_values(["dpd", "balance", "account_id"], ascending=[False, False, True], kind="stable")
    opted = _opted_out(events, stamp, customers)
    left = {c: (None if capacity is None or c not in capacity else int(capacity[c])) for c in _CHANNELS}
    chosen: dict[object, str] = {}
    for customer, tz in zip(frame["customer_id"], frame["timezone"], strict=True):
        if customer in chosen:
            continue
        chosen[customer] = ""
        if tz is None or pd.isna(tz):
            continue  # no known zone: no contact (fail closed)
        for channel in _CHANNELS:
            room = left[channel]
            if (customer, channel) in opted or (room is not None and room <= 0):
                continue
            if room is not None:
                left[channel] = room - 1
            chosen[customer] = channel
            break
    picked = frame["customer_id"].map(chosen).fillna("").astype(str)
    frame["channel"] = picked.to_numpy()
    frame["action"] = np.select([picked == "call", picked == "sms"], ["call", "reminder"], "none")
    day = (stamp + pd.Timedelta(days=1)).normalize() + pd.Timedelta(hours=10)
    frame["send_after"] = [
        pd.Timestamp(day).tz_localize(tz).tz_convert("UTC") if c else pd.NaT
        for tz, c in zip(frame["timezone"], frame["channel"], strict=True)
    ]
    frame["contact_id"] = np.where(
        frame["channel"] != "", frame["customer_id"].astype(str) + f"@{pd.Timestamp(day):%Y-%m-%d}", ""
    )
    frame["segment"] = "past_due"
    frame["treatment"] = "call"
    frame["control"] = False
    return frame.drop(columns="balance").sort_values("account_id").reset_index(drop=True)


def _days_past_due(events: EventData, now: pd.Timestamp) -> pd.Series:
    """Days past due at ``now`` per account: the latest statement's, or the oldest unpaid instalment's."""
    out = pd.Series(0, index=pd.Index(events.accounts["account_id"], name="account_id"), dtype=np.int64)
    st = events.statements
    if st is not None and len(st):
        seen = st.loc[st["statement_date"] < now]
        latest = seen.sort_values("statement_date").groupby("account_id")["dpd"].last()
        out.loc[latest.index] = np.maximum(out.loc[latest.index].to_numpy(), latest.to_numpy())
    inst = events.installments
    if inst is not None and len(inst):
        paid = inst["paid_date"].notna() & (inst["paid_date"] < now)
        owed = inst.assign(_paid=np.where(paid, inst["amount_paid"].fillna(0.0), 0.0))
        grouped = owed.groupby(["account_id", "due_date"], sort=False)
        per = grouped.agg(due=("amount_due", "first"), paid=("_paid", "sum"))
        unpaid = per.loc[(per["paid"] < per["due"] - 0.005)].reset_index()
        unpaid = unpaid.loc[unpaid["due_date"] < now]
        if len(unpaid):
            oldest = unpaid.groupby("account_id")["due_date"].min()
            days = (now - oldest).dt.days.astype(np.int64)
            out.loc[days.index] = np.maximum(out.loc[days.index].to_numpy(), days.to_numpy())
    return out


def _balances(events: EventData, now: pd.Timestamp) -> pd.Series:
    st = events.statements
    if st is None or st.empty:
        return pd.Series(dtype=np.float64)
    seen = st.loc[st["statement_date"] < now]
    return seen.sort_values("statement_date").groupby("account_id")["balance"].last()


def _opted_out(events: EventData, now: pd.Timestamp, customers: pd.Series) -> set[tuple[object, str]]:
    contacts = events.contacts
    if contacts is None or contacts.empty:
        return set()
    out = contacts.loc[(contacts["outcome"].astype(str) == "opt_out") & (contacts["timestamp"] < now)]
    who = customers.reindex(out["account_id"]).to_numpy()
    return set(zip(who.tolist(), out["channel"].astype(str).tolist(), strict=True))
