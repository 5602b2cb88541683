"""Outreach: policy files, rule boundaries per profile, treatments, messages, capacity, control, audit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore.errors import PolicyError
from riskscore.features import describe
from riskscore.outreach import OutreachPolicy, Templates, Treatments, read_audit, replay
from riskscore.outreach.audit import AuditError
from riskscore.outreach.rules import NEVER, evaluate_rules
from tests.test_segments import CALM_CARD

AS_OF = pd.Timestamp("2026-03-01")

# Feature values that make each segment: the calm card of tests/test_segments.py, varied.
CARD = {**CALM_CARD, "inst_late_count_365d": 0.0, "inst_days_late_max_365d": 0.0}
SEGMENT_VALUES = {
    "forgetful": {**CARD, "stmt_late_count_365d": 2.0},
    "cannot_pay": {**CARD, "stmt_pay_ratio_last": 0.03, "stmt_pay_ratio_mean_180d": 0.04, "stmt_util_mean_90d": 1.0},
    "will_not_pay": {**CARD, "txn_amount_velocity_30d_90d": 2.5, "stmt_balance_growth_90d": 0.5},
    "unknown": {**CARD, "stmt_history_count": 0.0},
}


def make_case(
    accounts: list[dict[str, Any]],
    contacts: list[tuple[Any, str, str, str, str | None]] = (),  # type: ignore[assignment]
) -> tuple[pd.DataFrame, rs.Explanation, rs.EventData]:
    """Events, scores and an explanation for hand-described accounts.

    Each account dict: ``account_id``, optional ``timezone`` (default New York; None for none),
    ``band`` (default "E"), ``pd`` (default 0.15), ``segment`` (default "forgetful"), flags.
    """
    rows, stmts, values = [], [], []
    for a in accounts:
        rows.append(
            {
                "account_id": a["account_id"],
                "open_date": pd.Timestamp("2024-01-01"),
                "credit_limit": 5000.0,
                "timezone": a.get("timezone", "America/New_York"),
                **{k: a[k] for k in rs.outreach.FLAGS if k in a},
            }
        )
        for m in range(3):
            stmts.append(
                {
                    "account_id": a["account_id"],
                    "statement_date": AS_OF - pd.DateOffset(months=3 - m) + pd.Timedelta(days=4),
                    "balance": 1200.0,
                    "payment": 300.0,
                    "dpd": 0,
                    "min_due": 36.0,
                }
            )
        values.append(SEGMENT_VALUES[a.get("segment", "forgetful")])
    contact_frame = None
    if contacts:
        contact_frame = pd.DataFrame(contacts, columns=["account_id", "timestamp", "channel", "outcome", "direction"])
        contact_frame["timestamp"] = pd.to_datetime(contact_frame["timestamp"])
    events = rs.EventData(accounts=pd.DataFrame(rows), statements=pd.DataFrame(stmts), contacts=contact_frame)
    index = pd.MultiIndex.from_arrays([[a["account_id"] for a in accounts], [AS_OF] * len(accounts)])
    index = index.set_names(["account_id", "as_of"])
    data = pd.DataFrame(values, index=index)
    contributions = pd.DataFrame(0.0, index=index, columns=data.columns)
    contributions["stmt_pay_ratio_last"] = 0.4
    contributions["stmt_late_count_365d"] = 0.2
    explanation = rs.Explanation(
        values=contributions,
        base_value=-3.0,
        margin=contributions.sum(axis=1) - 3.0,
        data=data,
        catalogue=describe(list(data.columns)),
    )
    scores = pd.DataFrame(
        {"pd": [a.get("pd", 0.15) for a in accounts], "points": 600, "band": [a.get("band", "E") for a in accounts]},
        index=index,
    )
    return scores, explanation, events


def one(policy: str, now: Any, account: dict[str, Any] | None = None, contacts: Any = (), **kw: Any) -> pd.Series:
    scores, expl, events = make_case([{"account_id": 1, **(account or {})}], contacts)
    return rs.recommend(scores, expl, events, policy, now=now, **kw).iloc[0]


def ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/New_York")


def sh(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Shanghai")


# --------------------------------------------------------------------------- policy files


def test_shipped_profiles_load_with_sources() -> None:
    for name in rs.outreach.PROFILES:
        policy = OutreachPolicy.load(name)
        assert policy.id == name and policy.version.startswith(name)
        assert all(rule.source for rule in policy.rules)
        kinds = {rule.kind for rule in policy.rules}
        assert {"timezone_required", "contact_hours", "opt_out", "suppress", "support", "human_only"} <= kinds
        frame = policy.to_frame()
        assert list(frame.columns) == ["id", "kind", "channels", "parameters", "source"]
    assert OutreachPolicy.load("cn-2026").language == "zh"


def test_unknown_profile_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"unknown outreach policy 'xx-2030'.*cn-2026, us-regf, uk-conc"):
        OutreachPolicy.load("xx-2030")
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy\nid = 1", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"bad.toml: not a valid TOML policy file"):
        OutreachPolicy.load(bad)
    doc = json.loads(json.dumps(OutreachPolicy.load("us-regf").document))
    doc["rules"][1]["end"] = "25:00"
    doc["rules"][2]["kind"] = "sometimes"
    del doc["policy"]["currency"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"\[policy\] needs 'currency'"):
        OutreachPolicy.load(path)
    doc["policy"]["currency"] = "$"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        OutreachPolicy.load(path)
    message = str(info.value)
    assert "rule US.TIME.CONVENIENT: end must be HH:MM (24-hour); got '25:00'" in message
    assert "rule US.FREQ.7IN7: unknown kind 'sometimes'" in message


def test_a_limit_changed_in_the_file_changes_the_outcome(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(OutreachPolicy.load("us-regf").document))
    now = ny("2026-03-04 12:00")
    calls = [(1, f"2026-03-0{d} 10:00", "call", "attempt", "outbound") for d in (1, 2, 3)]
    case = {"segment": "will_not_pay"}
    assert one("us-regf", now, case, calls)["channel"] == "call"  # 3 calls < 7
    for rule in doc["rules"]:
        if rule["id"] == "US.FREQ.7IN7":
            rule["max"] = 3
    path = tmp_path / "strict.toml"
    path.write_text(_toml(doc), encoding="utf-8")
    strict = one(path, now, case, calls)
    assert strict["channel"] == "sms"
    assert {"rule": "US.FREQ.7IN7", "channel": "call"}.items() <= strict["blocked"][0].items()


def _toml(doc: dict[str, Any]) -> str:
    """A minimal TOML writer for policy documents (tables, arrays of tables, scalars, lists)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(v)

    lines = []
    for key, section in doc.items():
        if isinstance(section, list):
            for item in section:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {value(v)}" for k, v in item.items()]
        else:
            lines.append(f"[{key}]")
            lines += [f"{k} = {value(v)}" for k, v in section.items()]
    return "\n".join(lines) + "\n"


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


