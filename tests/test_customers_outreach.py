"""Issue #13, item 4: outreach decides per customer, with rules counted per customer or per account."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from tests.outreach_cases import make_case, sh

NOW = sh("2026-03-04 12:00")
SH = "Asia/Shanghai"


def _case(
    n: int, customers: list[Any] | None, contacts: list[tuple[Any, ...]] = (), **account: Any
) -> tuple[pd.DataFrame, rs.Explanation, rs.EventData]:
    """``n`` band-E accounts that want a call under cn-2026, optionally grouped into customers."""
    spec = [{"account_id": i + 1, "timezone": SH, "segment": "will_not_pay", **account} for i in range(n)]
    scores, expl, events = make_case(spec, list(contacts))
    if customers is not None:
        events = rs.EventData(**{**events.tables, "accounts": events.accounts.assign(customer_id=customers)})
    return scores, expl, events


def _calls(*spec: tuple[int, int]) -> list[tuple[Any, ...]]:
    """``(account, k)``: k connected outbound calls on the account this morning (Shanghai time)."""
    out = []
    for account, k in spec:
        out += [(account, f"2026-03-04 {8 + j:02d}:10", "call", "connected", "outbound") for j in range(k)]
    return out


def _policy(name: str, scope: str, rule: str) -> rs.OutreachPolicy:
    """A shipped profile with one rule's scope changed."""
    doc = copy.deepcopy(dict(rs.OutreachPolicy.load(name).document))
    for r in doc["rules"]:
        if r["id"] == rule:
            r["scope"] = scope
    return rs.OutreachPolicy.from_dict(doc)


def _decide(case: Any, policy: Any = "cn-2026", **kw: Any) -> pd.DataFrame:
    scores, expl, events = case
    return rs.recommend(scores, expl, events, policy, now=NOW, control_share=0.0, **kw).set_index("account_id")


def _rules(blocked: Any) -> set[str]:
    return {b["rule"] for b in blocked}


def _today(out: pd.DataFrame, zone: str = SH, now: pd.Timestamp = NOW) -> pd.Series:
    """Whether each row is a call to be made on the local day of ``now``."""
    day = now.tz_convert(zone).date()
    local = out["send_after"].dt.tz_convert(zone).dt.date
    return (out["channel"] == "call") & (local == day)


def test_connected_calls_count_for_the_customer_under_cn_2026() -> None:
    """Two connected calls on one account and one on the other: the customer has had its three today."""
    contacts = _calls((1, 2), (2, 1))
    together = _decide(_case(2, [7, 7], contacts))
    assert not _today(together).any()  # not before tomorrow
    for account in (1, 2):
        assert "CN.FREQ.CONNECTED_DAY" in _rules(together.loc[account, "blocked"])
    assert together.loc[1, "contact_id"] == together.loc[2, "contact_id"] != ""
    assert together["customer_id"].tolist() == [7, 7]
    assert together.loc[1, "message"] == together.loc[2, "message"]
    # The same accounts without a shared customer_id are two people, each under the limit.
    apart = _decide(_case(2, None, contacts))
    assert _today(apart).all()
    assert apart["customer_id"].tolist() == [1, 2] and apart.loc[1, "contact_id"] != apart.loc[2, "contact_id"]
    # The boundary: two connected calls across the customer's accounts leave room for a third.
    below = _decide(_case(2, [7, 7], _calls((1, 1), (2, 1))))
    assert _today(below).all() and below["contact_id"].nunique() == 1


def test_an_account_scoped_rule_counts_each_account_and_still_holds_the_customer() -> None:
    policy = _policy("cn-2026", "account", "CN.FREQ.CONNECTED_DAY")
    # Per account, 2 and 1 are under the limit of 3: the customer may be called.
    assert _today(_decide(_case(2, [7, 7], _calls((1, 2), (2, 1))), policy)).all()
    # Three on account 1: a call about the customer concerns account 1 too, so none today.
    held = _decide(_case(2, [7, 7], _calls((1, 3))), policy)
    assert not _today(held).any()
    assert "CN.FREQ.CONNECTED_DAY" in _rules(held.loc[2, "blocked"])
    assert any("(account 1)" in b["why"] for b in held.loc[2, "blocked"])
    # With the default scope (customer) the same three calls stop the customer as well.
    assert not _today(_decide(_case(2, [7, 7], _calls((1, 3))))).any()


