"""The policy's rules at their boundaries, per profile: hours, caps, quiet periods, DST, opt-outs, flags."""

from __future__ import annotations

import pandas as pd
import pytest

import riskscore as rs
from riskscore.outreach import OutreachPolicy
from riskscore.outreach.rules import evaluate_rules
from tests.outreach_cases import make_case, ny, one, sh

# --------------------------------------------------------------------------- boundaries per profile


@pytest.mark.parametrize(
    ("local", "allowed"),
    [("21:59", True), ("22:00", False), ("07:59", False), ("08:00", True)],
)
def test_cn_contact_hours(local: str, allowed: bool) -> None:
    now = sh(f"2026-03-04 {local}")
    rec = one("cn-2026", now, {"timezone": "Asia/Shanghai"})
    assert rec["action"] == "reminder"
    if allowed:
        assert rec["send_after"] == now
    else:
        opening = sh("2026-03-05 08:00") if local >= "22:00" else sh("2026-03-04 08:00")
        assert rec["send_after"] == opening


@pytest.mark.parametrize(("local", "allowed"), [("20:59", True), ("21:00", False)])
def test_us_contact_hours(local: str, allowed: bool) -> None:
    now = ny(f"2026-03-04 {local}")
    rec = one("us-regf", now)
    assert rec["send_after"] == (now if allowed else ny("2026-03-05 08:00"))


def test_us_seventh_and_eighth_call_in_a_rolling_week() -> None:
    now = ny("2026-03-08 12:00")  # also a DST change day in New York
    # Calls at 10:00 on Mar 1..7 (the Mar 1 call is 7 days + 2 h old: outside the 7 x 24 h window).
    days = [1, 2, 3, 4, 5, 6, 7]
    calls = [(1, f"2026-03-0{d} 10:00", "call", "attempt", "outbound") for d in days]
    seventh = one("us-regf", now, {"segment": "will_not_pay"}, calls)  # Mar 2..7: 6 in the window
    assert seventh["action"] == "call" and seventh["send_after"] == now
    extra = [*calls, (1, "2026-03-08 09:00", "call", "attempt", "outbound")]  # 7 in the window
    eighth = one("us-regf", now, {"segment": "will_not_pay"}, extra)
    # The 8th waits until the oldest counted call (Mar 2, 10:00 EST) is 7 x 24 h old: Mar 9, 11:00 EDT.
    assert eighth["channel"] == "call" and eighth["send_after"] == ny("2026-03-09 11:00")
    policy = OutreachPolicy.load("us-regf")
    _, _, events = make_case([{"account_id": 1}], extra)
    evaluation = evaluate_rules(policy, events.accounts, events.contacts, now, "America/New_York")
    assert pd.Timestamp(evaluation.earliest["call"][0], tz="UTC") == ny("2026-03-09 11:00")
    # Three more days of calls push the next one beyond today's plan: blocked, with the rule and the time.
    later = [*extra, *[(1, f"2026-03-0{d} 16:00", "call", "attempt", "outbound") for d in (5, 6, 7)]]
    blocked = one("us-regf", now, {"segment": "will_not_pay"}, later)
    assert blocked["channel"] == "sms"
    assert blocked["blocked"][0]["rule"] == "US.FREQ.7IN7"
    assert "allowed from 2026-03-12 11:00 EDT" in blocked["blocked"][0]["why"]
    # Inbound calls do not count toward the cap.
    inbound = [(1, t, c, o, "inbound") for (_, t, c, o, _) in extra]
    assert one("us-regf", now, {"segment": "will_not_pay"}, inbound)["channel"] == "call"


@pytest.mark.parametrize(("days", "allowed"), [(6, False), (7, True)])
def test_us_call_after_a_conversation(days: int, allowed: bool) -> None:
    now = ny("2026-03-20 12:00")
    talk = now.tz_localize(None) - pd.Timedelta(days=days)
    rec = one("us-regf", now, {"segment": "will_not_pay"}, [(1, talk, "call", "connected", "inbound")])
    assert rec["channel"] == "call"
    assert rec["send_after"] == (now if allowed else now + pd.Timedelta(days=7 - days))


