"""The decision: treatment routes, argument checks, capacity and control over a whole book."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore.outreach import OutreachPolicy
from riskscore.outreach.rules import NEVER, evaluate_rules
from tests.outreach_cases import AS_OF, make_case, ny, one


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


def test_capacity_blocks_and_control_over_10000_accounts(portfolio: dict[str, Any]) -> None:
    events, scores, expl, now = portfolio["events"], portfolio["scores"], portfolio["explanation"], portfolio["now"]
    assert len(scores) >= 9_000
    capacity = {"call": 150, "sms": 600, "app": 300, "email": 200, "human_review": 40}
    policy = OutreachPolicy.load("us-regf")
    out = rs.recommend(scores, expl, events, policy, now=now, capacity=capacity, seed=3)
    assert len(out) == len(scores) and out["account_id"].tolist() == scores.index.get_level_values(0).tolist()
    # No capacity exceeded (and capacity is the binding constraint for calls and sms here).
    # Capacity counts contacts: one per customer, whatever its number of accounts.
    used = (
        out.loc[out["action"] != "none"]
        .drop_duplicates("contact_id")
        .assign(key=lambda d: np.where(d["action"] == "human_review", "human_review", d["channel"]))["key"]
        .value_counts()
    )
    for key, cap in capacity.items():
        assert used.get(key, 0) <= cap, key
    # Calls are scarce: a held-out customer's granted contact is withheld and its capacity goes to the next
    # in line, so every call of the capacity is made.
    held = out.loc[out["control"], "customer_id"].nunique()
    assert held > 0 and used.get("call", 0) == capacity["call"]
    # No blocked channel used: checked against the rules evaluated independently of the allocation.
    frame = events.accounts.set_index("account_id").loc[out["account_id"]].reset_index()
    evaluation = evaluate_rules(policy, frame, events.contacts, now, "America/New_York")
    horizon = evaluation.now + int(24 * 3600e9)
    contacted = np.flatnonzero((out["channel"] != "").to_numpy())
    assert len(contacted) > 500
    customer = out["customer_id"].to_numpy()
    for i in contacted:
        channel = out["channel"].iat[i]
        assert evaluation.earliest[channel][i] <= horizon and evaluation.earliest[channel][i] != NEVER
        # One contact per customer: at the earliest moment every one of its accounts allows.
        together = np.flatnonzero(customer == customer[i])
        assert out["send_after"].iat[i].value == evaluation.earliest[channel][together].max()
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
    # Control share within 1 point of the setting, among the customers granted a standard contact; customers
    # not granted one are in no arm.
    special = out["blocked"].map(lambda b: any(x["channel"] == "*" for x in b))
    granted = out.loc[(out["treatment"] != "none") & ~special]
    share = granted.loc[granted["control"], "customer_id"].nunique() / granted["customer_id"].nunique()
    assert abs(share - 0.05) <= 0.01, share
    assert (out.loc[out["control"], "treatment"] != "none").all()
    assert int(_eligible_count(out, scores)) > granted["customer_id"].nunique()  # capacity binds
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


def test_a_held_out_contact_reuses_its_capacity_or_holds_it(portfolio: dict[str, Any]) -> None:
    events, scores, expl, now = portfolio["events"], portfolio["scores"], portfolio["explanation"], portfolio["now"]
    capacity = {"call": 150, "sms": 600, "app": 300, "email": 200, "human_review": 40}

    def decide(share: float, how: str) -> pd.DataFrame:
        return rs.recommend(scores, expl, events, "us-regf", now=now, capacity=capacity, control_share=share,
                            seed=3, control_capacity=how).drop_duplicates("customer_id")  # fmt: skip

    def granted(out: pd.DataFrame) -> dict[str, set[Any]]:
        rows = out[out["treatment"] != "none"]
        key = np.where(rows["action"] == "human_review", "human_review", rows["channel"])
        key = np.where(rows["control"], "held", key)
        return {str(k): set(rows.loc[key == k, "customer_id"]) for k in np.unique(key)}

    alone = granted(decide(0.0, "reuse"))
    hold, reuse = decide(0.2, "hold"), decide(0.2, "reuse")
    # hold: the same customers are granted as without a control group; the drawn ones are simply not contacted.
    on_hold = granted(hold)
    assert set().union(*on_hold.values()) == set().union(*alone.values())
    assert len(on_hold["call"]) < capacity["call"] and len(on_hold["held"]) > 0
    # reuse: every scarce channel is used to its capacity, and the held-out customers come on top.
    reused = granted(reuse)
    for key in ("call", "sms"):
        assert len(alone[key]) == len(reused[key]) == capacity[key]
    assert len(reused["held"]) > len(on_hold["held"]) * 0.8
    assert set().union(*alone.values()) < set().union(*reused.values())
    # Both draws hold out the same share of the granted (a hash per customer, whatever the capacity).
    for out in (hold, reuse):
        share = out.loc[out["treatment"] != "none", "control"].mean()
        assert 0.15 < share < 0.25
    with pytest.raises(ValueError, match=r"control_capacity must be one of \['reuse', 'hold'\]; got 'keep'"):
        rs.recommend(scores, expl, events, "us-regf", now=now, control_capacity="keep")
