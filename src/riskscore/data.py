"""The event data: the five tables riskscore reads, validated once.

`EventData` is what every builder takes. On construction it checks every rule of
the data contract, reports *all* problems at once in one `DataValidationError`,
and normalises the tables so later steps never re-check them:

* dates parsed to ``datetime64[ns]`` (text must be ISO 8601),
* amounts as ``float64``, day counts as ``int64``,
* ``account_id`` as ``int64`` (or text, when the ids are not integers),
* labels (``product``, ``timezone``, ``category``, ``channel``, ``outcome``,
  ``direction``) as pandas categoricals,
* every table sorted by ``account_id`` then time, with a fresh ``RangeIndex``.

Nothing is dropped, filled or coerced silently. The one documented default that
changes a value: an unpaid instalment's empty ``amount_paid`` is stored as ``0``.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import tempfile
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from riskscore.errors import DataValidationError, Problem

__all__ = ["TABLES", "EventData"]

logger = logging.getLogger(__name__)

TABLES: tuple[str, ...] = ("accounts", "statements", "installments", "transactions", "contacts")
"""The table names of the data contract, in the order they are described."""

_EVENT_TABLES = ("statements", "installments", "transactions")
_METADATA_FILE = "_eventdata.json"
_MAX_EXAMPLES = 5

Kind = Literal["id", "date", "number", "integer", "category", "timezone"]


@dataclass(frozen=True)
class _Column:
    name: str
    kind: Kind
    required: bool
    nullable: bool = False
    non_negative: bool = False


def _c(name: str, kind: Kind, *, required: bool = True, **kw: bool) -> _Column:
    return _Column(name, kind, required, **kw)


_SCHEMA: dict[str, tuple[_Column, ...]] = {
    "accounts": (
        _c("account_id", "id"),
        _c("open_date", "date"),
        _c("credit_limit", "number", non_negative=True),
        _c("product", "category", required=False, nullable=True),
        _c("timezone", "timezone", required=False, nullable=True),
        _c("close_date", "date", required=False, nullable=True),
    ),
    "statements": (
        _c("account_id", "id"),
        _c("statement_date", "date"),
        _c("balance", "number"),
        _c("payment", "number"),
        _c("dpd", "integer", non_negative=True),
        _c("min_due", "number", required=False, nullable=True, non_negative=True),
        _c("credit_limit", "number", required=False, nullable=True, non_negative=True),
    ),
    "installments": (
        _c("account_id", "id"),
        _c("due_date", "date"),
        _c("amount_due", "number", non_negative=True),
        _c("paid_date", "date", nullable=True),
        _c("amount_paid", "number", nullable=True, non_negative=True),
        _c("instalment_no", "integer", required=False, non_negative=True),
    ),
    "transactions": (
        _c("account_id", "id"),
        _c("timestamp", "date"),
        _c("amount", "number"),
        _c("category", "category", required=False, nullable=True),
        _c("channel", "category", required=False, nullable=True),
    ),
    "contacts": (
        _c("account_id", "id"),
        _c("timestamp", "date"),
        _c("channel", "category"),
        _c("outcome", "category"),
        _c("direction", "category", required=False, nullable=True),
    ),
}

# The time at which each table's rows become known (DESIGN.md section 1); events are
# sorted by it within an account, and none may lie before the account's open_date.
TIME_COLUMN: dict[str, str] = {
    "accounts": "open_date",
    "statements": "statement_date",
    "installments": "due_date",
    "transactions": "timestamp",
    "contacts": "timestamp",
}
_SORT_KEYS: dict[str, list[str]] = {
    "accounts": ["account_id"],
    "statements": ["account_id", "statement_date"],
    "installments": ["account_id", "due_date", "paid_date"],
    "transactions": ["account_id", "timestamp"],
    "contacts": ["account_id", "timestamp"],
}
_NOT_BEFORE_OPEN: dict[str, tuple[str, ...]] = {
    "statements": ("statement_date",),
    "installments": ("due_date", "paid_date"),
    "transactions": ("timestamp",),
    "contacts": ("timestamp",),
}


def _fmt(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    return str(value)


class _Checker:
    """Collects the problems of one table, with example account_ids."""

    def __init__(self, table: str, frame: pd.DataFrame, problems: list[Problem]) -> None:
        self.table = table
        self.frame = frame
        self.problems = problems
        ids = frame["account_id"] if "account_id" in frame.columns else None
        self.ids = ids if isinstance(ids, pd.Series) else None

    def add(self, column: str | None, rule: str, message: str, mask: Any = None) -> None:
        n_rows = n_accounts = 0
        examples: tuple[object, ...] = ()
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            n_rows = int(mask.sum())
            if self.ids is not None:
                found = pd.unique(self.ids[mask].dropna().to_numpy())
                n_accounts = len(found)
                examples = tuple(_plain(v) for v in found[:_MAX_EXAMPLES])
        self.problems.append(Problem(self.table, column, rule, message, n_rows, examples, n_accounts))

    def first_bad(self, series: pd.Series, mask: Any) -> str:
        """The first offending value, formatted for a message."""
        values = series.to_numpy()[np.asarray(mask, dtype=bool)]
        return _fmt(values[0]) if len(values) else "?"


def _plain(value: object) -> object:
    """A numpy scalar as the Python value a user would type."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --------------------------------------------------------------------------- kinds


