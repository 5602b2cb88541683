"""Shared fixtures: tiny valid event tables built in code, and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs

REPO = Path(__file__).resolve().parents[1]
TAIWAN_DEFAULT = REPO.parent / "shared" / "data" / "taiwan_credit_default" / "default_of_credit_card_clients.csv"


def shared_data(path: Path, what: str) -> Path:
    """``path`` if it exists; else skip, or fail when RISKSCORE_REQUIRE_SHARED_DATA=1."""
    if path.exists():
        return path
    reason = f"{what} not found at {path}"
    if os.environ.get("RISKSCORE_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(f"{reason}, and RISKSCORE_REQUIRE_SHARED_DATA=1 requires it")
    pytest.skip(f"{reason}; set RISKSCORE_TAIWAN_CSV or place ../shared beside the repository")


@pytest.fixture(scope="session")
def taiwan_csv() -> Path:
    env = os.environ.get("RISKSCORE_TAIWAN_CSV")
    return shared_data(Path(env) if env else TAIWAN_DEFAULT, "the UCI Taiwan credit-card CSV")


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Three accounts (two cards, one loan) with every table, all valid."""
    accounts = pd.DataFrame(
        {
            "account_id": [3, 1, 2],
            "open_date": ["2023-01-10", "2022-06-01", "2023-03-15"],
            "credit_limit": [2000.0, 5000.0, 8000.0],
            "product": ["card", "card", "loan"],
            "timezone": ["Asia/Shanghai", "America/New_York", None],
            "age": [34, 51, 28],
        }
    )
    statements = pd.DataFrame(
        {
            "account_id": [1, 1, 1, 3, 3],
            "statement_date": ["2023-03-01", "2023-01-01", "2023-02-01", "2023-02-10", "2023-03-10"],
            "balance": [1300.0, 1000.0, 1200.0, 150.0, -20.0],
            "payment": [100.0, 0.0, 50.0, 0.0, 170.0],
            "dpd": [0, 0, 5, 0, 0],
            "min_due": [39.0, 30.0, 36.0, 25.0, 0.0],
        }
    )
    installments = pd.DataFrame(
        {
            "account_id": [2, 2, 2, 2],
            "instalment_no": [1, 2, 2, 3],
            "due_date": ["2023-04-15", "2023-05-15", "2023-05-15", "2023-06-15"],
            "amount_due": [700.0, 700.0, 700.0, 700.0],
            "paid_date": ["2023-04-14", "2023-05-20", "2023-06-02", None],
            "amount_paid": [700.0, 300.0, 400.0, None],
        }
    )
    transactions = pd.DataFrame(
        {
            "account_id": [1, 3, 1, 3],
            "timestamp": ["2023-01-15 12:30:00", "2023-01-20 09:00:00", "2023-01-05 18:00:00", "2023-02-20"],
            "amount": [45.5, 150.0, 12.0, -5.0],
            "category": ["grocery", "travel", "dining", "grocery"],
            "channel": ["pos", "online", "pos", "pos"],
        }
    )
    contacts = pd.DataFrame(
        {
            "account_id": [1, 1],
            "timestamp": ["2023-02-03 10:00:00", "2023-02-04 11:00:00"],
            "channel": ["sms", "call"],
            "outcome": ["attempt", "connected"],
        }
    )
    return {
        "accounts": accounts,
        "statements": statements,
        "installments": installments,
        "transactions": transactions,
        "contacts": contacts,
    }


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return tiny_tables()


@pytest.fixture(scope="session")
def sample_xy() -> dict[str, object]:
    """The bundled sample as a modelling table: events, fitted builder, X and y of complete windows."""
    import riskscore as rs

    events = rs.datasets.load_sample()
    obs = rs.observation_dates(events)  # type: ignore[arg-type]
    y = rs.make_labels(events, obs)  # type: ignore[arg-type]
    builder = rs.FeatureBuilder()
    X = builder.fit_transform(events, obs)  # type: ignore[arg-type]
    known = y.notna().to_numpy()
    X, y = X[known], y[known].astype(int)
    y.index = X.index
    return {"events": events, "builder": builder, "X": X, "y": y}


@pytest.fixture(scope="session")
def sample_model(sample_xy: dict[str, object]) -> tuple[object, pd.DataFrame]:
    """A default RiskModel fitted on every complete observation of the sample, and X."""
    import riskscore as rs

    X, y = sample_xy["X"], sample_xy["y"]
    return rs.RiskModel().fit(X, y), X  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def portfolio(sample_model: tuple[rs.RiskModel, pd.DataFrame], sample_xy: dict[str, Any]) -> dict[str, Any]:
    """10,000 synthetic accounts scored by the sample model, with flags, opt-outs and recent calls."""
    model, _ = sample_model
    events, _ = rs.datasets.make_portfolio(n_accounts=10_000, months=14, seed=5, start="2025-01-01")
    as_of = pd.Timestamp("2026-02-01")
    accounts = events.accounts.copy()
    rng = np.random.default_rng(1)
    for flag, share in (("vulnerable", 0.02), ("attorney", 0.005), ("deceased", 0.002), ("hardship_plan", 0.01)):
        accounts[flag] = rng.random(len(accounts)) < share
    contacts = events.contacts
    ids = accounts["account_id"].to_numpy()
    picked = rng.choice(ids, 600, replace=False)
    recent = pd.DataFrame(
        {
            "account_id": np.repeat(picked, 3),
            "timestamp": pd.Timestamp("2026-02-01 09:00") + pd.to_timedelta(rng.integers(0, 2 * 24 * 60, 1800), "min"),
            "channel": "call",
            "outcome": rng.choice(["attempt", "connected"], 1800, p=[0.8, 0.2]),
            "direction": "outbound",
        }
    )
    events = rs.EventData(**{**events.tables, "accounts": accounts, "contacts": pd.concat([contacts, recent])})
    open_ = events.accounts.set_index("account_id")["open_date"] < as_of
    obs = pd.DataFrame({"account_id": open_[open_].index, "as_of": as_of})
    X = sample_xy["builder"].transform(events, obs)
    scores = model.score(X)
    needs = scores["band"].isin(["C", "D", "E", "F"]).to_numpy()
    explanation = model.explain(X[needs])
    now = pd.Timestamp("2026-02-03 10:30", tz="America/New_York")
    return {"events": events, "scores": scores, "explanation": explanation, "now": now}