def test_dst_change_days_use_local_wall_clock() -> None:
    # Spring forward (New York, 2026-03-08): at 07:30 EDT the window opens at 08:00 EDT = 12:00 UTC.
    rec = one("us-regf", ny("2026-03-08 07:30"))
    assert rec["send_after"] == pd.Timestamp("2026-03-08 12:00", tz="UTC")
    # Fall back (2026-11-01): at 21:30 EST the next opening is 08:00 EST on Nov 2 = 13:00 UTC.
    rec = one("us-regf", ny("2026-11-01 21:30"))
    assert rec["send_after"] == pd.Timestamp("2026-11-02 13:00", tz="UTC")
    # The day before spring forward, 21:30 EST -> 08:00 EDT next day = 12:00 UTC (not 13:00).
    rec = one("us-regf", ny("2026-03-07 21:30"))
    assert rec["send_after"] == pd.Timestamp("2026-03-08 12:00", tz="UTC")


@pytest.mark.parametrize("policy", ["cn-2026", "us-regf", "uk-conc"])
def test_opt_out_is_honoured_on_its_channel_only(policy: str) -> None:
    now = ny("2026-03-04 12:00")
    opted = [(1, "2026-02-01 12:00", "sms", "opt_out", "inbound")]
    rec = one(policy, now, {"segment": "forgetful"}, opted)
    assert rec["action"] == "reminder" and rec["channel"] == "app"  # sms first in the table, app next
    assert any(b["channel"] == "sms" and "opted out" in b["why"] for b in rec["blocked"])
    call = one(policy, now, {"segment": "will_not_pay"}, opted)
    assert call["channel"] == "call"  # an sms opt-out leaves calls alone


@pytest.mark.parametrize("policy", ["cn-2026", "us-regf", "uk-conc"])
@pytest.mark.parametrize("segment", ["forgetful", "cannot_pay", "will_not_pay", "unknown"])
def test_vulnerable_accounts_never_get_a_plain_payment_demand(policy: str, segment: str) -> None:
    for flag in ("vulnerable", "hardship_plan"):
        rec = one(policy, ny("2026-03-04 12:00"), {"segment": segment, flag: True, "band": "F", "pd": 0.5})
        assert rec["action"] in ("human_review", "none")
        assert rec["action"] not in ("reminder", "call")
        assert not rec["control"]
        assert any("support path" in b["why"] for b in rec["blocked"])


@pytest.mark.parametrize("policy", ["cn-2026", "us-regf", "uk-conc"])
def test_missing_time_zone_fails_closed(policy: str) -> None:
    rec = one(policy, ny("2026-03-04 12:00"), {"timezone": None})
    assert rec["action"] == "none" and rec["channel"] == ""
    assert {b["channel"] for b in rec["blocked"]} == {"sms", "app", "email"}
    assert all("no time zone" in b["why"] for b in rec["blocked"])


def test_suppression_flags_and_cease() -> None:
    now = ny("2026-03-04 12:00")
    assert one("us-regf", now, {"deceased": True})["action"] == "none"
    assert one("us-regf", now, {"bankrupt": True})["action"] == "none"
    attorney = one("us-regf", now, {"attorney": True})
    assert attorney["action"] == "human_review" and attorney["channel"] == ""
    ceased = one("us-regf", now, {}, [(1, "2026-01-05 10:00", "email", "cease", "inbound")])
    assert ceased["action"] == "none"
    assert any("cease" in b["why"] for b in ceased["blocked"])
    # A flag with a missing value counts as set (fail closed).
    scores, expl, events = make_case([{"account_id": 1, "deceased": True}, {"account_id": 2, "deceased": False}])
    accounts = events.accounts.copy()
    accounts["deceased"] = pd.array([None, False], dtype="boolean")
    events = rs.EventData(**{**events.tables, "accounts": accounts})
    out = rs.recommend(scores, expl, events, "us-regf", now=now)
    assert list(out["action"]) == ["none", "reminder"]
    assert "deceased flag unknown" in out["blocked"].iloc[0][0]["why"]