def _to_id(chk: _Checker, col: str, s: pd.Series) -> pd.Series | None:
    null = s.isna().to_numpy()
    if null.any():
        chk.add(col, "not_null", "must not be empty", null)
        return None
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        chk.add(col, "dtype", f"account_id must be integers or text; got dtype {dtype}")
        return None
    if pd.api.types.is_integer_dtype(dtype):
        return s.astype("int64")
    if pd.api.types.is_float_dtype(dtype):
        values = s.to_numpy(dtype="float64")
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            chk.add(
                col,
                "dtype",
                f"account_id must be whole numbers or text; got {chk.first_bad(s, bad)}",
                bad,
            )
            return None
        return s.astype("int64")
    values = s.to_numpy(dtype=object)
    types = {type(v) for v in values}
    if types <= {str}:
        return s.astype(str)
    if all(issubclass(t, (int, np.integer)) and not issubclass(t, (bool, np.bool_)) for t in types):
        return s.astype("int64")
    names = sorted(t.__name__ for t in types)
    bad = np.array([not isinstance(v, str) for v in values])
    chk.add(
        col,
        "dtype",
        f"account_id must be all integers or all text; got mixed types ({', '.join(names)})",
        bad,
    )
    return None


def _to_date(chk: _Checker, col: str, s: pd.Series) -> pd.Series | None:
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        chk.add(
            col,
            "naive_dates",
            f"dates must be naive (one consistent local zone); got time-zone-aware {dtype}: "
            "convert with .dt.tz_convert(zone).dt.tz_localize(None)",
        )
        return None
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        chk.add(col, "dtype", f"must be dates (ISO 8601 text or datetime); got numeric dtype {dtype}")
        return None
    parsed = s if pd.api.types.is_datetime64_dtype(dtype) else _parse_dates(s)
    try:
        out = parsed.astype("datetime64[ns]")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        out = _parse_dates(parsed.astype(object))
    bad = (out.isna() & s.notna()).to_numpy()
    if bad.any():
        chk.add(
            col,
            "parse_date",
            "must be a date in ISO 8601 form (YYYY-MM-DD[ HH:MM:SS]) between 1678 and 2261; "
            f"got {chk.first_bad(s, bad)}",
            bad,
        )
    return out


def _parse_dates(s: pd.Series) -> pd.Series:
    """Text and date objects parsed as ISO 8601; anything else (numbers, lists) is NaT."""
    if not isinstance(s.dtype, pd.StringDtype):
        values = s.to_numpy(dtype=object)
        usable = np.fromiter((_date_like(v) for v in values), dtype=bool, count=len(values))
        if not usable.all():
            s = s.where(usable)
    try:
        return pd.to_datetime(s, format="ISO8601", errors="coerce").astype("datetime64[ns]")
    except Exception:  # mixed zones, odd objects: fall back to one value at a time
        return pd.Series([_parse_one_date(v) for v in s.to_numpy(dtype=object)], index=s.index, dtype="datetime64[ns]")


def _date_like(value: object) -> bool:
    return value is None or isinstance(value, (str, datetime.date, np.datetime64))


