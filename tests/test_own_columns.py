"""Issue #15, item 1: the lender's own transaction fields become features, and the caller may declare directions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore import datasets
from riskscore.features import FeatureBuilder, describe
from riskscore.reasons import load_reason_catalogue

T = pd.Timestamp


@pytest.fixture
def own_transactions() -> rs.EventData:
    """One card, a purchase a day from 2024-01-01 with the lender's own columns: a fee, an entry mode, ids, text."""
    n = 120
    day = pd.date_range("2024-01-01 12:00", periods=n, freq="D")
    fee = np.arange(n) * 0.5
    fee[::10] = np.nan  # not recorded on every purchase
    transactions = pd.DataFrame(
        {
            "account_id": 20,
            "timestamp": day,
            "amount": 10.0 + np.arange(n),
            "category": "grocery",
            "channel": "pos",
            "fee": fee,
            "entry_mode": np.where(np.arange(n) % 2 == 0, "chip", "contactless"),
            "terminal_ref": 10**6 + np.arange(n),  # unique per row: an identifier
            "cardholder_name": "Jane Doe",  # a personal detail
            "gender": "f",  # a protected attribute
        }
    )
    accounts = pd.DataFrame(
        {"account_id": [20], "open_date": ["2023-12-01"], "credit_limit": [3000.0], "product": ["card"]}
    )
    return rs.EventData(accounts=accounts, transactions=transactions)


def test_the_lenders_own_transaction_fields_are_summarised_per_window(own_transactions: rs.EventData) -> None:
    builder = FeatureBuilder(windows=("30D", "90D")).fit(own_transactions)
    names = set(builder.catalogue_.index)
    assert {"txn_extra_fee_sum_30d", "txn_extra_fee_mean_90d", "txn_extra_entry_mode_count_chip_30d",
            "txn_extra_entry_mode_count_contactless_90d"} <= names  # fmt: skip
    for col in ("terminal_ref", "cardholder_name", "gender"):
        assert not any(col in n for n in names), col
        assert f"transactions.{col}" in builder.excluded_, col
    assert "every one of its" in builder.excluded_["transactions.terminal_ref"]
    assert builder.catalogue_.loc["txn_extra_fee_sum_30d", "group"] == "spending_extra"
    assert builder.catalogue_.loc["txn_extra_fee_sum_30d", "direction"] == 0
    # By hand at 2024-03-01 (a purchase every day at noon; none at or after the scoring date counts).
    as_of = T("2024-03-01")
    obs = pd.DataFrame({"account_id": [20], "as_of": [as_of]})
    row = builder.transform(own_transactions, obs).iloc[0]
    tx = own_transactions.transactions
    seen = tx[(tx["timestamp"] < as_of) & (tx["timestamp"] >= as_of - pd.Timedelta(days=30))]
    assert len(seen) == 30
    assert row["txn_extra_fee_sum_30d"] == pytest.approx(seen["fee"].sum())
    assert row["txn_extra_fee_mean_30d"] == pytest.approx(seen["fee"].mean())  # of the recorded fees
    assert row["txn_extra_entry_mode_count_chip_30d"] == (seen["entry_mode"] == "chip").sum()
    assert row["txn_extra_entry_mode_count_contactless_30d"] == (seen["entry_mode"] == "contactless").sum()
    # Point in time: a row dated at the scoring date is not seen, however large.
    later = tx.copy()
    later.loc[later["timestamp"] >= as_of, "fee"] = 1e9
    changed = rs.EventData(accounts=own_transactions.accounts, transactions=later)
    pd.testing.assert_series_equal(builder.transform(changed, obs).iloc[0], row)
    # describe() knows the names (a bundle read back without its builder).
    described = describe(["txn_extra_fee_sum_30d", "txn_extra_entry_mode_count_chip_30d"])
    assert described["group"].tolist() == ["spending_extra", "spending_extra"]
    # The fitted builder round-trips and rebuilds the same features.
    again = FeatureBuilder.from_dict(builder.to_dict())
    pd.testing.assert_frame_equal(again.transform(own_transactions, obs), builder.transform(own_transactions, obs))


