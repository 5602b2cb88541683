"""Monitoring: PSI against hand-computed values, stability tables, and collection KPIs on a hand-built panel."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore import monitor


def test_psi_matches_a_hand_computed_value() -> None:
    # Expected [1, 2, 3, 4]: one inner quantile edge at 2.5. Counts: expected (2, 2), actual (3, 1).
    # Smoothed shares (0.5 added per bin): expected (0.5, 0.5), actual (3.5/5, 1.5/5) = (0.7, 0.3).
    hand = (0.7 - 0.5) * math.log(0.7 / 0.5) + (0.3 - 0.5) * math.log(0.3 / 0.5)
    assert monitor.psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(hand, abs=1e-12)
    table = monitor.psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2, return_table=True)
    assert list(table["expected"]) == [2, 2] and list(table["actual"]) == [3, 1]
    assert table["psi"].sum() == pytest.approx(hand, abs=1e-12)
    assert monitor.psi([1, 2, 3, 4], [2.5, 2.5, 4, 4], bins=2) == pytest.approx(0.0)  # 2.5 falls in the lower bin


def test_psi_stays_finite_with_empty_bins_and_counts_missing_values() -> None:
    value = monitor.psi(np.arange(100.0), np.zeros(50), bins=10)  # nine actual bins empty
    assert math.isfinite(value) and value > 1.0
    assert math.isfinite(monitor.psi(np.arange(100.0), np.arange(100.0) + 1000, bins=10))
    table = monitor.psi([1.0, 2.0, np.nan, 4.0], [np.nan, np.nan, 1.0, 4.0], bins=2, return_table=True)
    assert (
        table.index[-1] == "missing" and table.loc["missing", "expected"] == 1 and table.loc["missing", "actual"] == 2
    )
    labels = monitor.psi(["a", "a", "b"], ["b", "b", "c"], return_table=True)
    assert list(labels.index) == ["a", "b", "c"] and list(labels["expected"]) == [2, 1, 0]
    assert monitor.psi(np.arange(1000.0), np.arange(1000.0)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="smoothing must be > 0"):
        monitor.psi([1, 2], [1, 2], smoothing=0)


def test_stability_per_feature_and_reason_frequencies(sample_model: tuple[rs.RiskModel, pd.DataFrame]) -> None:
    model, X = sample_model
    as_of = X.index.get_level_values("as_of")
    early, late = X[as_of < "2023-07-01"], X[as_of >= "2024-07-01"]
    table = monitor.stability(early, late)
    assert list(table.columns) == ["psi", "expected_missing", "actual_missing", "level"]
    assert len(table) == X.shape[1] and table["psi"].is_monotonic_decreasing and np.isfinite(table["psi"]).all()
    assert monitor.stability(early, early)["psi"].abs().max() < 1e-12
    # The book ages by more than a year between the two periods: tenure must drift.
    assert table.loc["acct_tenure_days", "psi"] > 0.10 and table.loc["acct_tenure_days", "level"] != "stable"
    reasons_early = model.explain(early.head(800)).reason_codes()
    reasons_late = model.explain(late.head(800)).reason_codes()
    moved = monitor.reason_stability(reasons_early, reasons_late)
    assert moved.index.name == "reason_code" and moved.attrs["psi"] == pytest.approx(moved["psi"].sum())
    assert monitor.reason_stability(reasons_early, reasons_early).attrs["psi"] == pytest.approx(0.0)


@pytest.fixture
def panel() -> rs.EventData:
    """Account 1 slides from current to 1-29 to 30-59 and cures; account 2 stays current."""
    accounts = pd.DataFrame({"account_id": [1, 2], "open_date": ["2023-06-01"] * 2, "credit_limit": [1000.0] * 2})
    dates = ["2024-01-15", "2024-02-15", "2024-03-15", "2024-04-15"]
    statements = pd.DataFrame(
        {
            "account_id": [1] * 4 + [2] * 4,
            "statement_date": dates * 2,
            "balance": 100.0,
            "payment": 10.0,
            "dpd": [0, 10, 40, 0] + [0] * 4,
        }
    )
    contacts = pd.DataFrame(
        {
            "account_id": [1, 1, 2, 1],
            "timestamp": ["2024-03-02 10:00", "2024-03-05 11:00", "2024-03-09 12:00", "2024-04-02 10:00"],
            "channel": ["call", "call", "sms", "call"],
            "outcome": ["attempt", "connected", "opt_out", "attempt"],
            "direction": ["outbound", "outbound", "inbound", "outbound"],
        }
    )
    return rs.EventData(accounts=accounts, statements=statements, contacts=contacts)


def test_roll_rates_and_cure_rates_on_a_hand_built_panel(panel: rs.EventData) -> None:
    status = monitor.dpd_buckets(panel, ["2024-03-01"])
    assert status.set_index("account_id")["bucket"].to_dict() == {1: "1-29", 2: "current"}
    rates = monitor.roll_rates(panel, "2024-02-01", "2024-05-01")
    counts = rates.attrs["counts"]
    # Feb->Mar, Mar->Apr, Apr->May for two accounts: current->current 3, current->1-29, 1-29->30-59, 30-59->current.
    assert counts.loc["current", "current"] == 3 and counts.loc["current", "1-29"] == 1
    assert counts.loc["1-29", "30-59"] == 1 and counts.loc["30-59", "current"] == 1
    assert rates.loc["current", "current"] == pytest.approx(0.75) and rates.loc["30-59", "current"] == 1.0
    cure = monitor.cure_rate(panel, "2024-03-01", "2024-04-01", months=1)
    assert cure["30-59"] == 1.0 and cure["1-29"] == 0.0 and cure.name == "cure_rate_1m"


def test_contact_kpis_on_a_hand_built_panel(panel: rs.EventData) -> None:
    kpis = monitor.contact_kpis(panel, "2024-03-01", "2024-04-01")
    march = kpis.loc["2024-03-01"]
    assert march["accounts_open"] == 2 and march["accounts_contacted"] == 1 and march["attempts"] == 2
    assert march["connected"] == 1 and march["opt_outs"] == 1
    assert march["contact_rate"] == 0.5 and march["connect_rate"] == 0.5 and march["opt_out_rate"] == 1.0
    april = kpis.loc["2024-04-01"]
    assert april["attempts"] == 1 and april["connected"] == 0 and april["opt_outs"] == 0