def test_reg_f_counts_calls_per_debt_and_opt_outs_per_person() -> None:
    """us-regf: 7 calls in 7 days is per account; an opt-out of calls is the person's."""
    week = [(1, f"2026-03-0{d} 1{h}:00", "call", "attempt", "outbound") for d in (1, 2, 3) for h in (0, 2)]
    week.append((2, "2026-03-02 11:00", "call", "attempt", "outbound"))  # 7 calls in the week across the customer
    ny = "America/New_York"
    spec = [{"account_id": i, "timezone": ny, "segment": "will_not_pay"} for i in (1, 2)]
    scores, expl, events = make_case(spec, week)
    events = rs.EventData(**{**events.tables, "accounts": events.accounts.assign(customer_id=[7, 7])})
    now = pd.Timestamp("2026-03-04 12:00", tz=ny)
    out = rs.recommend(scores, expl, events, "us-regf", now=now, control_share=0.0)
    assert _today(out, ny, now).all()  # 6 on one debt, 1 on the other: neither at 7
    opted = [*week, (2, "2026-03-03 09:00", "call", "opt_out", "inbound")]
    scores, expl, events = make_case(spec, opted)
    events = rs.EventData(**{**events.tables, "accounts": events.accounts.assign(customer_id=[7, 7])})
    out = rs.recommend(scores, expl, events, "us-regf", now=now, control_share=0.0).set_index("account_id")
    assert (out["channel"] != "call").all() and "US.CH.MEDIUM_OPTOUT" in _rules(out.loc[1, "blocked"])


def test_a_cease_on_one_account_stops_automated_contact_on_all_of_them() -> None:
    ceased = [(2, "2026-03-01 10:00", "sms", "cease", "inbound")]
    together = _decide(_case(3, [7, 7, 8], ceased))
    assert (together.loc[[1, 2], "action"] == "none").all()
    assert "CN.CEASE" in _rules(together.loc[1, "blocked"])
    assert together.loc[3, "action"] == "call"
    apart = _decide(_case(3, None, ceased))
    assert apart.loc[1, "action"] == "call" and apart.loc[2, "action"] == "none"
    # Scoped to the account, the cease still holds the whole customer's one contact (the strictest route).
    policy = _policy("cn-2026", "account", "CN.CEASE")
    assert (_decide(_case(3, [7, 7, 8], ceased), policy).loc[[1, 2], "action"] == "none").all()


def test_the_control_group_is_drawn_per_customer() -> None:
    n = 400
    customers = np.arange(n) // 2
    scores, expl, events = _case(n, customers.tolist())
    out = rs.recommend(scores, expl, events, "cn-2026", now=NOW, control_share=0.3)
    by_customer = out.groupby("customer_id")["control"]
    assert (by_customer.nunique() == 1).all()
    assert 0.15 < by_customer.first().mean() < 0.45
    assert (out.loc[out["control"], "action"] == "none").all()
    assert (out.loc[out["control"], "contact_id"] == "").all()