def test_an_own_transaction_field_reads_as_a_reason(own_transactions: rs.EventData) -> None:
    builder = FeatureBuilder(windows=("30D",)).fit(own_transactions)
    catalogue = load_reason_catalogue()
    code = catalogue.reason_for("txn_extra_fee_sum_30d", builder.catalogue_.loc["txn_extra_fee_sum_30d", "group"])
    assert code == "SPEND_DETAIL"
    # An own column without a term in the catalogue is never named to a borrower by its raw name.
    assert catalogue.what("txn_extra_fee_sum_30d", "total fee of transactions in the last 30 days", "en") is None


def test_instalment_columns_of_the_lender_are_reported_not_used() -> None:
    events = datasets.load_sample()
    inst = events.installments.assign(payment_method=np.where(events.installments.index % 2 == 0, "bank", "cash"))
    rich = rs.EventData(**{**events.tables, "installments": inst}, protected=events.protected)
    builder = FeatureBuilder().fit(rich)
    assert "installments.payment_method" in builder.excluded_
    assert not any("payment_method" in n for n in builder.catalogue_.index)


def _with_fee(events: rs.EventData) -> rs.EventData:
    st_ = events.statements
    statements = st_.assign(fee=np.round(st_["balance"] * 0.02, 2), stage=np.where(st_["dpd"] > 0, "late", "ok"))
    return rs.EventData(**{**events.tables, "statements": statements}, protected=events.protected)


def test_declared_directions_reach_the_catalogue_and_the_model() -> None:
    events = _with_fee(datasets.load_sample())
    plain = FeatureBuilder().fit(events)
    fee_features = [n for n in plain.catalogue_.index if "extra_fee" in n]
    assert len(fee_features) > 10
    assert (plain.catalogue_.loc[fee_features, "direction"] == 0).all()
    declared = FeatureBuilder(directions={"statements.fee": 1}).fit(events)
    cat = declared.catalogue_
    for stat in ("last", "prev", "mean_90d", "min_90d", "max_365d"):
        assert cat.loc[f"stmt_extra_fee_{stat}", "direction"] == 1, stat
    assert cat.loc["stmt_extra_fee_change", "direction"] == 0  # a change has no declared direction
    # A bare column name applies to every table using it; -1 works the same way.
    assert FeatureBuilder(directions={"fee": -1}).fit(events).catalogue_.loc["stmt_extra_fee_last", "direction"] == -1
    # Persisted with the builder.
    again = FeatureBuilder.from_dict(declared.to_dict())
    assert again.catalogue_.loc["stmt_extra_fee_mean_90d", "direction"] == 1
    # The model's constraints start from the declared direction (kept or dropped on the training rows).
    obs = rs.observation_dates(events, start="2023-06-01", end="2024-03-01")
    X = declared.transform(events, obs)
    y = rs.make_labels(events, obs)
    known = y.notna().to_numpy()
    model = rs.RiskModel(n_estimators=40, random_state=0).fit(X[known], y[known].astype(int), builder=declared)
    names = list(model.feature_names_in_)
    candidates = {names[j] for j, d in enumerate(model.monotone_) if d != 0}
    dropped = set(model.manifest_["training"]["monotone"]["dropped"])
    assert "stmt_extra_fee_mean_90d" in candidates | dropped


@pytest.mark.parametrize(
    ("directions", "message"),
    [
        ({"statements.fee": 2}, r"'statements.fee': the direction must be -1, 0 or \+1; got 2"),
        ({"statements.stage": 1}, r"'statements.stage' is not a numeric own column the builder uses"),
        ({"statements.nothing": 1}, r"'statements.nothing' is not a numeric own column .*usable: .*statements.fee"),
        ({"transactions.fee": 1}, r"'transactions.fee' is not a numeric own column"),
        ({"balance": 1}, r"'balance' is not a numeric own column"),  # a contract column has its own direction
    ],
)
def test_a_direction_for_no_usable_column_is_refused(directions: dict[str, int], message: str) -> None:
    events = _with_fee(datasets.load_sample())
    with pytest.raises(ValueError, match=message):
        FeatureBuilder(directions=directions).fit(events)