def _parse_one_date(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return pd.NaT
    if isinstance(value, (int, float, bool, np.number)):
        return pd.NaT
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except Exception:
        return pd.NaT
    if pd.isna(ts) or ts.tzinfo is not None:
        return pd.NaT
    try:
        return ts.as_unit("ns")
    except Exception:
        return pd.NaT


def _to_number(chk: _Checker, col: str, s: pd.Series) -> pd.Series | None:
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        chk.add(col, "numeric", f"must be numeric; got dtype {dtype}")
        return None
    if pd.api.types.is_numeric_dtype(dtype):
        out = s.astype("float64")
    else:
        values = s.to_numpy(dtype=object)
        flags = np.fromiter((isinstance(v, (bool, np.bool_)) for v in values), dtype=bool, count=len(values))
        source = s.where(~flags) if flags.any() else s  # True/False are not amounts
        try:
            out = pd.to_numeric(source, errors="coerce").astype("float64")
        except Exception:
            out = pd.Series([_number_or_nan(v) for v in values], index=s.index)
        notnum = (out.isna() & s.notna()).to_numpy()
        if notnum.any():
            chk.add(col, "numeric", f"must be numeric; got {chk.first_bad(s, notnum)}", notnum)
    values = out.to_numpy()
    inf = np.isinf(values)
    if inf.any():
        chk.add(col, "finite", f"must be finite; got {chk.first_bad(out, inf)}", inf)
    return out


def _number_or_nan(value: object) -> float:
    if isinstance(value, (bool, np.bool_)):
        return np.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan


def _to_category(chk: _Checker, col: str, s: pd.Series) -> pd.Series | None:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s
    try:
        codes, uniques = pd.factorize(s, sort=False)
    except TypeError:  # unhashable values (lists, dicts)
        bad = np.array([not _is_label(v) for v in s.to_numpy(dtype=object)])
        chk.add(col, "label", f"must be text labels; got {chk.first_bad(s, bad)}", bad)
        return None
    kinds = {_label_kind(v) for v in np.asarray(uniques, dtype=object)}
    if None in kinds or len(kinds) > 1:
        wrong = [i for i, v in enumerate(np.asarray(uniques, dtype=object)) if _label_kind(v) != "text"]
        bad = np.isin(codes, wrong)
        chk.add(col, "label", f"must be text labels; got {chk.first_bad(s, bad)}", bad)
        return None
    return s.astype("category")


def _label_kind(value: object) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    return None


def _is_label(value: object) -> bool:
    return value is None or _label_kind(value) is not None


def _to_timezone(chk: _Checker, col: str, s: pd.Series) -> pd.Series | None:
    out = _to_category(chk, col, s)
    if out is None:
        return None
    bad_names = [name for name in out.cat.categories if not _is_iana(name)]
    if bad_names:
        mask = out.isin(bad_names).to_numpy()
        chk.add(
            col,
            "iana_timezone",
            f"must be an IANA time-zone name such as 'Asia/Shanghai' or empty; got {_fmt(bad_names[0])}",
            mask,
        )
    return out


def _is_iana(name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


_CONVERTERS: dict[Kind, Callable[[_Checker, str, pd.Series], pd.Series | None]] = {
    "id": _to_id,
    "date": _to_date,
    "number": _to_number,
    "integer": _to_number,
    "category": _to_category,
    "timezone": _to_timezone,
}


# --------------------------------------------------------------------------- tables


def _check_table(table: str, frame: object, problems: list[Problem]) -> tuple[pd.DataFrame | None, set[str]]:
    """Convert and check one table on its own; returns it and the columns usable."""
    if not isinstance(frame, pd.DataFrame):
        problems.append(Problem(table, None, "type", f"must be a pandas DataFrame; got {type(frame).__name__}"))
        return None, set()
    dup = frame.columns[frame.columns.duplicated()].unique().tolist()
    if dup:
        problems.append(Problem(table, str(dup[0]), "unique_columns", f"column names must be unique; got {dup} twice"))
        return None, set()
    df = frame.copy()
    chk = _Checker(table, df, problems)
    good: set[str] = set()
    for spec in _SCHEMA[table]:
        if spec.name not in df.columns:
            if spec.required:
                hint = ""
                if spec.name in (df.index.names or []):
                    hint = " (it is the index: call .reset_index() first)"
                chk.add(
                    spec.name,
                    "required_column",
                    f"required column is missing{hint}; got columns {list(map(str, df.columns))}",
                )
            continue
        before = len(problems)
        converted = _CONVERTERS[spec.kind](chk, spec.name, df[spec.name])
        if converted is None:
            continue
        if spec.kind == "integer":
            converted = _to_integer(chk, spec, converted)
        elif spec.kind != "id" and not spec.nullable:
            null = converted.isna().to_numpy() & df[spec.name].isna().to_numpy()
            if null.any():
                chk.add(spec.name, "not_null", "must not be empty", null)
        if spec.non_negative and converted.dtype.kind in "fi":
            neg = (converted < 0).to_numpy()
            if neg.any():
                chk.add(spec.name, "non_negative", f"must be >= 0; got {chk.first_bad(converted, neg)}", neg)
        df[spec.name] = converted
        if len(problems) == before:
            good.add(spec.name)
    return df, good


def _to_integer(chk: _Checker, spec: _Column, s: pd.Series) -> pd.Series:
    values = s.to_numpy(dtype="float64")
    null = np.isnan(values)
    if null.any():
        chk.add(spec.name, "not_null", "must not be empty", null)
    finite = np.isfinite(values)
    frac = finite & (values != np.round(values))
    if frac.any():
        chk.add(spec.name, "integer", f"must be a whole number; got {chk.first_bad(s, frac)}", frac)
    if null.any() or frac.any() or not finite.all():
        return s
    return s.astype("int64")


def _check_installment_payments(chk: _Checker, df: pd.DataFrame, good: set[str]) -> None:
    if not {"paid_date", "amount_paid"} <= good:
        return
    no_date = df["paid_date"].isna().to_numpy()
    amount = df["amount_paid"].to_numpy()
    empty_amount = np.isnan(amount)
    paid = ~empty_amount & (amount > 0)
    bad = no_date & paid
    if bad.any():
        chk.add(
            "paid_date",
            "paid_date_iff_paid",
            f"paid_date must be given when amount_paid > 0; got amount_paid {chk.first_bad(df['amount_paid'], bad)} "
            "with no paid_date",
            bad,
        )
    bad = ~no_date & ~paid
    if bad.any():
        shown = "empty" if empty_amount[bad].any() else "0"
        chk.add(
            "paid_date",
            "paid_date_iff_paid",
            f"paid_date must be empty when nothing was paid; got paid_date "
            f"{chk.first_bad(df['paid_date'], bad)} with amount_paid {shown}",
            bad,
        )
    fill = no_date & empty_amount
    if fill.any():
        logger.info("installments: %d unpaid rows with empty amount_paid stored as 0", int(fill.sum()))
        df["amount_paid"] = df["amount_paid"].fillna(0.0)


def _check_unique(chk: _Checker, df: pd.DataFrame, keys: list[str], what: str) -> None:
    dup = df.duplicated(subset=keys, keep=False).to_numpy()
    if dup.any():
        chk.add(
            keys[-1],
            "unique",
            f"must have one row per {what}; got {int(dup.sum()):,} rows sharing a key",
            dup,
        )


# --------------------------------------------------------------------------- EventData


class EventData:
    """The event tables of a portfolio, validated and normalised once.

    Parameters
    ----------
    accounts : DataFrame
        One row per account: ``account_id``, ``open_date``, ``credit_limit``;
        optional ``product``, ``timezone`` (IANA name) and any static attribute.
    statements, installments, transactions, contacts : DataFrame, optional
        The event tables of DESIGN.md section 1. At least one of ``statements``,
        ``installments`` and ``transactions`` must be given.
    protected : sequence of str, optional
        Columns of ``accounts`` that are protected attributes (age, sex, ...):
        kept for fairness monitoring, never used as features.

    Raises
    ------
    DataValidationError
        If any rule of the data contract is broken. The message lists every
        problem found: table, column, rule, number of rows and up to five
        example ``account_id`` values.

    Examples
    --------
    >>> import pandas as pd, riskscore as rs
    >>> events = rs.EventData(
    ...     accounts=pd.DataFrame({"account_id": [1], "open_date": ["2024-01-05"],
    ...                            "credit_limit": [5000.0]}),
    ...     statements=pd.DataFrame({"account_id": [1], "statement_date": ["2024-02-01"],
    ...                              "balance": [1200.0], "payment": [0.0], "dpd": [0]}))
    >>> events.statements.dtypes["statement_date"]
    dtype('<M8[ns]')
    """

    accounts: pd.DataFrame
    statements: pd.DataFrame | None
    installments: pd.DataFrame | None
    transactions: pd.DataFrame | None
    contacts: pd.DataFrame | None
    protected: tuple[str, ...]

    def __init__(
        self,
        accounts: pd.DataFrame,
        statements: pd.DataFrame | None = None,
        installments: pd.DataFrame | None = None,
        transactions: pd.DataFrame | None = None,
        contacts: pd.DataFrame | None = None,
        *,
        protected: Iterable[str] | None = None,
    ) -> None:
        given = {
            "accounts": accounts,
            "statements": statements,
            "installments": installments,
            "transactions": transactions,
            "contacts": contacts,
        }
        tables = _validate({k: v for k, v in given.items() if v is not None}, protected)
        for name in TABLES:
            setattr(self, name, tables.get(name))
        self.protected = tuple(protected or ())

    # ----------------------------------------------------------------- views

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables present, by name (``EventData(**events.tables)`` rebuilds it)."""
        return {name: df for name in TABLES if (df := getattr(self, name)) is not None}

    @property
    def data_end(self) -> pd.Timestamp:
        """The latest event date in the data (statements, instalments, transactions)."""
        ends = []
        for name in _EVENT_TABLES:
            df = getattr(self, name)
            if df is None or df.empty:
                continue
            for col in _NOT_BEFORE_OPEN[name]:
                ends.append(df[col].max())
        ends = [e for e in ends if pd.notna(e)]
        if not ends:
            raise DataValidationError([Problem("events", None, "empty", "the event tables hold no rows")])
        return pd.Timestamp(max(ends))

    def summary(self) -> pd.DataFrame:
        """One row per table: rows, accounts, first and last date.

        Returns
        -------
        DataFrame
            Indexed by table name, columns ``rows``, ``accounts``, ``first``, ``last``.
        """
        rows = []
        for name, df in self.tables.items():
            col = TIME_COLUMN[name]
            rows.append(
                {
                    "table": name,
                    "rows": len(df),
                    "accounts": df["account_id"].nunique(),
                    "first": df[col].min(),
                    "last": df[col].max(),
                }
            )
        return pd.DataFrame(rows).set_index("table")

    def equals(self, other: object) -> bool:
        """True when ``other`` holds the same tables, values, dtypes and order."""
        if not isinstance(other, EventData) or self.protected != other.protected:
            return False
        mine, theirs = self.tables, other.tables
        return mine.keys() == theirs.keys() and all(mine[k].equals(theirs[k]) for k in mine)

    def __repr__(self) -> str:
        parts = [f"{name}={len(df):,}" for name, df in self.tables.items()]
        return f"EventData({', '.join(parts)})"

    @classmethod
    def _trusted(cls, tables: Mapping[str, pd.DataFrame | None], protected: tuple[str, ...]) -> EventData:
        """Tables already validated and normalised (slices of an EventData): no checks."""
        events = cls.__new__(cls)
        for name in TABLES:
            setattr(events, name, tables.get(name))
        events.protected = protected
        return events

    def _account_range(self, start: int, stop: int) -> EventData:
        """The accounts at positions ``[start, stop)`` and their events, as views.

        Every table is sorted by ``account_id``, so each account range is one
        contiguous block of rows; nothing is copied or validated again.
        """
        ids = self.accounts["account_id"].to_numpy()
        first, last = ids[start], ids[stop - 1]
        tables: dict[str, pd.DataFrame | None] = {"accounts": self.accounts.iloc[start:stop]}
        for name in TABLES[1:]:
            df = getattr(self, name)
            if df is not None:
                col = df["account_id"].to_numpy()
                a, b = np.searchsorted(col, first, side="left"), np.searchsorted(col, last, side="right")
                df = df.iloc[a:b]
            tables[name] = df
        return EventData._trusted(tables, self.protected)

    # ----------------------------------------------------------------- io

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str], *, protected: Iterable[str] | None = None) -> EventData:
        """Read the tables from a folder: one ``<table>.parquet`` or ``<table>.csv`` each.

        A ``<table>.parquet`` may also be a folder of parquet parts. Text ids in CSV
        files that are canonical integers (``"42"``, not ``"042"``) are read as
        integers. Protected columns saved by :meth:`to_dir` are restored unless
        ``protected`` is given.

        Raises
        ------
        FileNotFoundError
            If the folder or its ``accounts`` table is missing.
        DataValidationError
            If a table is present in two formats, or the data breaks the contract.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"event data folder does not exist: {folder}")
        tables: dict[str, pd.DataFrame] = {}
        problems: list[Problem] = []
        for name in TABLES:
            found = [folder / f"{name}{ext}" for ext in (".parquet", ".csv", ".csv.gz")]
            found = [p for p in found if p.exists()]
            if len(found) > 1:
                problems.append(
                    Problem(name, None, "ambiguous_file", f"must be stored once; got {[p.name for p in found]}")
                )
            elif found:
                tables[name] = _read_table(found[0])
        if problems:
            raise DataValidationError(problems)
        if "accounts" not in tables:
            raise FileNotFoundError(f"no accounts table (accounts.parquet or accounts.csv) in {folder}")
        meta_path = folder / _METADATA_FILE
        if protected is None and meta_path.exists():
            protected = json.loads(meta_path.read_text()).get("protected", [])
        return cls(**tables, protected=protected)

    def to_dir(
        self,
        path: str | os.PathLike[str],
        *,
        format: Literal["parquet", "csv"] = "parquet",
        overwrite: bool = False,
    ) -> Path:
        """Write one file per table to a folder, atomically per file.

        Each table is written to a temporary file and renamed into place, so a
        crash never leaves a half-written table under its final name.

        Parameters
        ----------
        path : path
            The folder (created if missing).
        format : {"parquet", "csv"}, default="parquet"
        overwrite : bool, default=False
            Replace table files already there; otherwise finding one is an error.

        Returns
        -------
        Path
            The folder written.
        """
        if format not in ("parquet", "csv"):
            raise ValueError(f"format must be 'parquet' or 'csv'; got {format!r}")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        existing = [
            p.name
            for name in TABLES
            for ext in (".parquet", ".csv", ".csv.gz")
            if (p := folder / f"{name}{ext}").exists()
        ]
        if existing and not overwrite:
            raise FileExistsError(f"{folder} already holds event tables {existing}; pass overwrite=True")
        for name in existing:
            (folder / name).unlink()
        for name, df in self.tables.items():
            _atomic_write(folder / f"{name}.{format}", partial(_write_table, df, format=format))
        meta = json.dumps({"protected": list(self.protected), "format": format}, indent=2) + "\n"
        _atomic_write(folder / _METADATA_FILE, partial(Path.write_text, data=meta))
        return folder


def _validate(given: Mapping[str, object], protected: Iterable[str] | None) -> dict[str, pd.DataFrame]:
    problems: list[Problem] = []
    tables: dict[str, pd.DataFrame] = {}
    good: dict[str, set[str]] = {}
    if "accounts" not in given:
        problems.append(Problem("accounts", None, "required_table", "the accounts table is required"))
    if not any(name in given for name in _EVENT_TABLES):
        problems.append(
            Problem(
                "events",
                None,
                "required_table",
                "at least one of statements, installments, transactions must be given; got none",
            )
        )
    for name, frame in given.items():
        df, ok = _check_table(name, frame, problems)
        if df is not None:
            tables[name] = df
            good[name] = ok
    for name, df in tables.items():
        chk = _Checker(name, df, problems)
        if name == "accounts" and "account_id" in good[name]:
            _check_unique(chk, df, ["account_id"], "account_id")
        if name == "accounts" and {"open_date", "close_date"} <= good[name]:
            early = (df["close_date"] < df["open_date"]).to_numpy()
            if early.any():
                chk.add(
                    "close_date",
                    "not_before_open",
                    f"must not be before open_date; got {chk.first_bad(df['close_date'], early)}",
                    early,
                )
        if name == "statements" and {"account_id", "statement_date"} <= good[name]:
            _check_unique(chk, df, ["account_id", "statement_date"], "(account_id, statement_date)")
        if name == "installments":
            _check_installment_payments(chk, df, good[name])
    if "accounts" in tables:
        _check_against_accounts(tables, good, problems)
    protected = list(protected or ())
    if "accounts" in tables:
        missing = [c for c in protected if c not in tables["accounts"].columns]
        if missing:
            problems.append(
                Problem(
                    "accounts",
                    str(missing[0]),
                    "protected_column",
                    f"protected attributes must be columns of accounts; got {missing}",
                )
            )
    if problems:
        raise DataValidationError(problems)
    for name, df in tables.items():
        tables[name] = _sorted(df, _SORT_KEYS[name])
    return tables


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``df`` stably sorted by ``keys`` (NaT last), without copying when already sorted."""
    arrays = []
    for key in keys:
        col = df[key]
        if pd.api.types.is_integer_dtype(col.dtype):
            arrays.append(col.to_numpy(dtype=np.int64))
        elif pd.api.types.is_datetime64_dtype(col.dtype):
            values = col.to_numpy().view(np.int64).copy()
            values[np.isnat(col.to_numpy())] = np.iinfo(np.int64).max  # NaT last
            arrays.append(values)
        else:
            arrays.append(pd.factorize(col, sort=True)[0].astype(np.int64))
    if len(df) > 1:
        ordered = np.zeros(len(df) - 1, dtype=bool)  # already strictly ordered by an earlier key
        in_order = True
        for values in arrays:
            step = np.diff(values)
            if ((~ordered) & (step < 0)).any():
                in_order = False
                break
            ordered |= step > 0
        if not in_order:
            order = np.lexsort(arrays[::-1])
            return df.take(order).reset_index(drop=True)
    return df.reset_index(drop=True)


def _id_kind(dtype: Any) -> str:
    return "integer" if pd.api.types.is_integer_dtype(dtype) else "text"


def _check_against_accounts(
    tables: dict[str, pd.DataFrame], good: dict[str, set[str]], problems: list[Problem]
) -> None:
    accounts = tables["accounts"]
    if "account_id" not in good["accounts"]:
        return
    ids = accounts["account_id"]
    open_date = None
    if "open_date" in good["accounts"]:
        open_date = pd.Series(accounts["open_date"].to_numpy(), index=ids.to_numpy())
        if not open_date.index.is_unique:
            open_date = open_date[~open_date.index.duplicated()]
    for name, df in tables.items():
        if name == "accounts" or "account_id" not in good[name]:
            continue
        chk = _Checker(name, df, problems)
        ev_ids = df["account_id"]
        if _id_kind(ev_ids.dtype) != _id_kind(ids.dtype):
            chk.add(
                "account_id",
                "dtype",
                f"account_id must have the type of accounts.account_id ({ids.dtype}); got {ev_ids.dtype}",
            )
            continue
        known = ev_ids.isin(ids).to_numpy()
        if not known.all():
            chk.add(
                "account_id",
                "known_account",
                f"every account_id must exist in accounts; got unknown account_id {chk.first_bad(ev_ids, ~known)}",
                ~known,
            )
        if open_date is None:
            continue
        opened = open_date.reindex(ev_ids.to_numpy()).to_numpy()
        for col in _NOT_BEFORE_OPEN[name]:
            if col not in good[name]:
                continue
            when = df[col].to_numpy()
            early = known & ~np.isnat(when) & (when < opened)
            if early.any():
                chk.add(
                    col,
                    "not_before_open",
                    f"must not be before the account's open_date; got {chk.first_bad(df[col], early)} "
                    f"for an account opened {_fmt(pd.Timestamp(opened[early][0]))}",
                    early,
                )


# --------------------------------------------------------------------------- files


def _read_table(path: Path) -> pd.DataFrame:
    if path.name.endswith(".parquet"):
        return pd.read_parquet(path)
    # pandas 3 parses floats exactly by default (and deprecates the option); pandas 2 needs asking.
    if int(pd.__version__.split(".")[0]) >= 3:
        df = pd.read_csv(path, dtype={"account_id": str})
    else:
        df = pd.read_csv(path, dtype={"account_id": str}, float_precision="round_trip")
    if "account_id" in df.columns:
        df["account_id"] = _canonical_int_ids(df["account_id"])
    return df


def _canonical_int_ids(ids: pd.Series) -> pd.Series:
    """Text ids as int64 when every one is a canonical integer, else unchanged."""
    text = ids.dropna().astype(str)
    if text.empty or not text.str.fullmatch(r"-?(0|[1-9][0-9]{0,17})").all() or ids.isna().any():
        return ids
    return ids.astype("int64")


def _write_table(df: pd.DataFrame, path: Path, *, format: str) -> None:
    if format == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")


def _atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; use the usual mode
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
