"""EventData: the data contract, every validation rule, normalisation and file io."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import riskscore as rs
from riskscore.data.schema import SCHEMA as _SCHEMA
from tests.conftest import tiny_tables

Tables = dict[str, pd.DataFrame]


def build(tables: Tables, **kw: object) -> rs.EventData:
    return rs.EventData(**tables, **kw)  # type: ignore[arg-type]


def problems_of(tables: Tables) -> rs.DataValidationError:
    with pytest.raises(rs.DataValidationError) as info:
        build(tables)
    return info.value


# --------------------------------------------------------------------------- normalisation


def test_valid_tables_are_normalised(tables: Tables) -> None:
    events = build(tables, protected=["age"])
    st_ = events.statements
    assert st_ is not None
    assert st_["statement_date"].dtype == "datetime64[ns]"
    assert st_["dpd"].dtype == "int64"
    assert st_["balance"].dtype == "float64"
    assert events.accounts["account_id"].dtype == "int64"
    assert isinstance(events.accounts["product"].dtype, pd.CategoricalDtype)
    assert isinstance(events.accounts["timezone"].dtype, pd.CategoricalDtype)
    assert events.transactions is not None and isinstance(events.transactions["channel"].dtype, pd.CategoricalDtype)
    # Sorted by account_id then time, fresh RangeIndex.
    assert st_["account_id"].tolist() == [1, 1, 1, 3, 3]
    assert st_["statement_date"].dt.strftime("%Y-%m").tolist() == [
        "2023-01",
        "2023-02",
        "2023-03",
        "2023-02",
        "2023-03",
    ]
    assert st_["balance"].tolist() == [1000.0, 1200.0, 1300.0, 150.0, -20.0]
    assert isinstance(st_.index, pd.RangeIndex)
    assert events.accounts["account_id"].tolist() == [1, 2, 3]
    assert events.transactions["account_id"].tolist() == [1, 1, 3, 3]
    # Extra columns are kept; the unpaid instalment's empty amount is stored as 0.
    assert events.accounts["age"].tolist() == [51, 28, 34]
    inst = events.installments
    assert inst is not None
    assert inst["amount_paid"].tolist() == [700.0, 300.0, 400.0, 0.0]
    assert inst["paid_date"].isna().tolist() == [False, False, False, True]
    assert events.protected == ("age",)


def test_normalised_tables_are_accepted_back_unchanged(tables: Tables) -> None:
    events = build(tables, protected=["age"])
    again = rs.EventData(**events.tables, protected=events.protected)
    assert again.equals(events)
    for name, df in events.tables.items():
        pd.testing.assert_frame_equal(getattr(again, name), df)


def test_inputs_are_not_modified(tables: Tables) -> None:
    before = {k: v.copy() for k, v in tables.items()}
    build(tables)
    for name, df in tables.items():
        pd.testing.assert_frame_equal(df, before[name])


def test_absent_tables_are_none(tables: Tables) -> None:
    events = rs.EventData(accounts=tables["accounts"], transactions=tables["transactions"])
    assert events.statements is None and events.installments is None and events.contacts is None
    assert list(events.tables) == ["accounts", "transactions"]


def test_string_account_ids_are_kept_as_text(tables: Tables) -> None:
    for df in tables.values():
        df["account_id"] = "A" + df["account_id"].astype(str)
    events = build(tables)
    assert events.accounts["account_id"].tolist() == ["A1", "A2", "A3"]


def test_datetime_and_date_objects_are_accepted(tables: Tables) -> None:
    import datetime

    tables["accounts"]["open_date"] = [
        datetime.date(2023, 1, 10),
        datetime.date(2022, 6, 1),
        datetime.date(2023, 3, 15),
    ]
    tables["statements"]["statement_date"] = pd.to_datetime(tables["statements"]["statement_date"])
    events = build(tables)
    assert events.accounts["open_date"].dtype == "datetime64[ns]"


def test_summary_and_data_end(tables: Tables) -> None:
    events = build(tables)
    summary = events.summary()
    assert summary.loc["statements", "rows"] == 5
    assert summary.loc["statements", "accounts"] == 2
    assert summary.loc["transactions", "last"] == pd.Timestamp("2023-02-20")
    # Latest of statement dates, due dates, paid dates and transaction times.
    assert events.data_end == pd.Timestamp("2023-06-15")
    assert repr(events).startswith("EventData(accounts=3, statements=5")


# --------------------------------------------------------------------------- rules


def _set(table: str, column: str, row: int, value: object) -> Callable[[Tables], None]:
    def corrupt(t: Tables) -> None:
        df = t[table]
        df[column] = df[column].astype(object)
        df.loc[row, column] = value

    return corrupt


def _drop(table: str, column: str) -> Callable[[Tables], None]:
    return lambda t: t.__setitem__(table, t[table].drop(columns=column))


RULES: list[tuple[str, Callable[[Tables], None], str]] = [
    ("missing column", _drop("statements", "dpd"), r"statements\.dpd: required column is missing; got columns \["),
    ("missing account column", _drop("accounts", "open_date"), r"accounts\.open_date: required column is missing"),
    (
        "unparseable date",
        _set("statements", "statement_date", 0, "2023-13-45"),
        r"statements\.statement_date: must be a date in ISO 8601 form .*; got '2023-13-45' \[1 row; account_id 1\]",
    ),
    (
        "day-first date",
        _set("transactions", "timestamp", 1, "20/01/2023"),
        r"transactions\.timestamp: must be a date in ISO 8601 form .*got '20/01/2023' \[1 row; account_id 3\]",
    ),
    (
        "number as date",
        lambda t: t["accounts"].__setitem__("open_date", [20230110, 20220601, 20230315]),
        r"accounts\.open_date: must be dates \(ISO 8601 text or datetime\); got numeric dtype int64",
    ),
    (
        "zone-aware date",
        lambda t: t["contacts"].__setitem__(
            "timestamp", pd.to_datetime(t["contacts"]["timestamp"]).dt.tz_localize("UTC")
        ),
        r"contacts\.timestamp: dates must be naive .*got time-zone-aware datetime64\[.*, UTC\]",
    ),
    (
        "text in a number",
        _set("statements", "balance", 2, "12,5"),
        r"statements\.balance: must be numeric; got '12,5' \[1 row; account_id 1\]",
    ),
    (
        "empty number",
        _set("statements", "payment", 4, np.nan),
        r"statements\.payment: must not be empty \[1 row; account_id 3\]",
    ),
    (
        "infinite number",
        _set("transactions", "amount", 0, np.inf),
        r"transactions\.amount: must be finite; got inf \[1 row; account_id 1\]",
    ),
    (
        "boolean number",
        lambda t: t["accounts"].__setitem__("credit_limit", [True, False, True]),
        r"accounts\.credit_limit: must be numeric; got dtype bool",
    ),
    ("empty account_id", _set("accounts", "account_id", 1, None), r"accounts\.account_id: must not be empty \[1 row\]"),
    (
        "duplicate account",
        lambda t: t.__setitem__("accounts", pd.concat([t["accounts"], t["accounts"].iloc[[1]]], ignore_index=True)),
        r"accounts\.account_id: must have one row per account_id; got 2 rows sharing a key \[2 rows; account_id 1\]",
    ),
    (
        "mixed id types",
        _set("accounts", "account_id", 0, "3"),
        r"accounts\.account_id: account_id must be all integers or all text; got mixed types \(int, str\)",
    ),
    (
        "unknown account",
        _set("transactions", "account_id", 2, 99),
        r"transactions\.account_id: every account_id must exist in accounts; got unknown account_id 99 "
        r"\[1 row; account_id 99\]",
    ),
    (
        "id type differs between tables",
        lambda t: t["contacts"].__setitem__("account_id", ["1", "1"]),
        r"contacts\.account_id: account_id must have the type of accounts\.account_id \(int64\); got",
    ),
    (
        "negative dpd",
        _set("statements", "dpd", 1, -3),
        r"statements\.dpd: must be >= 0; got -3 \[1 row; account_id 1\]",
    ),
    ("fractional dpd", _set("statements", "dpd", 3, 2.5), r"statements\.dpd: must be a whole number; got 2\.5"),
    ("empty dpd", _set("statements", "dpd", 3, None), r"statements\.dpd: must not be empty \[1 row; account_id 3\]"),
    (
        "negative credit limit",
        _set("accounts", "credit_limit", 0, -100.0),
        r"accounts\.credit_limit: must be >= 0; got -100 \[1 row; account_id 3\]",
    ),
    (
        "negative statement limit",
        lambda t: t["statements"].__setitem__("credit_limit", [5000.0, 5000.0, -1.0, 2000.0, 2000.0]),
        r"statements\.credit_limit: must be >= 0; got -1",
    ),
    (
        "two statements on one date",
        _set("statements", "statement_date", 2, "2023-03-01"),
        r"statements\.statement_date: must have one row per \(account_id, statement_date\); got 2 rows sharing a key "
        r"\[2 rows; account_id 1\]",
    ),
    (
        "paid_date without payment",
        _set("installments", "paid_date", 3, "2023-06-20"),
        r"installments\.paid_date: paid_date must be empty when nothing was paid; got paid_date 2023-06-20 "
        r"with amount_paid empty \[1 row; account_id 2\]",
    ),
    (
        "payment without paid_date",
        _set("installments", "paid_date", 0, None),
        r"installments\.paid_date: paid_date must be given when amount_paid > 0; got amount_paid 700 with no "
        r"paid_date \[1 row; account_id 2\]",
    ),
    (
        "negative payment",
        _set("installments", "amount_paid", 0, -700.0),
        r"installments\.amount_paid: must be >= 0; got -700",
    ),
    (
        "statement before opening",
        _set("statements", "statement_date", 3, "2022-12-01"),
        r"statements\.statement_date: must not be before the account's open_date; got 2022-12-01 for an account "
        r"opened 2023-01-10 \[1 row; account_id 3\]",
    ),
    (
        "transaction before opening",
        _set("transactions", "timestamp", 0, "2022-05-31 23:59:59"),
        r"transactions\.timestamp: must not be before the account's open_date; got 2022-05-31 23:59:59",
    ),
    (
        "paid before opening",
        _set("installments", "paid_date", 0, "2023-03-01"),
        r"installments\.paid_date: must not be before the account's open_date",
    ),
    (
        "invalid time zone",
        _set("accounts", "timezone", 2, "Mars/Olympus"),
        r"accounts\.timezone: must be an IANA time-zone name such as 'Asia/Shanghai' or empty; got 'Mars/Olympus' "
        r"\[1 row; account_id 2\]",
    ),
    (
        "empty contact channel",
        _set("contacts", "channel", 0, None),
        r"contacts\.channel: must not be empty \[1 row; account_id 1\]",
    ),
    (
        "list as a label",
        _set("transactions", "category", 0, ["grocery"]),
        r"transactions\.category: must be text labels; got \['grocery'\]",
    ),
    (
        "no event table",
        lambda t: [t.pop(k) for k in ("statements", "installments", "transactions")],
        r"events: at least one of statements, installments, transactions must be given; got none",
    ),
    (
        "not a DataFrame",
        lambda t: t.__setitem__("statements", [{"account_id": 1}]),
        r"statements: must be a pandas DataFrame; got list",
    ),
]


@pytest.mark.parametrize(("corrupt", "message"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule_names_table_column_rows_and_accounts(
    tables: Tables, corrupt: Callable[[Tables], None], message: str
) -> None:
    corrupt(tables)
    with pytest.raises(rs.DataValidationError, match=message):
        build(tables)


def test_index_hint_when_account_id_is_the_index(tables: Tables) -> None:
    tables["statements"] = tables["statements"].set_index("account_id")
    with pytest.raises(rs.DataValidationError, match=r"it is the index: call \.reset_index\(\) first"):
        build(tables)


def test_all_problems_are_reported_at_once(tables: Tables) -> None:
    tables["statements"].loc[0, "dpd"] = -1
    tables["accounts"].loc[0, "credit_limit"] = -5.0
    tables["transactions"].loc[0, "account_id"] = 42
    tables["installments"] = tables["installments"].drop(columns="amount_due")
    err = problems_of(tables)
    found = {(p.table, p.column, p.rule) for p in err.problems}
    assert found == {
        ("statements", "dpd", "non_negative"),
        ("accounts", "credit_limit", "non_negative"),
        ("transactions", "account_id", "known_account"),
        ("installments", "amount_due", "required_column"),
    }
    assert str(err).startswith("invalid event data: 4 problems found\n")


def test_examples_are_capped_at_five_accounts() -> None:
    n = 12
    accounts = pd.DataFrame({"account_id": range(n), "open_date": "2023-01-01", "credit_limit": 100.0})
    statements = pd.DataFrame(
        {"account_id": range(n), "statement_date": "2023-02-01", "balance": 1.0, "payment": 0.0, "dpd": -1}
    )
    err = problems_of({"accounts": accounts, "statements": statements})
    (problem,) = err.problems
    assert problem.n_rows == 12 and problem.n_accounts == 12
    assert problem.account_ids == (0, 1, 2, 3, 4)
    assert "[12 rows; account_id 0, 1, 2, 3, 4, ...]" in str(err)


def test_unknown_protected_column(tables: Tables) -> None:
    with pytest.raises(rs.DataValidationError, match=r"accounts\.income: protected attributes must be columns"):
        build(tables, protected=["income"])


# --------------------------------------------------------------------------- property-based corruption

_DATE_COLS = [(t, c.name) for t, cols in _SCHEMA.items() for c in cols if c.kind == "date"]
_REQUIRED = [(t, c.name) for t, cols in _SCHEMA.items() for c in cols if c.required]
_NOT_NULL = [(t, c.name) for t, cols in _SCHEMA.items() for c in cols if c.required and not c.nullable]
_NUMBER_COLS = [(t, c.name) for t, cols in _SCHEMA.items() for c in cols if c.kind in ("number", "integer")]
_PRESENT = {(t, c) for t, df in tiny_tables().items() for c in df.columns}


def _not_iso(text: str) -> bool:
    return pd.isna(pd.to_datetime(pd.Series([text], dtype=object), format="ISO8601", errors="coerce").iloc[0])


def _not_number(text: str) -> bool:
    return pd.isna(pd.to_numeric(pd.Series([text], dtype=object), errors="coerce").iloc[0])


@st.composite
def corruption(draw: st.DrawFn) -> tuple[Tables, str, str]:
    t = tiny_tables()
    kind = draw(st.sampled_from(["wrong_type", "nan", "negative_dpd", "unknown", "duplicate", "bad_date", "drop"]))
    if kind == "wrong_type":
        table, col = draw(st.sampled_from(sorted(c for c in _NUMBER_COLS + _DATE_COLS if c in _PRESENT)))
        is_date = (table, col) in _DATE_COLS
        junk = draw(
            st.one_of(
                st.text(min_size=1, max_size=12).filter(_not_iso if is_date else _not_number),
                st.lists(st.integers(), max_size=2),
                st.booleans(),
                st.just({"a": 1}),
                *([st.integers(-10, 10**6), st.floats(allow_nan=False, allow_infinity=False)] if is_date else []),
            )
        )
    elif kind == "nan":
        table, col = draw(st.sampled_from(sorted(c for c in _NOT_NULL if c in _PRESENT)))
        junk = draw(st.sampled_from([None, np.nan, pd.NaT]))
    elif kind == "negative_dpd":
        table, col = "statements", "dpd"
        junk = draw(st.integers(-(10**6), -1) | st.floats(-1e9, -0.001))
    elif kind == "unknown":
        table = draw(st.sampled_from(["statements", "installments", "transactions", "contacts"]))
        col = "account_id"
        junk = draw(st.integers(4, 10**9))
    elif kind == "bad_date":
        table, col = draw(st.sampled_from(sorted(c for c in _DATE_COLS if c in _PRESENT)))
        junk = draw(st.text(min_size=1, max_size=20).filter(_not_iso))
    elif kind == "duplicate":
        table = draw(st.sampled_from(["accounts", "statements"]))
        col = "account_id" if table == "accounts" else "statement_date"
        df = t[table]
        row = draw(st.integers(0, len(df) - 1))
        t[table] = pd.concat([df, df.iloc[[row]]], ignore_index=True).sample(
            frac=1, random_state=draw(st.integers(0, 99))
        )
        return t, table, col
    else:
        table, col = draw(st.sampled_from(sorted(c for c in _REQUIRED if c in _PRESENT)))
        t[table] = t[table].drop(columns=col)
        return t, table, col
    df = t[table]
    row = draw(st.integers(0, len(df) - 1))
    df[col] = df[col].astype(object)
    df.at[df.index[row], col] = junk
    return t, table, col


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corruption())
def test_any_corruption_raises_data_validation_error_naming_table_and_column(case: tuple[Tables, str, str]) -> None:
    tables, table, column = case
    with pytest.raises(rs.DataValidationError) as info:
        build(tables)
    where = {(p.table, p.column) for p in info.value.problems}
    # A broken paid_date/amount_paid pair is reported on paid_date, the rule's anchor.
    alternatives = {(table, column)} | ({("installments", "paid_date")} if table == "installments" else set())
    assert where & alternatives, f"expected a problem on {table}.{column}; got {info.value}"
    assert re.search(rf"\b{table}\.", str(info.value))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 400), st.floats(-1e6, 1e6), st.integers(0, 200)),
        min_size=1,
        max_size=30,
        unique_by=lambda r: (r[0], r[1]),
    )
)
def test_valid_random_statements_are_accepted_sorted_and_idempotent(rows: list[tuple[int, int, float, int]]) -> None:
    accounts = pd.DataFrame({"account_id": range(5), "open_date": "2020-01-01", "credit_limit": 1000.0})
    statements = pd.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "statement_date": pd.Timestamp("2020-01-01") + pd.to_timedelta([r[1] for r in rows], unit="D"),
            "balance": [r[2] for r in rows],
            "payment": 0.0,
            "dpd": [r[3] for r in rows],
        }
    )
    events = rs.EventData(accounts=accounts, statements=statements)
    out = events.statements
    assert out is not None and len(out) == len(rows)
    keys = list(zip(out["account_id"], out["statement_date"], strict=True))
    assert keys == sorted(keys)
    assert rs.EventData(**events.tables).equals(events)


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_to_dir_from_dir_round_trip(tables: Tables, tmp_path: Path, fmt: str) -> None:
    events = build(tables, protected=["age"])
    events.to_dir(tmp_path, format=fmt)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{n}.{fmt}" for n in events.tables] + ["_eventdata.json"]
    )
    back = rs.EventData.from_dir(tmp_path)
    assert back.protected == ("age",)
    for name, df in events.tables.items():
        pd.testing.assert_frame_equal(getattr(back, name), df, check_categorical=fmt == "parquet")


def test_csv_keeps_text_ids_with_leading_zeros(tables: Tables, tmp_path: Path) -> None:
    for df in tables.values():
        df["account_id"] = "00" + df["account_id"].astype(str)
    build(tables).to_dir(tmp_path, format="csv")
    back = rs.EventData.from_dir(tmp_path)
    assert back.accounts["account_id"].tolist() == ["001", "002", "003"]


def test_to_dir_refuses_to_overwrite(tables: Tables, tmp_path: Path) -> None:
    events = build(tables)
    events.to_dir(tmp_path)
    with pytest.raises(FileExistsError, match="already holds event tables"):
        events.to_dir(tmp_path, format="csv")
    events.to_dir(tmp_path, format="csv", overwrite=True)
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob(".*tmp"))


def test_a_failed_write_leaves_no_file(tables: Tables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kw: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        build(tables).to_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_from_dir_errors(tables: Tables, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="event data folder does not exist"):
        rs.EventData.from_dir(tmp_path / "nope")
    build(tables).to_dir(tmp_path)
    tables["statements"].to_csv(tmp_path / "statements.csv", index=False)
    with pytest.raises(rs.DataValidationError, match=r"statements: must be stored once; got \['statements.parquet', "):
        rs.EventData.from_dir(tmp_path)
    for p in tmp_path.iterdir():
        p.unlink()
    tables["statements"].to_csv(tmp_path / "statements.csv", index=False)
    with pytest.raises(FileNotFoundError, match="no accounts table"):
        rs.EventData.from_dir(tmp_path)


def test_from_dir_validates(tables: Tables, tmp_path: Path) -> None:
    tables["statements"].loc[0, "dpd"] = -2
    for name, df in tables.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    with pytest.raises(rs.DataValidationError, match=r"statements\.dpd: must be >= 0; got -2"):
        rs.EventData.from_dir(tmp_path)
