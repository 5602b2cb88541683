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

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from riskscore._io import atomic_text, fsync_file
from riskscore.data.files import (
    METADATA_FILE,
    SUFFIXES,
    check_complete,
    find_tables,
    read_protected,
    read_table,
    write_table,
)
from riskscore.data.rules import validate
from riskscore.data.schema import EVENT_TABLES, NOT_BEFORE_OPEN, TABLES, TIME_COLUMN
from riskscore.errors import DataValidationError, Problem

__all__ = ["EventData"]


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
        tables = validate({k: v for k, v in given.items() if v is not None}, protected)
        for name in TABLES:
            setattr(self, name, tables.get(name))
        self.protected = tuple(protected or ())

    # ----------------------------------------------------------------- views

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables present, by name (``EventData(**events.tables)`` rebuilds it)."""
        return {name: df for name in TABLES if (df := getattr(self, name)) is not None}

    @property
    def customers(self) -> pd.Series:
        """The customer of each account, indexed by ``account_id``.

        ``accounts.customer_id``, or the account itself when the column is
        absent (every account its own customer).
        """
        accounts = self.accounts
        ids = accounts["account_id"]
        values = accounts["customer_id"] if "customer_id" in accounts.columns else ids
        return pd.Series(values.to_numpy(), index=pd.Index(ids.to_numpy(), name="account_id"), name="customer_id")

    @property
    def data_end(self) -> pd.Timestamp:
        """The latest event date in the data (statements, instalments, transactions)."""
        ends = []
        for name in EVENT_TABLES:
            df = getattr(self, name)
            if df is None or df.empty:
                continue
            for col in NOT_BEFORE_OPEN[name]:
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
        files, problems = find_tables(folder)
        problems += check_complete(folder, files)
        if problems:
            raise DataValidationError(problems)
        if "accounts" not in files:
            raise FileNotFoundError(f"no accounts table (accounts.parquet or accounts.csv) in {folder}")
        tables = {name: read_table(file) for name, file in files.items()}
        if protected is None:
            protected = read_protected(folder)
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
        existing = [p.name for name in TABLES for ext in SUFFIXES if (p := folder / f"{name}{ext}").exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{folder} already holds event tables {existing}; pass overwrite=True")
        # 1. The whole new set under temporary names: a failure here leaves the old set as it was.
        staged: dict[str, Path] = {}
        try:
            for name, df in self.tables.items():
                tmp = folder / f".{name}.{format}.{os.getpid()}.writing"
                write_table(df, tmp, format=format)
                fsync_file(tmp)
                staged[name] = tmp
        except BaseException:
            for leftover in folder.glob(f".*.{format}.{os.getpid()}.writing"):  # staged ones and the failed one
                leftover.unlink(missing_ok=True)
            raise
        # 2. Mark the folder as being written, 3. put the new set in place, 4. record it as complete.
        atomic_text(folder / METADATA_FILE, json.dumps({"state": "writing"}) + "\n")
        for name in existing:
            (folder / name).unlink()
        files = {}
        for name, tmp in staged.items():
            final = folder / f"{name}.{format}"
            os.replace(tmp, final)
            files[final.name] = final.stat().st_size
        meta = {"protected": list(self.protected), "format": format, "state": "complete", "files": files}
        atomic_text(folder / METADATA_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder
