"""recommend(..., uplift=): each account's own predicted effect decides who is contacted and how (#14 item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from tests.outreach_cases import make_case

NOW = pd.Timestamp("2026-03-04 10:00", tz="America/New_York")
TABLE = rs.outreach.Treatments.load()


def _case(n: int = 2, **kw: Any) -> tuple[pd.DataFrame, rs.Explanation, rs.EventData]:
    accounts = [{"account_id": i, "segment": "will_not_pay", "band": "E", "pd": 0.3, **kw} for i in range(1, n + 1)]
    return make_case(accounts)


def test_the_account_with_the_larger_predicted_drop_gets_the_one_call() -> None:
    scores, expl, events = _case(2)
    base = rs.recommend(scores, expl, events, "us-regf", now=NOW, control_share=0.0, capacity={"call": 1})
    assert base.set_index("account_id").loc[1, "action"] == "call"  # equal benefits: the smaller id first
    drops = pd.Series({1: 0.01, 2: 0.12})
    out = rs.recommend(scores, expl, events, "us-regf", now=NOW, control_share=0.0, capacity={"call": 1},
                       uplift={"call": drops}).set_index("account_id")  # fmt: skip
    assert out.loc[2, "action"] == "call" and out.loc[1, "action"] != "call"
    # The benefit is exposure x LGD x the predicted drop, less the call's cost, where the table had PD x effect.
    cost = TABLE.cost["call"]
    assumed = base.set_index("account_id").loc[1, "expected_benefit"]
    value = (assumed + cost) / (0.3 * TABLE.effect_of("call", "will_not_pay"))  # exposure x LGD
    assert out.loc[2, "expected_benefit"] == pytest.approx(value * 0.12 - cost, abs=1e-5)


def test_options_follow_the_predicted_drops_and_a_drop_is_at_most_the_pd() -> None:
    scores, expl, events = _case(1)
    assumed = rs.recommend(scores, expl, events, "us-regf", now=NOW, control_share=0.0)
    assert assumed["action"].iat[0] == "call"  # the table's first option for this segment
    models = {"call": pd.Series({1: 0.0}), "reminder": pd.Series({1: 0.9})}
    out = rs.recommend(scores, expl, events, "us-regf", now=NOW, control_share=0.0, uplift=models)
    assert out["action"].iat[0] == "reminder"
    value = (assumed["expected_benefit"].iat[0] + TABLE.cost["call"]) / (0.3 * TABLE.effect_of("call", "will_not_pay"))
    # A drop of 0.9 on a PD of 0.3 averts the whole risk, no more.
    assert out["expected_benefit"].iat[0] == pytest.approx(value * 0.3 - TABLE.cost[out["channel"].iat[0]], abs=1e-5)
    # A predicted rise is no benefit: with every option predicted useless, no contact.
    harm = {a: pd.Series({1: -0.05}) for a in ("call", "reminder", "repayment_plan")}
    none = rs.recommend(scores, expl, events, "us-regf", now=NOW, control_share=0.0, uplift=harm)
    assert none["action"].iat[0] == "none"


def test_an_uplift_model_predicts_on_the_explained_features_and_the_audit_names_the_actions(tmp_path: Path) -> None:
    scores, expl, events = _case(3)
    seen: list[pd.DataFrame] = []

    class Model:
        def predict(self, X: pd.DataFrame) -> np.ndarray:
            seen.append(X)
            return np.array([0.0, 0.2, 0.05])

    audit = tmp_path / "audit.jsonl"
    out = rs.recommend(scores, expl, events, "us-regf", now=NOW, control_share=0.0, capacity={"call": 1},
                       uplift={"call": Model()}, audit=audit)  # fmt: skip
    assert out.set_index("account_id").loc[2, "action"] == "call"
    pd.testing.assert_frame_equal(seen[0], expl.data)  # the features of the explained rows, in their order
    run = json.loads(audit.read_text().splitlines()[0])
    assert run["settings"]["uplift"] == ["call"]


def test_bad_uplift_gets_one_clear_error() -> None:
    scores, expl, events = _case(2)

    def go(uplift: Any) -> None:
        rs.recommend(scores, expl, events, "us-regf", now=NOW, uplift=uplift)

    with pytest.raises(ValueError, match=r"uplift: unknown action\(s\) \['calls'\]; the treatment table's actions"):
        go({"calls": pd.Series({1: 0.1, 2: 0.1})})
    with pytest.raises(ValueError, match=r"every explained account a value; 1 lack one, e.g. account_id \[2\]"):
        go({"call": pd.Series({1: 0.1})})
    with pytest.raises(ValueError, match=r"must be finite for every account; not for account_id \[1\]"):
        go({"call": pd.Series({1: np.inf, 2: 0.1})})
    with pytest.raises(ValueError, match=r"an UpliftModel \(with predict\) or a Series by account_id; got dict"):
        go({"call": {1: 0.1}})
    with pytest.raises(ValueError, match=r"one value per account_id; ids repeat"):
        go({"call": pd.Series([0.1, 0.2, 0.3], index=[1, 1, 2])})
    with pytest.raises(ValueError, match=r"uplift must map actions"):
        go([0.1, 0.2])