def test_forbearance_first_and_reminders_only_for_the_forgetful() -> None:
    now = ny("2026-03-04 12:00")
    plan = one("uk-conc", now, {"segment": "cannot_pay"})
    assert plan["action"] == "repayment_plan"
    offer = plan["offer"]
    # Balance 1,200, recent payments 300 a month: four instalments of 300.
    assert offer == {"instalment": 300.0, "term_months": 4, "total": 1200.0, "first_due": "2026-04-02"}
    assert "moneyhelper" in plan["message"].lower()  # debt advice signposted
    forgetful = one("uk-conc", now, {"segment": "forgetful"})
    assert forgetful["action"] == "reminder" and forgetful["offer"] is None
    # A plan offered 30 days ago is not offered again (cooldown 60 days in uk-conc).
    again = one("uk-conc", now, {"segment": "cannot_pay"}, [(1, "2026-02-02 12:00", "sms", "plan_offered", "outbound")])
    assert again["action"] == "none"
    assert any(b["rule"] == "UK.OFFER.COOLDOWN" for b in again["blocked"])


def test_messages_carry_facts_identity_education_and_opt_out() -> None:
    now = sh("2026-03-04 12:00")
    rec = one("cn-2026", now, {"timezone": "Asia/Shanghai"}, lender={"name": "示例银行", "contact": "95500"})
    assert rec["channel"] == "sms"
    text = rec["message"]
    # Last statement Feb 5; due 25 days later (Mar 2) has passed at now, so the next due date: Apr 2.
    assert "示例银行" in text and "¥36.00" in text and "2026-04-02" in text
    assert "回复TD退订" in text and "信用记录" in text
    en = one("us-regf", ny("2026-03-04 12:00"), lang="en", lender={"name": "Example Bank", "contact": "1-800-555-0100"})
    assert "Example Bank" in en["message"] and "Reply STOP" in en["message"] and "$36.00" in en["message"]
    assert 1 <= len(en["reasons"]) <= 4 and all(r["text"] and r["contribution"] > 0 for r in en["reasons"])
    assert en["policy_version"] == "us-regf.1"