def test_one_message_names_each_account_and_the_offer_is_on_the_total() -> None:
    scores, expl, events = make_case(
        [{"account_id": a, "timezone": SH, "segment": "cannot_pay", "band": "C"} for a in (1001, 1002)]
    )
    events = rs.EventData(**{**events.tables, "accounts": events.accounts.assign(customer_id=[7, 7])})
    out = rs.recommend(scores, expl, events, "cn-2026", now=NOW, control_share=0.0, lang="en")
    assert (out["action"] == "repayment_plan").all() and out["message"].nunique() == 1
    offer = out["offer"].iloc[0]
    assert offer == out["offer"].iloc[1]
    assert offer["total"] == pytest.approx(2 * 1200.0)  # both balances
    single = rs.recommend(*make_case([{"account_id": 1001, "timezone": SH, "segment": "cannot_pay", "band": "C"}]),
                          "cn-2026", now=NOW, control_share=0.0, lang="en")  # fmt: skip
    assert single["offer"].iloc[0]["total"] == pytest.approx(1200.0)
    assert offer["instalment"] * offer["term_months"] >= offer["total"]
    # A reminder names each account, its amount and due date, and the total.
    scores, expl, events = make_case([{"account_id": a, "timezone": SH, "band": "E"} for a in (1001, 1002)])
    events = rs.EventData(**{**events.tables, "accounts": events.accounts.assign(customer_id=[7, 7])})
    message = rs.recommend(scores, expl, events, "cn-2026", now=NOW, control_share=0.0, lang="en")["message"]
    text = message.iloc[0]
    assert message.nunique() == 1
    assert "¥72.00 in total" in text and "card ending 1001: ¥36.00 due" in text and "card ending 1002" in text
    zh = rs.recommend(scores, expl, events, "cn-2026", now=NOW, control_share=0.0)["message"].iloc[0]
    assert "信用卡尾号1001" in zh and "合计" in zh


def test_over_ten_thousand_customers_no_cap_is_exceeded_and_capacity_counts_contacts() -> None:
    rng = np.random.default_rng(13)
    n_customers = 10_000
    sizes = rng.choice([1, 2, 3], size=n_customers, p=[0.6, 0.3, 0.1])
    customers = np.repeat(np.arange(n_customers), sizes)
    n = len(customers)
    segments = rng.choice(["will_not_pay", "forgetful", "cannot_pay"], size=n)
    spec = [
        {"account_id": i + 1, "timezone": SH, "segment": str(s), "band": str(b)}
        for i, (s, b) in enumerate(zip(segments, rng.choice(["D", "E", "F"], size=n), strict=True))
    ]
    contacts = []
    for i in np.flatnonzero(rng.random(n) < 0.4).tolist():
        for j in range(int(rng.integers(1, 3))):
            outcome = str(rng.choice(["connected", "attempt", "delivered"]))
            chan = "call" if outcome != "delivered" else str(rng.choice(["sms", "app"]))
            contacts.append((i + 1, f"2026-03-04 0{8 + j}:{int(rng.integers(0, 60)):02d}", chan, outcome, "outbound"))
    scores, expl, events = make_case(spec, contacts)
    events = rs.EventData(**{**events.tables, "accounts": events.accounts.assign(customer_id=customers)})
    capacity = {"call": 900, "sms": 2000, "app": 1500, "email": 100, "human_review": 10}
    out = rs.recommend(scores, expl, events, "cn-2026", now=NOW, capacity=capacity, control_share=0.05)
    # One decision per customer: every account of a customer has the same action, channel and contact.
    shared = out.groupby("customer_id")[["action", "channel", "contact_id", "message", "control"]].nunique()
    assert (shared == 1).all().all()
    contacted = out[out["action"] != "none"]
    per_contact = contacted.groupby("contact_id")["customer_id"].nunique()
    assert (per_contact == 1).all() and contacted["contact_id"].nunique() == contacted["customer_id"].nunique()
    # Capacity counts contacts (one per customer), never accounts.
    used = contacted.drop_duplicates("contact_id")
    keys = np.where(used["action"] == "human_review", "human_review", used["channel"])
    for key, count in pd.Series(keys).value_counts().items():
        assert count <= capacity[str(key)]
    # Calls are scarce: the contacts granted to held-out customers are withheld and their capacity goes to the
    # next customers in line, so every call is made.
    held = out.loc[out["control"], "customer_id"].nunique()
    assert held > 0 and pd.Series(keys).value_counts().get("call", 0) == capacity["call"]
    # No customer over a customer-scoped cap once today's contact is added.
    ledger = events.contacts.assign(
        customer_id=lambda c: c["account_id"].map(dict(zip(range(1, n + 1), customers, strict=True)))
    )
    today = ledger[ledger["timestamp"] >= pd.Timestamp("2026-03-04")]
    connected = today[(today["channel"] == "call") & (today["outcome"] == "connected")].groupby("customer_id").size()
    dials = today[(today["channel"] == "call") & (today["outcome"] == "attempt")].groupby("customer_id").size()
    on_the_day = used["send_after"].dt.tz_convert(SH).dt.date == NOW.date()
    called = set(used.loc[on_the_day & (used["channel"] == "call"), "customer_id"])
    assert all(connected.get(c, 0) + 1 <= 3 and dials.get(c, 0) + 1 <= 6 for c in called)
    for chan in ("sms", "app"):
        sent = today[today["channel"] == chan].groupby("customer_id").size()
        messaged = set(used.loc[on_the_day & (used["channel"] == chan), "customer_id"])
        assert all(sent.get(c, 0) == 0 for c in messaged)  # at most one a day per customer
    # Deferred contacts wait for the next local day and name the cap that held them.
    later = used[~on_the_day]
    assert len(later) > 0 and all(len(b) > 0 for b in later["blocked"])
    assert len(called) > 100 and (out["control"]).any()


