"""Borrower segments: each rule on hand-built rows, windows, thresholds, and agreement with the generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore.segments import EVIDENCE, SEGMENTS, SegmentRules, segment_rows

# A card borrower who pays most of the balance, low and steady utilisation, no cash, no lateness.
CALM_CARD = {
    "stmt_history_count": 12.0,
    "stmt_pay_ratio_last": 0.6,
    "stmt_pay_ratio_mean_180d": 0.55,
    "stmt_balance_growth_90d": 0.0,
    "stmt_util_slope_90d": 0.0,
    "stmt_util_mean_90d": 0.3,
    "stmt_late_count_365d": 0.0,
    "txn_cash_advance_share_90d": 0.0,
    "txn_atm_share_90d": 0.0,
    "txn_amount_velocity_30d_90d": 1.0,
    "inst_history_count": 0.0,
}
CALM_LOAN = {
    "stmt_history_count": 0.0,
    "inst_history_count": 10.0,
    "inst_late_count_365d": 0.0,
    "inst_days_late_max_365d": 0.0,
}


def rows(**cases: dict[str, float]) -> pd.DataFrame:
    columns = sorted({c for case in cases.values() for c in case} | set(CALM_CARD) | set(CALM_LOAN))
    return pd.DataFrame([{c: case.get(c, np.nan) for c in columns} for case in cases.values()], index=list(cases))


CASES = {
    # sporadic lateness that cured, capacity intact
    "forgetful_card": ({**CALM_CARD, "stmt_late_count_365d": 2.0}, "forgetful", ("short_lateness", "paying_well")),
    # an instalment paid three weeks late, nothing else
    "forgetful_loan": (
        {**CALM_LOAN, "inst_late_count_365d": 1.0, "inst_days_late_max_365d": 21.0},
        "forgetful",
        ("short_lateness",),
    ),
    # no lateness, pays well, no strain: capacity intact -> a reminder is the right touch
    "intact_card": (CALM_CARD, "forgetful", ("paying_well",)),
    # minimum payments, utilisation rising, cash advances
    "strained_card": (
        {
            **CALM_CARD,
            "stmt_pay_ratio_last": 0.03,
            "stmt_pay_ratio_mean_180d": 0.05,
            "stmt_util_slope_90d": 0.12,
            "txn_cash_advance_share_90d": 0.3,
        },
        "cannot_pay",
        ("minimum_payments", "rising_utilisation", "cash_advances"),
    ),
    # late, but also at the limit and paying the minimum: strain wins over forgetfulness
    "late_and_strained": (
        {**CALM_CARD, "stmt_late_count_365d": 1.0, "stmt_pay_ratio_last": 0.03, "stmt_util_mean_90d": 1.02},
        "cannot_pay",
        ("minimum_payments", "high_utilisation"),
    ),
    # instalments slipping a few days
    "slipping_loan": (
        {**CALM_LOAN, "inst_late_count_365d": 3.0, "inst_days_late_max_365d": 6.0},
        "cannot_pay",
        ("instalment_slips",),
    ),
    # pays well, then spending runs up
    "spree_card": (
        {**CALM_CARD, "txn_amount_velocity_30d_90d": 2.4, "stmt_balance_growth_90d": 0.5},
        "will_not_pay",
        ("paying_well", "spending_spree"),
    ),
    # a card before its first statement
    "new_card": ({**CALM_CARD, "stmt_history_count": 0.0}, "unknown", ("no_history",)),
    # a loan paid on time: no evidence either way
    "quiet_loan": (CALM_LOAN, "unknown", ()),
}


def test_each_rule_on_hand_built_rows() -> None:
    data = rows(**{name: case for name, (case, _, _) in CASES.items()})
    out = segment_rows(data)
    assert list(out.columns) == ["segment", "evidence"] and out.index.equals(data.index)
    assert list(out["segment"].cat.categories) == list(SEGMENTS)
    for name, (_, segment, evidence) in CASES.items():
        assert out.loc[name, "segment"] == segment, name
        assert out.loc[name, "evidence"] == evidence, name
        assert set(evidence) <= set(EVIDENCE)


def test_thresholds_are_configuration() -> None:
    data = rows(spree={**CALM_CARD, "txn_amount_velocity_30d_90d": 1.4})
    assert segment_rows(data)["segment"].iloc[0] == "forgetful"  # 1.4 is below the default 1.5
    assert segment_rows(data, SegmentRules(spree_velocity=1.3))["segment"].iloc[0] == "will_not_pay"
    late = rows(late={**CALM_CARD, "stmt_late_count_365d": 1.0, "stmt_pay_ratio_last": 0.03, "stmt_util_mean_90d": 1.0})
    assert segment_rows(late)["segment"].iloc[0] == "cannot_pay"
    assert segment_rows(late, SegmentRules(forgetful_max_strain=2))["segment"].iloc[0] == "forgetful"
    with pytest.raises(ValueError, match=r"SegmentRules.slip_days must be a finite number >= 0; got -1"):
        SegmentRules(slip_days=-1)
    with pytest.raises(ValueError, match=r"SegmentRules.spree_velocity must be a finite number >= 0; got nan"):
        SegmentRules(spree_velocity=float("nan"))


def test_other_windows_use_the_nearest_one() -> None:
    # A builder run with 60- and 365-day windows: the 90-day rules read the 60-day features.
    case = {
        k.replace("_90d", "_60d").replace("_180d", "_365d"): v
        for k, v in {**CALM_CARD, "stmt_util_mean_90d": 1.0, "stmt_pay_ratio_last": 0.03}.items()
    }
    case["stmt_util_mean_365d"] = 0.1  # further from 90 days than 60: not used
    data = rows(other=case)
    assert "stmt_util_mean_90d" not in data.columns or data["stmt_util_mean_90d"].isna().all()
    out = segment_rows(data.drop(columns=[c for c in data.columns if c.endswith(("_90d", "_180d"))]))
    assert out["segment"].iloc[0] == "cannot_pay"
    assert out["evidence"].iloc[0] == ("minimum_payments", "high_utilisation")


def test_missing_facts_are_no_evidence() -> None:
    # Nothing known about the card's payments: neither strain nor paying well can be claimed.
    data = rows(blank={"stmt_history_count": 5.0, "inst_history_count": 0.0})
    out = segment_rows(data)
    assert out["segment"].iloc[0] == "unknown" and out["evidence"].iloc[0] == ()


def test_segments_agree_with_the_generators_behaviour(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], sample_xy: dict[str, object]
) -> None:
    """Acceptance: >= 70% agreement on positive observations of the three types with a meaning."""
    model, X = sample_model
    y = sample_xy["y"]
    positives = X[(y == 1).to_numpy()]  # type: ignore[operator]
    expl = model.explain(positives)
    segments = expl.segment()
    assert isinstance(segments, pd.Series) and segments.index.equals(positives.index)
    with_evidence = expl.segment(evidence=True)
    assert isinstance(with_evidence, pd.DataFrame)
    pd.testing.assert_series_equal(with_evidence["segment"], segments)
    _, truth = rs.datasets.load_sample(with_truth=True)  # type: ignore[misc]
    behaviour = truth["behaviour"].astype(str).reindex(positives.index.get_level_values("account_id")).to_numpy()
    meaning = {"forgetful": "forgetful", "hardship": "cannot_pay", "strategic": "will_not_pay"}
    expected = pd.Series(behaviour).map(meaning)
    known = expected.notna().to_numpy()
    assert known.sum() > 800
    agreement = float((segments.astype(str).to_numpy()[known] == expected[known].to_numpy()).mean())
    assert agreement >= 0.70, f"segment agrees with the generator on {agreement:.1%} of positives"
    # Each type's own segment is its most frequent one.
    table = pd.crosstab(behaviour[known], segments.to_numpy()[known])
    assert table.idxmax(axis=1).to_dict() == {
        "forgetful": "forgetful",
        "hardship": "cannot_pay",
        "strategic": "will_not_pay",
    }