def test_templates_are_linted_against_the_policy() -> None:
    policy = OutreachPolicy.load("us-regf")
    doc = json.loads(json.dumps(Templates.load(policy).document))
    doc["templates"]["reminder.sms"]["en"] = "{lender}: pay {amount} or we will take legal action. {opt_out}"
    with pytest.raises(PolicyError, match=r"template reminder.sms \(en\) breaks US.BAN.LEGAL \(false legal claims\)"):
        Templates.load(policy, doc)
    doc = json.loads(json.dumps(Templates.load(policy).document))
    doc["templates"]["reminder.email"]["zh"] = "{lender}：请于{due_date}前还款{amount}。"
    with pytest.raises(PolicyError, match=r"template reminder.email \(zh\) has no \{opt_out\}"):
        Templates.load(policy, doc)
    doc = json.loads(json.dumps(Templates.load(policy).document))
    doc["templates"]["reminder.app"]["en"] = "{lender} {balance_owed} {opt_out}"
    with pytest.raises(PolicyError, match=r"unknown placeholder\(s\) \['balance_owed'\]"):
        Templates.load(policy, doc)
    doc = json.loads(json.dumps(Templates.load(policy).document))
    doc["templates"]["reminder.sms"]["zh"] = "【{lender}】请尽快还款，可以借钱还款。{opt_out}"
    with pytest.raises(PolicyError, match=r"US.BAN.BORROW \(urging new borrowing\)"):
        Templates.load(policy, doc)


def test_treatments_are_data_and_refuse_human_only_actions(tmp_path: Path) -> None:
    table = Treatments.load()
    assert table.options("C", "cannot_pay")[0][0] == "repayment_plan"
    assert table.options("A", "forgetful") == ()
    doc = json.loads(json.dumps(table.document))
    doc["treatment"][-1]["options"] = ["legal_action:call"]
    with pytest.raises(PolicyError, match=r"legal_action:call.*never recommended automatically"):
        Treatments.load(doc)
    # Another table changes the decision with no code change.
    doc = json.loads(json.dumps(table.document))
    for entry in doc["treatment"]:
        if "E" in entry["bands"] and "forgetful" in entry["segments"]:
            entry["options"] = ["reminder:email"]
    rec = one("us-regf", ny("2026-03-04 12:00"), treatments=doc)
    assert rec["channel"] == "email"


def test_bad_arguments_are_named() -> None:
    scores, expl, events = make_case([{"account_id": 1}, {"account_id": 2}])
    with pytest.raises(ValueError, match="now must be time-zone aware"):
        rs.recommend(scores, expl, events, "us-regf", now=pd.Timestamp("2026-03-04 12:00"))
    with pytest.raises(ValueError, match="capacity has unknown channel 'fax'"):
        rs.recommend(scores, expl, events, "us-regf", now=ny("2026-03-04 12:00"), capacity={"fax": 3})
    with pytest.raises(ValueError, match=r"capacity\['call'\] must be a whole number >= 0; got -1"):
        rs.recommend(scores, expl, events, "us-regf", now=ny("2026-03-04 12:00"), capacity={"call": -1})
    doubled = pd.concat([scores, scores.rename(index={AS_OF: AS_OF - pd.DateOffset(months=1)}, level="as_of")])
    with pytest.raises(ValueError, match=r"one row per account.*e.g. \[1, 2\]"):
        rs.recommend(doubled, expl, events, "us-regf", now=ny("2026-03-04 12:00"))
    with pytest.raises(ValueError, match="2 accounts are in bands that call for contact but no explanation"):
        rs.recommend(scores, None, events, "us-regf", now=ny("2026-03-04 12:00"))
    with pytest.raises(ValueError, match=r"now .* is before the as_of"):
        rs.recommend(scores, expl, events, "us-regf", now=ny("2026-02-20 12:00"))