def test_the_audit_replays_a_customers_decision(tmp_path: Path) -> None:
    contacts = _calls((1, 2), (3, 1))
    scores, expl, events = _case(4, [7, 7, 8, 7], contacts)
    log = tmp_path / "audit.jsonl"
    out = rs.recommend(scores, expl, events, "cn-2026", now=NOW, control_share=0.0, audit=log)
    records = list(rs.outreach.read_audit(log))
    assert len(records) == 4
    for record in records:
        again = rs.outreach.replay(record)
        assert again == record["recommendation"]
        assert again["customer_id"] == record["inputs"]["customer_id"]
    first = next(r for r in records if r["account_id"] == 1)
    assert {o["account_id"] for o in first["inputs"]["others"]} == {2, 4}
    assert {c[4] for c in first["inputs"]["contacts"]} == {1}  # the customer's contacts, with their account
    tampered = {**first, "inputs": {**first["inputs"], "others": first["inputs"]["others"][:1]}}
    with pytest.raises(rs.outreach.AuditError, match="do not match input_hash"):
        rs.outreach.replay(tampered)
    assert out.set_index("account_id").loc[[1, 2, 4], "contact_id"].nunique() == 1


def test_contact_times_of_any_precision_count_the_same() -> None:
    """A ledger read back from JSON has microsecond times (pandas 3): a conversation must still count."""
    from riskscore.outreach.rules import evaluate_rules

    *_, events = _case(1, None, _calls((1, 1)))
    frame = events.accounts[["account_id", "timezone"]]
    policy = rs.OutreachPolicy.load("uk-conc")
    exact = evaluate_rules(policy, frame, events.contacts, NOW, SH)
    coarse = events.contacts.assign(timestamp=events.contacts["timestamp"].astype("datetime64[us]"))
    again = evaluate_rules(policy, frame, coarse, NOW, SH)
    assert [(h.rule, h.channel) for h in exact.hits] == [(h.rule, h.channel) for h in again.hits]
    assert "UK.FREQ.CONVERSATION" in {h.rule for h in again.hits}
    assert exact.earliest["call"].tolist() == again.earliest["call"].tolist()


def test_one_contact_recorded_on_each_account_counts_once_for_the_customer() -> None:
    """A call about both accounts, recorded on each under one contact_id, is one call to the person.

    Rows without a contact id always count on their own (fail closed): the same
    three rows without ids are three calls, the customer's daily limit.
    """
    contacts = _calls((1, 2), (2, 1))
    scores, expl, events = _case(2, [7, 7], contacts)
    ledger = events.contacts.copy()
    # The 08:10 calls of accounts 1 and 2 are one call about both accounts.
    ledger["contact_id"] = np.where(ledger["timestamp"].dt.hour == 8, "7@08:10", "")
    ledger.loc[(ledger["timestamp"].dt.hour == 9), "contact_id"] = "7@09:10"
    shared = rs.EventData(**{**events.tables, "contacts": ledger})
    once = _decide((scores, expl, shared))
    assert "CN.FREQ.CONNECTED_DAY" not in _rules(once.loc[1, "blocked"])
    assert _today(once).all()  # two calls so far: a third one today is allowed
    twice = _decide((scores, expl, events))
    assert "CN.FREQ.CONNECTED_DAY" in _rules(twice.loc[1, "blocked"]) and not _today(twice).any()
