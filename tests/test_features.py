"""FeatureBuilder: hand-computed values per family, the point-in-time rule, the estimator API."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

import riskscore as rs
from riskscore import datasets
from riskscore.features import FAMILIES, FeatureBuilder

T = pd.Timestamp


def one(events: rs.EventData, account_id: object, as_of: str, **kw: object) -> pd.Series:
    """The feature row of one observation."""
    obs = pd.DataFrame({"account_id": [account_id], "as_of": [T(as_of)]})
    X = FeatureBuilder(**kw).fit(events).transform(events, obs)  # type: ignore[arg-type]
    return X.iloc[0]


def check(row: pd.Series, expected: dict[str, float]) -> None:
    for name, value in expected.items():
        got = row[name]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            assert pd.isna(got), f"{name}: expected empty, got {got}"
        else:
            assert got == pytest.approx(value, rel=1e-12, abs=1e-12), f"{name}: expected {value}, got {got}"


# --------------------------------------------------------------------------- repayment


@pytest.fixture
def statements_events() -> rs.EventData:
    accounts = pd.DataFrame(
        {
            "account_id": [1, 2, 3],
            "open_date": ["2023-12-01", "2023-09-01", "2023-09-01"],
            "credit_limit": [1000.0, 2000.0, 5000.0],
            "product": ["card", "card", "loan"],
        }
    )
    statements = pd.DataFrame(
        {
            "account_id": [1, 1, 1, 1] + [2] * 6,
            "statement_date": ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
            + ["2023-10-01", "2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01", "2024-03-01"],
            "balance": [500.0, 800.0, 1100.0, 0.0] + [100.0] * 6,
            "payment": [0.0, 100.0, 10.0, 1100.0] + [0.0] * 6,
            "dpd": [0, 0, 5, 0] + [0, 5, 35, 65, 0, 5],
            "min_due": [25.0, 40.0, 55.0, 0.0] + [25.0] * 6,
        }
    )
    installments = pd.DataFrame(
        {
            "account_id": [3],
            "due_date": ["2023-10-01"],
            "amount_due": [10.0],
            "paid_date": ["2023-10-01"],
            "amount_paid": [10.0],
        }
    )
    return rs.EventData(accounts=accounts, statements=statements, installments=installments)


def test_repayment_by_hand(statements_events: rs.EventData) -> None:
    row = one(statements_events, 1, "2024-04-01", windows=("31D", "91D"), families=["repayment"])
    # The statement dated exactly at as_of (2024-04-01) is invisible.
    slope = 18.0 / (1800 + 2 / 3) * 30  # least squares on days 0, 31, 60 and utilisation .5, .8, 1.1
    check(
        row,
        {
            "stmt_history_count": 3,
            "stmt_days_since_last": 31,
            "stmt_dpd_last": 5,
            "stmt_cycles_since_late": 0,
            "stmt_util_last": 1.1,
            "stmt_pay_ratio_last": 10 / 800,
            "stmt_balance_last": 1100,
            # 31 days: [2024-03-01, 2024-04-01) holds the March statement only.
            "stmt_count_31d": 1,
            "stmt_dpd_max_31d": 5,
            "stmt_late_count_31d": 1,
            "stmt_late_streak_max_31d": 1,
            "stmt_util_mean_31d": 1.1,
            "stmt_overlimit_count_31d": 1,
            "stmt_pay_ratio_min_31d": 10 / 800,
            "stmt_full_pay_count_31d": 0,
            "stmt_min_only_count_31d": 0,
            "stmt_below_min_count_31d": 1,
            # 91 days: [2024-01-01, 2024-04-01), the window start is included.
            "stmt_count_91d": 3,
            "stmt_util_mean_91d": 0.8,
            "stmt_util_max_91d": 1.1,
            "stmt_util_slope_91d": slope,
            "stmt_pay_ratio_mean_91d": (100 / 500 + 10 / 800) / 2,
            "stmt_pay_ratio_min_91d": 10 / 800,
            "stmt_balance_growth_91d": (1100 - 500) / 1000,
            "stmt_below_min_count_91d": 1,
        },
    )
    assert "stmt_util_slope_31d" not in row.index  # a 31-day window holds no trend


def test_late_streaks_are_cut_at_the_window_start(statements_events: rs.EventData) -> None:
    # dpd by month: Oct 0, Nov 5, Dec 35, Jan 65, Feb 0, Mar 5.
    row = one(statements_events, 2, "2024-02-01", windows=("31D", "92D"), families=["repayment"])
    check(row, {"stmt_late_streak_max_31d": 1, "stmt_late_streak_max_92d": 3, "stmt_late_count_92d": 3})
    row = one(statements_events, 2, "2024-02-01", windows=("62D",), families=["repayment"])
    check(row, {"stmt_late_streak_max_62d": 2, "stmt_dpd_max_62d": 65, "stmt_cycles_since_late": 0})
    row = one(statements_events, 2, "2024-04-01", windows=("91D",), families=["repayment"])
    check(row, {"stmt_late_streak_max_91d": 1, "stmt_late_count_91d": 2, "stmt_cycles_since_late": 0})


def test_no_history_is_empty_with_a_zero_count(statements_events: rs.EventData) -> None:
    row = one(statements_events, 3, "2024-04-01", windows=("31D",), families=["repayment"])
    assert row["stmt_history_count"] == 0
    assert row.drop("stmt_history_count").isna().all()


# --------------------------------------------------------------------------- instalment


@pytest.fixture
def loan_events() -> rs.EventData:
    accounts = pd.DataFrame(
        {"account_id": [10], "open_date": ["2023-10-01"], "credit_limit": [600.0], "product": ["loan"]}
    )
    installments = pd.DataFrame(
        {
            "account_id": [10] * 7,
            "instalment_no": [1, 2, 3, 3, 4, 5, 6],
            "due_date": [
                "2023-11-01",
                "2023-12-01",
                "2024-01-01",
                "2024-01-01",
                "2024-02-01",
                "2024-03-01",
                "2024-04-01",
            ],
            "amount_due": [100.0] * 7,
            "paid_date": ["2023-10-30", "2023-12-11", "2024-01-01", "2024-04-10", "2024-02-01", "2024-04-01", None],
            "amount_paid": [100.0, 100.0, 60.0, 40.0, 100.0, 100.0, 0.0],
        }
    )
    return rs.EventData(accounts=accounts, installments=installments)


def test_instalment_by_hand(loan_events: rs.EventData) -> None:
    row = one(loan_events, 10, "2024-04-01", windows=("31D", "91D"), families=["instalment"])
    # #3 is part-paid before as_of (60 of 100), #5 is paid exactly at as_of: both unpaid at as_of.
    check(
        row,
        {
            "inst_history_count": 5,
            "inst_dpd_now": 91,
            "inst_outstanding_due": 140,
            "inst_days_since_missed": 31,
            "inst_ontime_streak": 0,
            "inst_days_since_last_payment": 60,
            "inst_amount_due_last": 100,
            "inst_due_count_31d": 1,
            "inst_unpaid_count_31d": 1,
            "inst_days_late_mean_31d": 31,
            "inst_paid_share_31d": 0,
            "inst_due_count_91d": 3,
            "inst_ontime_count_91d": 1,
            "inst_late_count_91d": 0,
            "inst_unpaid_count_91d": 2,
            "inst_days_late_mean_91d": (91 + 0 + 31) / 3,
            "inst_days_late_max_91d": 91,
            "inst_paid_share_91d": 160 / 300,
        },
    )
    row = one(loan_events, 10, "2024-05-01", windows=("31D", "91D"), families=["instalment"])
    check(
        row,
        {
            "inst_history_count": 6,
            "inst_dpd_now": 30,
            "inst_outstanding_due": 100,
            "inst_days_since_missed": 30,
            "inst_days_since_last_payment": 21,
            "inst_due_count_31d": 1,
            "inst_unpaid_count_31d": 1,
            "inst_days_late_max_31d": 30,
            "inst_due_count_91d": 3,
            "inst_ontime_count_91d": 1,
            "inst_late_count_91d": 1,
            "inst_unpaid_count_91d": 1,
            "inst_days_late_mean_91d": (0 + 31 + 30) / 3,
            "inst_days_late_max_91d": 31,
            "inst_paid_share_91d": 200 / 300,
        },
    )


def test_ontime_streak_counts_back_to_the_last_miss(loan_events: rs.EventData) -> None:
    row = one(loan_events, 10, "2024-03-01", windows=("31D",), families=["instalment"])
    # Due before 2024-03-01: #1 on time, #2 late, #3 open, #4 on time: one on time since the last miss.
    check(row, {"inst_ontime_streak": 1, "inst_days_since_missed": 60, "inst_dpd_now": 60})


# --------------------------------------------------------------------------- spending


@pytest.fixture
def spending_events() -> rs.EventData:
    accounts = pd.DataFrame(
        {"account_id": [20], "open_date": ["2023-12-01"], "credit_limit": [3000.0], "product": ["card"]}
    )
    transactions = pd.DataFrame(
        {
            "account_id": [20] * 7,
            "timestamp": [
                "2024-01-05 10:00:00",
                "2024-01-20 12:00:00",
                "2024-02-10 09:00:00",
                "2024-02-15 18:00:00",
                "2024-02-29 23:59:59",
                "2024-03-01 00:00:00",
                "2024-03-05 08:00:00",
            ],
            "amount": [50.0, 200.0, 100.0, 30.0, 20.0, 999.0, 40.0],
            "category": ["grocery", "travel", "cash", "dining", "grocery", "grocery", "fuel"],
            "channel": ["pos", "online", "atm", "pos", "pos", "pos", "pos"],
        }
    )
    return rs.EventData(accounts=accounts, transactions=transactions)


def test_spending_by_hand(spending_events: rs.EventData) -> None:
    row = one(spending_events, 20, "2024-03-01", windows=("30D", "90D"), families=["spending"])
    check(
        row,
        {
            "txn_history_count": 5,
            "txn_days_since_last": 1 / 86_400,
            "txn_amount_mom_change": (150 - 250) / 250,
            "txn_count_30d": 3,
            "txn_amount_sum_30d": 150,
            "txn_amount_mean_30d": 50,
            "txn_amount_max_30d": 100,
            "txn_amount_std_30d": np.sqrt(3800 / 2),
            "txn_atm_share_30d": 100 / 150,
            "txn_cash_advance_share_30d": 0,
            "txn_online_share_30d": 0,
            "txn_essential_share_30d": 20 / 150,
            "txn_category_distinct_30d": 3,
            "txn_count_90d": 5,
            "txn_amount_sum_90d": 400,
            "txn_amount_std_90d": np.sqrt(21800 / 4),
            "txn_online_share_90d": 0.5,
            "txn_essential_share_90d": 70 / 400,
            "txn_category_distinct_90d": 4,
            "txn_amount_velocity_30d_90d": (150 / 30) / (400 / 90),
        },
    )


def test_essential_categories_are_configurable(spending_events: rs.EventData) -> None:
    row = one(
        spending_events, 20, "2024-03-01", windows=("30D",), families=["spending"], essential_categories=["Dining"]
    )
    assert row["txn_essential_share_30d"] == pytest.approx(30 / 150)


# --------------------------------------------------------------------------- account


def test_account_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = pd.DataFrame(
        {
            "account_id": [30, 31],
            "open_date": ["2023-01-01", "2023-06-01"],
            "credit_limit": [2000.0, 900.0],
            "product": ["card", "loan"],
            "timezone": ["Europe/London", None],
            "stated_income": [4000.0, 2500.0],
            "region": ["north", "south"],
            "Gender": ["f", "m"],
            "age": [30, 40],
        }
    )
    statements = pd.DataFrame(
        {
            "account_id": [30, 30, 30],
            "statement_date": ["2023-11-01", "2023-12-01", "2024-01-01"],
            "balance": [10.0, 10.0, 10.0],
            "payment": [0.0, 0.0, 0.0],
            "dpd": [0, 0, 0],
            "credit_limit": [1000.0, 1500.0, 9999.0],
        }
    )
    events = rs.EventData(accounts=accounts, statements=statements)
    default = FeatureBuilder(windows=("45D",), families=["account"]).fit(events)
    assert default.excluded_["region"] == "fewer than two values held by at least 30 accounts each"
    import riskscore.features.account as account_family

    monkeypatch.setattr(account_family, "MIN_LEVEL_ROWS", 1)  # two accounts: let each level count
    builder = FeatureBuilder(windows=("45D",), families=["account"]).fit(events)
    assert builder.excluded_ == {"Gender": "protected attribute", "age": "protected attribute"}
    obs = pd.DataFrame({"account_id": [30, 31], "as_of": [T("2024-01-01"), T("2024-01-01")]})
    X = builder.transform(events, obs)
    check(
        X.iloc[0],
        {
            "acct_tenure_days": 365,
            "acct_credit_limit": 1500,  # the limit on the latest statement before as_of
            "acct_limit_change_45d": 0,  # only the December statement is in the window
            "acct_stated_income": 4000,
        },
    )
    check(X.iloc[1], {"acct_tenure_days": 214, "acct_credit_limit": 900, "acct_limit_change_45d": None})
    assert X["acct_product"].tolist() == ["card", "loan"]
    assert isinstance(X["acct_product"].dtype, pd.CategoricalDtype)
    assert X["acct_region"].tolist() == ["north", "south"]
    assert not {"acct_timezone", "acct_gender", "acct_age"} & set(X.columns)
    row = one(events, 30, "2024-01-01", windows=("62D",), families=["account"])
    assert row["acct_limit_change_62d"] == pytest.approx(0.5)


def test_protected_attributes_can_be_allowed_or_redefined() -> None:
    events, _ = datasets.make_portfolio(n_accounts=30, months=6, seed=2)
    assert "age" in FeatureBuilder(families=["account"]).fit(events).excluded_
    allowed = FeatureBuilder(families=["account"], allow_protected=["age"]).fit(events)
    assert "acct_age" in allowed.get_feature_names_out()
    custom = FeatureBuilder(families=["account"], protected=["stated_income"], allow_protected=["age"]).fit(events)
    assert "acct_stated_income" not in custom.get_feature_names_out()


def test_taiwan_protected_columns_are_never_features(taiwan_csv: Path) -> None:
    events, _ = datasets.load_taiwan(taiwan_csv)
    builder = FeatureBuilder().fit(events)
    assert set(builder.excluded_) == {"sex", "education", "marriage", "age"}
    names = set(builder.get_feature_names_out())
    assert not {"acct_sex", "acct_education", "acct_marriage", "acct_age"} & names
    obs = pd.DataFrame({"account_id": events.accounts["account_id"][:100], "as_of": T("2005-10-01")})
    X = builder.transform(events, obs)
    assert (X["stmt_history_count"] == 6).all()


# --------------------------------------------------------------------------- estimator contract


def test_output_order_index_and_catalogue() -> None:
    events = datasets.load_sample()
    assert isinstance(events, rs.EventData)
    obs = rs.observation_dates(events, start="2024-03-01", end="2024-05-01").sample(frac=1.0, random_state=0)
    builder = FeatureBuilder()
    X = builder.fit_transform(events, obs)
    assert X.index.names == ["account_id", "as_of"]
    assert list(X.index.get_level_values("account_id")) == list(obs["account_id"])
    assert list(X.index.get_level_values("as_of")) == list(obs["as_of"])
    names = builder.get_feature_names_out()
    assert list(X.columns) == list(names)
    cat = builder.catalogue_
    assert list(cat.index) == list(names)
    assert set(cat["family"]) == set(FAMILIES)
    assert set(cat["direction"]) <= {-1, 0, 1}
    assert cat["description"].str.len().min() > 10 and cat["group"].notna().all()
    for name in names:
        assert name.split("_")[0] in {"stmt", "inst", "txn", "acct", "cust"}
        window = cat.loc[name, "window"]
        assert window is None or pd.isna(window) or window in name
    assert len(names) > 120
    # Same rows whatever the order the observations come in.
    again = builder.transform(events, obs.sort_values(["as_of", "account_id"]))
    pd.testing.assert_frame_equal(again.loc[X.index], X)


def test_sklearn_contract() -> None:
    builder = FeatureBuilder(windows=("90D",), families=["spending"])
    assert builder.get_params()["windows"] == ("90D",)
    twin = clone(builder)
    assert twin.get_params() == builder.get_params()
    assert not builder.__sklearn_is_fitted__()
    events, _ = datasets.make_portfolio(n_accounts=20, months=6, seed=1)
    obs = pd.DataFrame({"account_id": events.accounts["account_id"], "as_of": T("2023-05-01")})
    with pytest.raises(rs.NotFittedError, match="not fitted yet"):
        builder.transform(events, obs)
    with pytest.raises(rs.NotFittedError):
        builder.get_feature_names_out()
    builder.fit(events)
    assert builder.__sklearn_is_fitted__()
    assert builder.families_ == ("spending",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"windows": ("90",)}, r"windows must be a positive whole number of days such as '90D'; got '90'"),
        ({"windows": ("12h",)}, r"whole number of days"),
        ({"windows": "90D"}, r"windows must be a sequence"),
        (
            {"families": ["spend"]},
            r"families must be among \['repayment', 'instalment', 'spending', 'account', 'customer'\]",
        ),
    ],
)
def test_invalid_parameters(kwargs: dict[str, object], message: str) -> None:
    events, _ = datasets.make_portfolio(n_accounts=10, months=3, seed=1)
    with pytest.raises(ValueError, match=message):
        FeatureBuilder(**kwargs).fit(events)  # type: ignore[arg-type]


def test_missing_tables_and_bad_observations(spending_events: rs.EventData) -> None:
    with pytest.raises(rs.DataValidationError, match=r"statements: the repayment family needs this table"):
        FeatureBuilder(families=["repayment"]).fit(spending_events)
    builder = FeatureBuilder(families=["spending"]).fit(spending_events)
    bad = pd.DataFrame({"account_id": [20, 77, 78], "as_of": ["2024-03-01", "2024-03-01", "not a date"]})
    with pytest.raises(rs.DataValidationError) as info:
        builder.transform(spending_events, bad)
    text = str(info.value)
    assert "observations.as_of: must be a date (ISO 8601 or datetime) [1 row; account_id 78]" in text
    assert "observations.account_id: every account_id must exist in accounts [2 rows; account_id 77, 78]" in text
    with pytest.raises(rs.DataValidationError, match=r"observations\.as_of: required column is missing"):
        builder.transform(spending_events, pd.DataFrame({"account_id": [20]}))
    fewer = rs.EventData(
        accounts=spending_events.accounts,
        statements=None,
        installments=pd.DataFrame(
            {
                "account_id": [20],
                "due_date": ["2024-01-01"],
                "amount_due": [1.0],
                "paid_date": [None],
                "amount_paid": [0.0],
            }
        ),
    )
    with pytest.raises(
        rs.DataValidationError, match=r"transactions: the fitted builder's spending family needs this table"
    ):
        builder.transform(fewer, pd.DataFrame({"account_id": [20], "as_of": ["2024-03-01"]}))


def test_unseen_categories_warn() -> None:
    events, _ = datasets.make_portfolio(n_accounts=20, months=4, seed=3)
    builder = FeatureBuilder(families=["account"]).fit(events)
    changed = rs.EventData(**{**events.tables, "accounts": events.accounts.assign(product="mortgage")})
    obs = pd.DataFrame({"account_id": events.accounts["account_id"], "as_of": T("2023-04-01")})
    with pytest.warns(UserWarning, match=r"accounts\.product: 20 accounts have categories not seen at fit"):
        X = builder.transform(changed, obs)
    assert X["acct_product"].isna().all()


# --------------------------------------------------------------------------- no leakage


def _random_time(draw: st.DrawFn, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.Timestamp:
    seconds = draw(st.integers(0, int((hi - lo).total_seconds())))
    return lo + pd.Timedelta(seconds=seconds)


@st.composite
def future_edit(draw: st.DrawFn, family: str) -> tuple[rs.EventData, rs.EventData, pd.DataFrame]:
    """A portfolio, the same portfolio with events at or after as_of edited, and one observation."""
    seed = draw(st.integers(0, 5000))
    events, _ = datasets.make_portfolio(n_accounts=12, months=8, seed=seed)
    # The lender's own statement fields (used by default): a number and a two-level code.
    own = events.statements.assign(
        fee=events.statements["balance"] * 0.01,
        stage=np.where(events.statements["statement_date"].dt.month % 2 == 0, "even", "odd"),
    )
    events = rs.EventData(**{**events.tables, "statements": own}, protected=events.protected)
    table_name = FAMILIES[family].TABLE if family not in ("account", "customer") else "statements"
    table = getattr(events, table_name)
    assume(table is not None and len(table) > 0)  # a small portfolio may hold no loan
    time_col = {"statements": "statement_date", "installments": "due_date", "transactions": "timestamp"}[table_name]
    account = draw(st.sampled_from(sorted(set(table["account_id"]))))
    own = table.loc[table["account_id"] == account, time_col]
    if family == "customer":
        # An account whose customer holds another one with statements: as_of among the other's events.
        customer = events.accounts.set_index("account_id")["customer_id"]
        shared = customer[customer.duplicated(keep=False)]
        with_other = sorted(
            a for a in shared.index if (shared == shared[a]).sum() > 1 and a in set(table["account_id"])
        )
        assume(len(with_other) > 0)
        other = draw(st.sampled_from(with_other))
        siblings = shared[(shared == shared[other]) & (shared.index != other)].index.tolist()
        account = draw(st.sampled_from(sorted(siblings)))
        own = table.loc[table["account_id"] == other, time_col]
    # as_of: any second in the account's life, or exactly one of its event times.
    as_of = draw(
        st.one_of(
            st.sampled_from(sorted(own.dt.floor("s"))),
            st.builds(lambda t: t.floor("D"), st.sampled_from(sorted(own))),
        )
    )
    if draw(st.booleans()):
        as_of = _random_time(draw, own.min() - pd.Timedelta(days=40), own.max() + pd.Timedelta(days=40))
    as_of = max(
        as_of.floor("s"), events.accounts.set_index("account_id").loc[account, "open_date"] + pd.Timedelta(days=1)
    )
    tables = {k: v.copy() for k, v in events.tables.items()}
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    for name in ("statements", "installments", "transactions"):
        df = tables[name]
        col = {"statements": "statement_date", "installments": "due_date", "transactions": "timestamp"}[name]
        future = df[col] >= as_of
        if name == "installments":
            # Payments of earlier instalments made at or after as_of are future events too.
            late_pay = ~future & (df["paid_date"] >= as_of)
            kind = draw(st.sampled_from(["unpay", "move", "amount"]))
            if kind == "unpay":
                df.loc[late_pay, ["paid_date", "amount_paid"]] = [pd.NaT, 0.0]
            elif kind == "move":
                df.loc[late_pay, "paid_date"] = df.loc[late_pay, "paid_date"] + pd.Timedelta(days=17)
            else:
                df.loc[late_pay, "amount_paid"] = df.loc[late_pay, "amount_paid"] * 0.5
            extra = df[~future].head(3).assign(paid_date=as_of + pd.Timedelta(hours=1), amount_paid=5.0)
            df = pd.concat([df, extra], ignore_index=True)
            # A row due later but paid before as_of holds a past event (the payment): keep it.
            future = (df[col] >= as_of) & ~(df["paid_date"] < as_of)
        drop = future & (rng.random(len(df)) < 0.5)
        df = df[~drop].copy()
        still = df[col] >= as_of
        if name == "statements":
            df.loc[still, "stage"] = np.where(df.loc[still, "stage"] == "even", "odd", "even")
        for value_col in ("balance", "payment", "dpd", "amount", "amount_due", "fee"):
            if value_col in df.columns and not (name == "installments" and value_col != "amount_due"):
                df.loc[still, value_col] = df.loc[still, value_col] * 3 + (1 if value_col != "dpd" else 30)
        if name == "transactions":
            new = df[df["account_id"] == account].head(2).assign(timestamp=as_of, amount=12345.0)
            df = pd.concat([df, new], ignore_index=True)
        if name == "statements" and len(df):
            new = df.head(1).assign(statement_date=as_of + pd.Timedelta(days=400), dpd=90)
            df = pd.concat([df, new], ignore_index=True)
        tables[name] = df
    edited = rs.EventData(**tables, protected=events.protected)
    obs = pd.DataFrame({"account_id": [account], "as_of": [as_of]})
    return events, edited, obs


@pytest.mark.parametrize("family", list(FAMILIES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_no_feature_sees_events_at_or_after_as_of(family: str, data: st.DataObject) -> None:
    events, edited, obs = data.draw(future_edit(family))
    builder = FeatureBuilder(families=[family]).fit(events)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        before = builder.transform(events, obs)
        after = builder.transform(edited, obs)
    pd.testing.assert_frame_equal(before, after, check_exact=True)


# --------------------------------------------------------------------------- engine


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), max_size=12),
    ranges=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 5)), max_size=8),
)
def test_range_aggregates_match_a_direct_loop(values: list[float], ranges: list[tuple[int, int]]) -> None:
    from riskscore.features import engine as E

    x = np.array(values, dtype=np.float64)
    n = len(x)
    lo = np.sort(np.array([min(a, n) for a, _ in ranges], dtype=np.int64))
    hi = np.minimum(lo + np.array([b for _, b in ranges], dtype=np.int64), n)

    def nan_or(fn: object, part: np.ndarray) -> float:
        return float("nan") if len(part) == 0 or np.isnan(part).all() else fn(part)  # type: ignore[operator]

    expected_sum = [x[a:b].sum() for a, b in zip(lo, hi, strict=True)]
    expected_max = [nan_or(np.nanmax, x[a:b]) for a, b in zip(lo, hi, strict=True)]
    expected_min = [nan_or(np.nanmin, x[a:b]) for a, b in zip(lo, hi, strict=True)]
    # Sums may differ from numpy's pairwise summation in the last bits; maxima and minima may not.
    np.testing.assert_allclose(E.range_sum(x, lo, hi), np.array(expected_sum, dtype=np.float64), rtol=1e-12, atol=1e-6)
    np.testing.assert_array_equal(E.range_max(x, lo, hi), np.array(expected_max, dtype=np.float64))
    np.testing.assert_array_equal(E.range_min(x, lo, hi), np.array(expected_min, dtype=np.float64))
    # A range's result depends on its rows only: rows appended after it change nothing, to the bit.
    longer = np.append(x, [3.25, -7.5])
    for fn in (E.range_sum, E.range_max, E.range_min):
        np.testing.assert_array_equal(fn(x, lo, hi), fn(longer, lo, hi))
    counts = E.Counter(~np.isnan(x))(lo, hi)
    np.testing.assert_array_equal(counts, [float((~np.isnan(x[a:b])).sum()) for a, b in zip(lo, hi, strict=True)])


def test_threads_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    from riskscore.features import builder as builder_module

    monkeypatch.setattr(builder_module, "_PARALLEL_MIN_ROWS", 1_000)  # split even this small portfolio
    events, _ = datasets.make_portfolio(n_accounts=300, months=12, seed=4)
    obs = rs.observation_dates(events, start="2023-06-01", end="2023-12-01", eligible="all")
    serial = FeatureBuilder(n_jobs=1).fit_transform(events, obs)
    parallel = FeatureBuilder(n_jobs=2).fit_transform(events, obs)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    ranges = FeatureBuilder._account_ranges(events, np.arange(len(events.accounts)))
    assert len(ranges) > 1 and ranges[0][0] == 0 and ranges[-1][1] == len(events.accounts)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    with pytest.raises(ValueError, match="n_jobs must not be 0"):
        FeatureBuilder(n_jobs=0).fit(events).transform(events, obs.head(5))


def test_an_accounts_features_do_not_depend_on_the_other_accounts() -> None:
    """Bit for bit: a chunk of accounts gets the features it gets in the whole book (batch scoring relies on it)."""
    events = rs.datasets.load_sample()
    builder = rs.FeatureBuilder().fit(events)
    obs = rs.observation_dates(events, start="2024-03-01", end="2024-09-01")
    whole = builder.transform(events, obs)
    ids = events.accounts["account_id"].to_numpy()
    customer = events.customers
    for part in (ids[:137], ids[900:1333], ids[-50:]):
        # Whole customers: a customer's features read its other accounts (batch chunks keep them together).
        keep = set(customer.index[customer.isin(set(customer.loc[part]))].tolist())
        tables = {n: df[df["account_id"].isin(keep)] for n, df in events.tables.items()}
        sub = rs.EventData(**tables, protected=events.protected)
        chunk = builder.transform(sub, obs[obs["account_id"].isin(keep)])
        pd.testing.assert_frame_equal(chunk, whole.loc[chunk.index], check_exact=True)


def test_the_lenders_own_statement_fields_are_used_by_default() -> None:
    """Issue #15, item 1: every usable extra statement column becomes features; identifiers and text never do."""
    events = datasets.load_sample()
    st_ = events.statements
    rng = np.random.default_rng(0)
    own = st_.assign(
        fee=np.round(st_["balance"] * 0.02, 2),
        stage=np.where(st_["dpd"] > 0, "late", np.where(st_["payment"] > 0, "paid", "no-payment")),
        statement_ref=rng.permutation(len(st_)) + 10**8,  # unique per statement: an identifier
        agent_note=[f"called {i}" for i in range(len(st_))],  # free text
        age=35,  # a protected attribute in statements too
    )
    rich = rs.EventData(**{**events.tables, "statements": own}, protected=events.protected)
    builder = FeatureBuilder().fit(rich)
    names = list(builder.catalogue_.index)
    assert {"stmt_extra_fee_last", "stmt_extra_fee_change", "stmt_extra_fee_mean_90d", "stmt_extra_stage_last",
            "stmt_extra_stage_count_late_90d", "stmt_extra_stage_count_nopayment_365d"} <= set(names)  # fmt: skip
    for col in ("statement_ref", "agent_note", "age"):
        assert not any(n.startswith(f"stmt_extra_{col}_") for n in names), col
        assert f"statements.{col}" in builder.excluded_, col
    assert "every one of its" in builder.excluded_["statements.statement_ref"]
    assert builder.catalogue_.loc["stmt_extra_stage_count_late_90d", "direction"] == 0
    assert builder.catalogue_.loc["stmt_extra_fee_mean_90d", "group"] == "statement_extra"
    account = st_.loc[st_["dpd"] > 0, "account_id"].iloc[0]
    rows = own[(own["account_id"] == account) & (own["statement_date"] < "2024-07-01")].sort_values("statement_date")
    obs = pd.DataFrame({"account_id": [account], "as_of": [T("2024-07-01")]})
    row = builder.transform(rich, obs).iloc[0]
    check(row, {"stmt_extra_fee_last": rows["fee"].iloc[-1], "stmt_extra_fee_prev": rows["fee"].iloc[-2],
                "stmt_extra_fee_change": rows["fee"].iloc[-1] - rows["fee"].iloc[-2]})  # fmt: skip
    recent = rows[rows["statement_date"] >= T("2024-07-01") - pd.Timedelta(days=90)]
    assert row["stmt_extra_stage_count_late_90d"] == (recent["stage"] == "late").sum()
    assert row["stmt_extra_stage_last"] == rows["stage"].iloc[-1]
    # An explicit choice restricts; () uses none; an unusable column asked for is refused, naming why.
    only = FeatureBuilder(statement_columns=["fee"]).fit(rich)
    assert not any("stage" in n for n in only.catalogue_.index) and "stmt_extra_fee_last" in only.catalogue_.index
    assert not any("extra" in n for n in FeatureBuilder(statement_columns=()).fit(rich).catalogue_.index)
    with pytest.raises(ValueError, match=r"'statement_ref': every one of its .* an identifier"):
        FeatureBuilder(statement_columns=["statement_ref"]).fit(rich)
    # The fitted builder round-trips (a bundle's manifest) and rebuilds the very same features.
    again = FeatureBuilder.from_dict(builder.to_dict())
    pd.testing.assert_frame_equal(again.transform(rich, obs), builder.transform(rich, obs))