# --------------------------------------------------------------------------- portfolio scale


@pytest.fixture(scope="module")
def portfolio(sample_model: tuple[rs.RiskModel, pd.DataFrame], sample_xy: dict[str, Any]) -> dict[str, Any]:
    """10,000 synthetic accounts scored by the sample model, with flags, opt-outs and recent calls."""
    model, _ = sample_model
    events, _ = rs.datasets.make_portfolio(n_accounts=10_000, months=14, seed=5, start="2025-01-01")
    as_of = pd.Timestamp("2026-02-01")
    accounts = events.accounts.copy()
    rng = np.random.default_rng(1)
    for flag, share in (("vulnerable", 0.02), ("attorney", 0.005), ("deceased", 0.002), ("hardship_plan", 0.01)):
        accounts[flag] = rng.random(len(accounts)) < share
    contacts = events.contacts
    ids = accounts["account_id"].to_numpy()
    picked = rng.choice(ids, 600, replace=False)
    recent = pd.DataFrame(
        {
            "account_id": np.repeat(picked, 3),
            "timestamp": pd.Timestamp("2026-02-01 09:00") + pd.to_timedelta(rng.integers(0, 2 * 24 * 60, 1800), "min"),
            "channel": "call",
            "outcome": rng.choice(["attempt", "connected"], 1800, p=[0.8, 0.2]),
            "direction": "outbound",
        }
    )
    events = rs.EventData(**{**events.tables, "accounts": accounts, "contacts": pd.concat([contacts, recent])})
    open_ = events.accounts.set_index("account_id")["open_date"] < as_of
    obs = pd.DataFrame({"account_id": open_[open_].index, "as_of": as_of})
    X = sample_xy["builder"].transform(events, obs)
    scores = model.score(X)
    needs = scores["band"].isin(["C", "D", "E", "F"]).to_numpy()
    explanation = model.explain(X[needs])
    now = pd.Timestamp("2026-02-03 10:30", tz="America/New_York")
    return {"events": events, "scores": scores, "explanation": explanation, "now": now}


def test_capacity_blocks_and_control_over_10000_accounts(portfolio: dict[str, Any]) -> None:
    events, scores, expl, now = portfolio["events"], portfolio["scores"], portfolio["explanation"], portfolio["now"]
    assert len(scores) >= 9_000
    capacity = {"call": 150, "sms": 600, "app": 300, "email": 200, "human_review": 40}
    policy = OutreachPolicy.load("us-regf")
    out = rs.recommend(scores, expl, events, policy, now=now, capacity=capacity, seed=3)
    assert len(out) == len(scores) and out["account_id"].tolist() == scores.index.get_level_values(0).tolist()
    # No capacity exceeded (and capacity is the binding constraint for calls and sms here).
    used = (
        out.loc[out["action"] != "none"]
        .assign(key=lambda d: np.where(d["action"] == "human_review", "human_review", d["channel"]))["key"]
        .value_counts()
    )
    for key, cap in capacity.items():
        assert used.get(key, 0) <= cap, key
    assert used.get("call", 0) == capacity["call"]
    # No blocked channel used: checked against the rules evaluated independently of the allocation.
    frame = events.accounts.set_index("account_id").loc[out["account_id"]].reset_index()
    evaluation = evaluate_rules(policy, frame, events.contacts, now, "America/New_York")
    horizon = evaluation.now + int(24 * 3600e9)
    contacted = np.flatnonzero((out["channel"] != "").to_numpy())
    assert len(contacted) > 500
    for i in contacted:
        channel = out["channel"].iat[i]
        assert evaluation.earliest[channel][i] <= horizon and evaluation.earliest[channel][i] != NEVER
        assert out["send_after"].iat[i].value == evaluation.earliest[channel][i]
        local = out["send_after"].iat[i].tz_convert(out["timezone"].iat[i])
        assert 8 <= local.hour < 21
    known = events.contacts["timestamp"] < now.tz_localize(None)  # opt-outs after now are not known yet
    opted = events.contacts.loc[known & (events.contacts["outcome"] == "opt_out"), ["account_id", "channel"]]
    opted = opted.astype(str)
    assert len(opted) > 100
    used_pairs = set(zip(out["account_id"].astype(str), out["channel"], strict=True))
    assert not used_pairs & set(zip(opted["account_id"], opted["channel"], strict=True))
    assert not out.loc[out["timezone"].isna(), "channel"].astype(bool).any()
    flagged = (
        events.accounts.set_index("account_id").loc[out["account_id"], ["vulnerable", "hardship_plan"]].any(axis=1)
    )
    assert not out.loc[flagged.to_numpy(), "action"].isin(["reminder", "call", "repayment_plan"]).any()
    # Control share within 1 point of the setting, among accounts eligible for a standard treatment.
    share = out["control"].sum() / max(int(_eligible_count(out, scores)), 1)
    assert abs(share - 0.05) <= 0.01, share
    assert not out.loc[out["control"], "channel"].astype(bool).any()
    # Deterministic: the same seed gives the same output; another seed another control group.
    again = rs.recommend(scores, expl, events, policy, now=now, capacity=capacity, seed=3)
    pd.testing.assert_frame_equal(out, again)
    other = rs.recommend(scores, expl, events, policy, now=now, capacity=capacity, seed=4)
    assert not other["control"].equals(out["control"])


