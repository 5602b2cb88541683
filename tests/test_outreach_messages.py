"""Messages and templates: facts, identity, education and opt-out; linting; prepared templates."""

from __future__ import annotations

import json

import pytest

from riskscore.errors import PolicyError
from riskscore.outreach import OutreachPolicy, Templates
from tests.outreach_cases import ny, one, sh


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
