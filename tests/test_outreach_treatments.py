"""Treatment tables are data, and refuse actions only a person may take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskscore.errors import PolicyError
from riskscore.outreach import Treatments
from tests.outreach_cases import ny, one


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
