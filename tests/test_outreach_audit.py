"""The audit log: every decision replayed exactly, appends, tampering detected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import riskscore as rs
from riskscore.outreach import OutreachPolicy, read_audit, replay
from riskscore.outreach.audit import AuditError


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
