"""observation_dates and make_labels: the scoring grid and the target, at their boundaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore import datasets

T = pd.Timestamp
AS_OF = T("2024-01-01")


def card_events(statement_day: pd.Timestamp, dpd: int = 30, end: pd.Timestamp | None = None) -> rs.EventData:
    """One card, current at AS_OF, with one later statement at ``statement_day``."""
    dates = [T("2023-12-01"), statement_day] + ([end] if end is not None else [])
    return rs.EventData(
        accounts=pd.DataFrame({"account_id": [1], "open_date": ["2023-06-01"], "credit_limit": [1000.0]}),
        statements=pd.DataFrame(
            {
                "account_id": [1] * len(dates),
                "statement_date": dates,
                "balance": 100.0,
                "payment": 0.0,
                "dpd": [0, dpd] + ([0] if end is not None else []),
            }
        ),
    )


def loan_events(due: pd.Timestamp, paid: pd.Timestamp | None, end: pd.Timestamp) -> rs.EventData:
    """One loan with one instalment; a late second instalment marks the data end."""
    return rs.EventData(
        accounts=pd.DataFrame({"account_id": [7], "open_date": ["2023-01-01"], "credit_limit": [500.0]}),
        installments=pd.DataFrame(
            {
                "account_id": [7, 7],
                "due_date": [due, end],
                "amount_due": [100.0, 100.0],
                "paid_date": [paid, end],
                "amount_paid": [100.0 if paid is not None else 0.0, 100.0],
            }
        ),
    )


def label(events: rs.EventData, as_of: pd.Timestamp = AS_OF, **kw: object) -> object:
    obs = pd.DataFrame({"account_id": [events.accounts["account_id"].iloc[0]], "as_of": [as_of]})
    return rs.make_labels(events, obs, **kw).iloc[0]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("day", "expected"),
    [(0, 1), (89, 1), (90, 0), (-1, 0)],
    ids=["on as_of", "last day of the window", "first day after", "the day before"],
)
def test_statement_boundaries(day: int, expected: int) -> None:
    events = card_events(AS_OF + pd.Timedelta(days=day), end=AS_OF + pd.Timedelta(days=200))
    assert label(events) == expected


def test_dpd_below_threshold_is_not_a_default() -> None:
    events = card_events(AS_OF + pd.Timedelta(days=10), dpd=29, end=AS_OF + pd.Timedelta(days=200))
    assert label(events) == 0
    assert label(events, dpd_threshold=20) == 1


@pytest.mark.parametrize(
    ("due_offset", "paid_offset", "expected"),
    [
        (59, None, 1),  # reaches 30 days past due on day 89 of the window
        (60, None, 0),  # reaches it on day 90: outside
        (10, 40, 0),  # paid on the day it would have reached 30 days: never 30 days past due
        (10, 41, 1),  # paid one day later
        (-40, None, 1),  # fell due before as_of, still unpaid: 30+ days past due within the window
        (-40, -5, 0),  # fell due before as_of, paid before as_of
        (-40, 3, 1),  # 30+ days past due on as_of itself, paid three days later
    ],
)
def test_instalment_boundaries(due_offset: int, paid_offset: int | None, expected: int) -> None:
    due = AS_OF + pd.Timedelta(days=due_offset)
    paid = None if paid_offset is None else AS_OF + pd.Timedelta(days=paid_offset)
    assert label(loan_events(due, paid, end=AS_OF + pd.Timedelta(days=300))) == expected


def test_partial_payments_do_not_cure() -> None:
    events = rs.EventData(
        accounts=pd.DataFrame({"account_id": [7], "open_date": ["2023-01-01"], "credit_limit": [500.0]}),
        installments=pd.DataFrame(
            {
                "account_id": [7, 7, 7],
                "due_date": ["2024-01-10", "2024-01-10", "2024-09-01"],
                "amount_due": [100.0, 100.0, 100.0],
                "paid_date": ["2024-01-15", "2024-03-01", "2024-09-01"],
                "amount_paid": [60.0, 40.0, 100.0],
            }
        ),
    )
    assert label(events) == 1  # 60 of 100 paid on time; in full only after 51 days


def test_incomplete_window_is_na_never_zero() -> None:
    events = card_events(AS_OF + pd.Timedelta(days=10), dpd=0)
    assert events.data_end == AS_OF + pd.Timedelta(days=10)
    assert label(events) is pd.NA
    assert label(events, data_end=AS_OF + pd.Timedelta(days=88)) is pd.NA
    assert label(events, data_end=AS_OF + pd.Timedelta(days=89)) == 0
    # A known default inside an incomplete window is still NA: no partial windows.
    late = card_events(AS_OF + pd.Timedelta(days=5), dpd=40)
    assert label(late) is pd.NA


def test_labels_keep_the_observation_index_and_name() -> None:
    events = card_events(AS_OF + pd.Timedelta(days=30), end=AS_OF + pd.Timedelta(days=200))
    obs = pd.DataFrame({"account_id": [1, 1], "as_of": [AS_OF, AS_OF + pd.Timedelta(days=60)]}, index=[10, 20])
    y = rs.make_labels(events, obs)
    assert list(y.index) == [10, 20] and y.name == "dpd30_90d" and str(y.dtype) == "Int8"
    assert y.tolist() == [1, 0]
    X = pd.DataFrame({"f": [0.0, 1.0]}, index=pd.MultiIndex.from_frame(obs))
    assert rs.make_labels(events, X, horizon="30D").index.equals(X.index)
    assert rs.make_labels(events, X, horizon="31D").tolist() == [1, 0]


def test_invalid_label_parameters() -> None:
    events = card_events(AS_OF)
    obs = pd.DataFrame({"account_id": [1], "as_of": [AS_OF]})
    with pytest.raises(ValueError, match="horizon must be a positive whole number of days such as '90D'; got '12h'"):
        rs.make_labels(events, obs, horizon="12h")
    for horizon in ("three months", None):  # not a duration at all: the same message, no pandas parse error
        with pytest.raises(
            ValueError, match=f"horizon must be a positive whole number of days such as '90D'; got {horizon!r}"
        ):
            rs.make_labels(events, obs, horizon=horizon)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dpd_threshold must be a positive whole number of days; got 0"):
        rs.make_labels(events, obs, dpd_threshold=0)


# --------------------------------------------------------------------------- grid


def test_observation_grid_open_and_current() -> None:
    accounts = pd.DataFrame(
        {
            "account_id": [1, 2, 3, 4],
            "open_date": ["2023-12-15", "2024-02-01", "2023-01-01", "2023-01-01"],
            "credit_limit": [1000.0] * 4,
            "close_date": [None, None, "2024-02-10", None],
        }
    )
    statements = pd.DataFrame(
        {
            "account_id": [1, 1, 1, 3],
            "statement_date": ["2024-01-10", "2024-02-10", "2024-03-10", "2024-01-10"],
            "balance": 50.0,
            "payment": 0.0,
            "dpd": [0, 12, 0, 0],
        }
    )
    installments = pd.DataFrame(
        {
            "account_id": [4, 4],
            "due_date": ["2024-01-20", "2024-02-20"],
            "amount_due": [10.0, 10.0],
            "paid_date": ["2024-03-05", "2024-02-20"],
            "amount_paid": [10.0, 10.0],
        }
    )
    events = rs.EventData(accounts=accounts, statements=statements, installments=installments)
    grid = rs.observation_dates(events, start="2024-01-01", end="2024-04-01", eligible="all")
    got = {(a, d.strftime("%m-%d")) for a, d in zip(grid["account_id"], grid["as_of"], strict=True)}
    assert got == {
        (1, "01-01"), (1, "02-01"), (1, "03-01"), (1, "04-01"),
        (2, "03-01"), (2, "04-01"),  # opened on 02-01: not open before as_of 02-01
        (3, "01-01"), (3, "02-01"),  # closed on 02-10
        (4, "01-01"), (4, "02-01"), (4, "03-01"), (4, "04-01"),
    }  # fmt: skip
    current = rs.observation_dates(events, start="2024-01-01", end="2024-04-01")
    got = {(a, d.strftime("%m-%d")) for a, d in zip(current["account_id"], current["as_of"], strict=True)}
    # Account 1 is 12 days past due on its February statement; account 4's January
    # instalment is unpaid from 01-20 to 03-05.
    assert got == {
        (1, "01-01"), (1, "02-01"), (1, "04-01"), (2, "03-01"), (2, "04-01"),
        (3, "01-01"), (3, "02-01"), (4, "01-01"), (4, "04-01"),
    }  # fmt: skip
    assert list(current.columns) == ["account_id", "as_of"]
    assert current.equals(current.sort_values(["account_id", "as_of"], ignore_index=True))
    with pytest.raises(ValueError, match="eligible must be 'current' or 'all'; got 'open'"):
        rs.observation_dates(events, eligible="open")  # type: ignore[arg-type]


def test_default_population_and_rate_on_the_sample() -> None:
    events = datasets.load_sample()
    assert isinstance(events, rs.EventData)
    obs = rs.observation_dates(events)
    assert obs["as_of"].min() == T("2023-01-01") and obs["as_of"].max() == T("2024-12-01")
    assert (obs["as_of"].dt.day == 1).all()
    y = rs.make_labels(events, obs)
    known = y.dropna().astype(int)
    assert 0.02 < known.mean() < 0.12
    # The data ends on 2024-12-31 (a late instalment payment): windows from
    # 2024-11-01 on are incomplete, 2024-10-01 + 89 days = 2024-12-29 is complete.
    assert events.data_end.normalize() == T("2024-12-31")
    assert y[obs["as_of"] >= T("2024-11-01")].isna().all()
    assert y[obs["as_of"] <= T("2024-10-01")].notna().all()
    # Every account labelled 1 really reaches 30+ dpd in its window.
    st = events.statements
    assert st is not None
    pos = obs[(y == 1).fillna(False).to_numpy(dtype=bool)].head(50)
    for account_id, as_of in zip(pos["account_id"], pos["as_of"], strict=True):
        rows = st[(st["account_id"] == account_id) & (st["statement_date"] >= as_of)]
        inst = events.installments
        assert inst is not None
        in_window = rows["statement_date"] < as_of + pd.Timedelta(days=90)
        has_stmt = bool((rows.loc[in_window, "dpd"] >= 30).any())
        has_inst = bool(((inst["account_id"] == account_id) & (inst["due_date"] < as_of + pd.Timedelta(days=60))).any())
        assert has_stmt or has_inst
    assert np.isin(obs["account_id"], events.accounts["account_id"]).all()