def _eligible_count(out: pd.DataFrame, scores: pd.DataFrame) -> int:
    """Accounts in contact bands that are not on a support or suppression path."""
    contact_band = out["band"].isin(["C", "D", "E", "F"])
    special = out["blocked"].map(lambda b: any(x["channel"] == "*" for x in b))
    return int((contact_band & ~special).sum())


def test_audit_log_replays_every_decision(portfolio: dict[str, Any], tmp_path: Path) -> None:
    events, scores, expl, now = portfolio["events"], portfolio["scores"], portfolio["explanation"], portfolio["now"]
    keep = scores.index.get_level_values("account_id").isin(scores.index.get_level_values("account_id")[:600])
    log = tmp_path / "audit.jsonl"
    out = rs.recommend(scores[keep], expl, events, "cn-2026", now=now, capacity={"call": 20, "sms": 100}, audit=log)
    records = list(read_audit(log))
    assert len(records) == len(out)
    assert [r["recommendation"]["account_id"] for r in records] == out["account_id"].tolist()
    # Replay (about 15 ms each): every contact or review decision, every control, and every 5th of the rest.
    replayed = 0
    for k, record in enumerate(records):
        assert record["policy_version"] == "cn-2026.1"
        assert {"rule", "channel", "outcome"} <= set(record["rules"][0])
        rec = record["recommendation"]
        if rec["action"] != "none" or rec["control"] or k % 5 == 0:
            assert replay(record) == rec
            replayed += 1
    assert replayed > 150 and (out["action"] != "none").sum() > 50
    # Every rule of the policy is evaluated for every account.
    rule_ids = {r.id for r in OutreachPolicy.load("cn-2026").rules}
    assert all({r["rule"] for r in rec["rules"]} >= rule_ids for rec in records)
    # Append-only: a second run adds to the log; both runs stay readable.
    rs.recommend(scores[keep], expl, events, "cn-2026", now=now, audit=log)
    assert len(list(read_audit(log))) == 2 * len(out)
    # Tampering with the inputs is detected.
    tampered = {**records[0], "inputs": {**records[0]["inputs"], "pd": 0.99}}
    with pytest.raises(AuditError, match="do not match input_hash"):
        replay(tampered)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_prepared_templates_render_like_the_full_template(lang: str) -> None:
    """Filling the fixed texts once, then the account's facts, gives the same message as filling all at once."""
    policy = OutreachPolicy.load("cn-2026")
    templates = Templates.load(policy)
    fixed = {
        "lender": "Example {Bank}",  # braces in a value must survive
        "lender_contact": "555-0100",
        "education": templates.education[lang],
        "plan_education": templates.plan_education[lang],
        "debt_advice": policy.debt_advice[lang],
        "opt_out": policy.opt_out_text[lang],
    }
    facts = {"amount": "¥36.00", "due_date": "2026-04-02", "reasons": "r1; r2", "instalment": "¥300.00"}
    facts |= {"term": "4", "total": "¥1,200.00"}
    prepared = templates.prepared(lang, fixed)
    assert set(prepared) == set(templates.texts)
    for key in templates.texts:
        action, _, channel = key.partition(".")
        assert prepared[key].format(**facts) == templates.render(action, channel, lang, {**fixed, **facts})
