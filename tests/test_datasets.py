"""The synthetic portfolio, the bundled sample and the Taiwan adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore import datasets
from tests import quick_model


@pytest.fixture(scope="module")
def portfolio() -> tuple[rs.EventData, pd.DataFrame]:
    return datasets.make_portfolio(n_accounts=1500, months=24, seed=11)


def test_same_seed_same_portfolio_other_seed_other_portfolio() -> None:
    a, ta = datasets.make_portfolio(n_accounts=300, months=12, seed=5)
    b, tb = datasets.make_portfolio(n_accounts=300, months=12, seed=5)
    c, _ = datasets.make_portfolio(n_accounts=300, months=12, seed=6)
    assert a.equals(b)
    pd.testing.assert_frame_equal(ta, tb)
    assert not a.equals(c)


def test_portfolio_shape_and_truth(portfolio: tuple[rs.EventData, pd.DataFrame]) -> None:
    events, truth = portfolio
    accounts = events.accounts
    assert len(accounts) == 1500 and truth.index.equals(pd.Index(accounts["account_id"], name="account_id"))
    assert set(truth["behaviour"]) == set(datasets.BEHAVIOURS)
    assert (truth["product"].to_numpy() == accounts["product"].astype(str).to_numpy()).all()
    assert events.protected == ("age",)
    cards = set(accounts.loc[accounts["product"] == "card", "account_id"])
    assert events.statements is not None and events.installments is not None and events.transactions is not None
    assert set(events.statements["account_id"]) <= cards
    assert set(events.transactions["account_id"]) <= cards
    assert not set(events.installments["account_id"]) & cards
    assert events.data_end < pd.Timestamp("2025-01-01")
    assert set(events.transactions["channel"].cat.categories) == {"pos", "online", "atm", "cash_advance"}
    # Shocks are dated for hardship borrowers only; stops for strategic ones only.
    assert truth.loc[truth["shock_date"].notna(), "behaviour"].eq("hardship").all()
    assert truth.loc[truth["stop_date"].notna(), "behaviour"].eq("strategic").all()


def _cycle_table(events: rs.EventData, truth: pd.DataFrame) -> pd.DataFrame:
    st = events.statements
    assert st is not None
    st = st.assign(prev=st.groupby("account_id")["balance"].shift(1), util=st["balance"] / st["credit_limit"])
    return st.merge(truth, left_on="account_id", right_index=True)


def test_behaviour_types_leave_their_signature(portfolio: tuple[rs.EventData, pd.DataFrame]) -> None:
    events, truth = portfolio
    cyc = _cycle_table(events, truth)
    owed = cyc[cyc["prev"] > 100]
    ratio = (owed["payment"] / owed["prev"]).groupby(owed["behaviour"], observed=True).median()
    # Full payers settle the balance; revolvers pay a small share of it.
    assert ratio["full_payer"] > 0.95
    assert ratio["revolver"] < 0.25
    late_share = (cyc["dpd"] > 0).groupby(cyc["behaviour"], observed=True).mean()
    # Forgetful borrowers are late now and then, far more than full payers; they self-cure.
    assert late_share["forgetful"] > 4 * late_share["full_payer"]
    forgetful = cyc[cyc["behaviour"] == "forgetful"]
    assert (forgetful["dpd"].between(1, 29)).sum() > (forgetful["dpd"] >= 60).sum()
    # Strategic borrowers pay nothing once they stop.
    stopped = cyc[cyc["stop_date"].notna() & (cyc["statement_date"] >= cyc["stop_date"] + pd.Timedelta(days=31))]
    assert len(stopped) > 50 and (stopped["payment"] == 0).mean() > 0.95


def test_hardship_shows_stress_before_delinquency(portfolio: tuple[rs.EventData, pd.DataFrame]) -> None:
    events, truth = portfolio
    cyc = _cycle_table(events, truth)
    hard = cyc[(cyc["behaviour"] == "hardship") & (cyc["shock_date"] > pd.Timestamp("2023-04-01"))]
    before = hard[hard["statement_date"] < hard["shock_date"]]
    after = hard[
        (hard["statement_date"] >= hard["shock_date"] + pd.Timedelta(days=60))
        & (hard["statement_date"] < hard["shock_date"] + pd.Timedelta(days=180))
    ]
    # Utilisation rises and payments fall behind after the shock.
    assert after["util"].mean() > before["util"].mean() + 0.1
    assert (after["dpd"] >= 30).mean() > (before["dpd"] >= 30).mean() + 0.1
    tx = events.transactions
    assert tx is not None
    tx = tx.merge(truth[["behaviour", "shock_date"]], left_on="account_id", right_index=True)
    cash = tx["channel"].isin(["atm", "cash_advance"])
    stressed = (tx["behaviour"] == "hardship") & (tx["timestamp"] >= tx["shock_date"])
    calm = tx["behaviour"].isin(["full_payer", "revolver"])
    # Cash advances appear under stress.
    assert cash[stressed].mean() > 5 * cash[calm].mean()


def test_delinquency_is_learnable_but_not_trivial() -> None:
    """A quick LightGBM on simple point-in-time features, validated out of time."""
    events, _ = datasets.make_portfolio(n_accounts=4000, months=24, seed=7)
    frame = quick_model.observations_and_labels(events)
    rate, auc = quick_model.out_of_time_auc(frame)
    assert 0.02 <= rate <= 0.12, f"90-day 30+ DPD rate among current accounts {rate:.3%}"
    assert 0.75 <= auc <= 0.92, f"out-of-time AUC {auc:.3f}"


# --------------------------------------------------------------------------- sample


def test_sample_is_what_its_recorded_call_makes() -> None:
    events, truth = datasets.load_sample(with_truth=True)  # type: ignore[misc]
    expected, expected_truth = datasets.make_portfolio(**datasets.SAMPLE_CALL)  # type: ignore[arg-type]
    assert events.equals(expected)
    pd.testing.assert_frame_equal(truth, expected_truth)


def test_sample_is_small_and_documented() -> None:
    folder = datasets.sample_dir()
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 5 * 2**20
    readme = (folder / "README.md").read_text()
    call = ", ".join(f"{k}={v!r}" for k, v in datasets.SAMPLE_CALL.items())
    assert f"make_portfolio({call})" in readme
    events = datasets.load_sample()
    assert isinstance(events, rs.EventData) and len(events.accounts) == 2000


def test_write_sample_round_trips(tmp_path: Path) -> None:
    folder = datasets.write_sample(tmp_path / "sample")
    assert rs.EventData.from_dir(folder).equals(datasets.load_sample())  # type: ignore[arg-type]


def test_make_portfolio_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="need n_accounts >= 1 and months >= 3; got n_accounts=0"):
        datasets.make_portfolio(n_accounts=0)


# --------------------------------------------------------------------------- Taiwan


def test_load_taiwan_counts(taiwan_csv: Path) -> None:
    events, target = datasets.load_taiwan(taiwan_csv)
    assert len(events.accounts) == 30_000
    assert events.statements is not None and len(events.statements) == 180_000
    assert int(target.sum()) == 6_636 and len(target) == 30_000
    assert target.index.name == "account_id" and target.index.equals(pd.Index(events.accounts["account_id"]))
    assert events.protected == ("sex", "education", "marriage", "age")


def test_load_taiwan_mapping(taiwan_csv: Path) -> None:
    raw = pd.read_csv(taiwan_csv).set_index("ID")
    events, _ = datasets.load_taiwan(taiwan_csv)
    st = events.statements
    assert st is not None
    one = st[st["account_id"] == 2].set_index("statement_date")
    months = ["2005-09-30", "2005-08-31", "2005-07-31", "2005-06-30", "2005-05-31", "2005-04-30"]
    status = ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
    for k, (month, pay) in enumerate(zip(months, status, strict=True), start=1):
        row = one.loc[pd.Timestamp(month)]
        assert row["balance"] == raw.loc[2, f"BILL_AMT{k}"]
        # PAY_AMTk is paid during month k and settles the previous month's bill.
        assert row["payment"] == raw.loc[2, f"PAY_AMT{k}"]
        code = raw.loc[2, pay]
        assert row["pay_status"] == code
        assert row["dpd"] == (30 * code if code > 0 else 0)
    acc = events.accounts.set_index("account_id")
    assert acc.loc[1, "credit_limit"] == 20_000 and acc.loc[1, "sex"] == 2 and acc.loc[1, "age"] == 24
    assert (acc["open_date"] == pd.Timestamp("2005-04-01")).all()
    assert set(st["dpd"].unique()) <= {0, *range(30, 271, 30)}
    # Payment pairing: PAY_AMT1 equals the August bill far more often than September's.
    prev = st.groupby("account_id")["balance"].shift(1)
    positive = prev > 0
    assert (st["payment"][positive] == prev[positive]).mean() > 3 * (st["payment"] == st["balance"])[positive].mean()


def test_load_taiwan_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Taiwan credit-card CSV not found"):
        datasets.load_taiwan(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"ID": [1], "LIMIT_BAL": [1000]}).to_csv(bad, index=False)
    with pytest.raises(rs.DataValidationError, match=r"taiwan\.SEX: required columns are missing: \['SEX'"):
        datasets.load_taiwan(bad)


def test_rng_is_independent_of_numpy_global_state() -> None:
    np.random.seed(1)  # noqa: NPY002 - the legacy global state is what must not matter
    a, _ = datasets.make_portfolio(n_accounts=100, months=6, seed=3)
    np.random.seed(2)  # noqa: NPY002
    b, _ = datasets.make_portfolio(n_accounts=100, months=6, seed=3)
    assert a.equals(b)
