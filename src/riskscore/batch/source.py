"""Where a chunk's event rows come from: an ``EventData`` in memory or a folder of tables.

A folder is checked once (files present, required columns) with the same rules
``EventData.from_dir`` applies; parquet tables are then read chunk by chunk with
row-group filters on ``account_id``, so memory follows the chunk size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore._io import sha256_file
from riskscore.data import EventData
from riskscore.data.files import (
    check_complete,
    find_tables,
    missing_columns,
    read_protected,
    read_table,
    unreadable,
)
from riskscore.errors import DataValidationError, Problem

__all__ = ["Source", "validated"]


class Source:
    """Where a chunk's event rows come from: an EventData in memory or a folder of tables."""

    def __init__(self, events: EventData | str | os.PathLike[str]) -> None:
        self.memory: EventData | None = events if isinstance(events, EventData) else None
        self.folder: Path | None = None if self.memory is not None else Path(events)  # type: ignore[arg-type]
        self.files: dict[str, Path] = {}
        self.loaded: dict[str, pd.DataFrame] = {}
        self.datasets: dict[str, Any] = {}
        self.protected: tuple[str, ...] | None = None
        if self.memory is not None:
            self.accounts = self.memory.accounts
            self.protected = self.memory.protected
            return
        folder = self.folder
        assert folder is not None
        if not folder.is_dir():
            raise FileNotFoundError(f"event data folder does not exist: {folder}")
        self.files, problems = find_tables(folder)
        problems += check_complete(folder, self.files)
        if problems:
            raise DataValidationError(problems)
        if "accounts" not in self.files:
            raise FileNotFoundError(f"no accounts table (accounts.parquet or accounts.csv) in {folder}")
        problems = missing_columns(self.files)
        if problems:
            raise DataValidationError(problems)  # a whole table is wrong: stop before any work
        self.protected = read_protected(folder)
        self.accounts = read_table(self.files["accounts"])
        problems = self._id_kinds()
        if problems:
            raise DataValidationError(problems)
        for name, path in self.files.items():
            if name != "accounts" and not path.name.endswith(".parquet"):
                self.loaded[name] = read_table(path)  # CSV has no row-group statistics: read once

    def _id_kinds(self) -> list[Problem]:
        """A problem for each parquet table whose ``account_id`` is not of the accounts' kind (integers or text)."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        integers = pd.api.types.is_integer_dtype(self.accounts["account_id"].dtype)
        problems = []
        for name, path in self.files.items():
            if name == "accounts" or not path.name.endswith(".parquet"):
                continue
            try:
                kind = ds.dataset(path, format="parquet").schema.field("account_id").type
            except (pa.ArrowException, OSError, KeyError) as exc:
                raise unreadable(path, exc) from exc
            if pa.types.is_integer(kind) != integers:
                want = "integers" if integers else "text"
                problems.append(
                    Problem(
                        name,
                        "account_id",
                        "id_kind",
                        f"must be of the kind of accounts.account_id ({want}); the file {path.name} holds {kind}",
                    )
                )
        return problems

    def fingerprint(self) -> str:
        """SHA-256 of the inputs' contents: each table file's name, size and bytes, or each table's values.

        Part of a run's identity: a resume after the event data changed is refused
        instead of keeping scores computed from the old data.
        """
        digest = hashlib.sha256()
        digest.update(repr(tuple(self.protected or ())).encode())
        if self.memory is not None:
            for name, df in sorted(self.memory.tables.items()):
                digest.update(f"{name}:{list(df.columns)}:{[str(t) for t in df.dtypes]}:{len(df)}".encode())
                digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
            return digest.hexdigest()
        for name, path in sorted(self.files.items()):
            digest.update(f"{name}:{path.name}:{path.stat().st_size}:{sha256_file(path)}".encode())
        return digest.hexdigest()

    def account_ids(self) -> np.ndarray:
        """The distinct account ids of the accounts table."""
        ids = self.accounts["account_id"]
        if ids.isna().any():
            rows = np.flatnonzero(ids.isna().to_numpy())[:5].tolist()
            raise DataValidationError(
                [Problem("accounts", "account_id", "missing", f"must not be empty; empty in rows {rows}")]
            )
        return np.asarray(pd.unique(ids.to_numpy()), dtype=ids.to_numpy().dtype)

    def chunk(self, ids: np.ndarray) -> dict[str, pd.DataFrame]:
        """The raw rows of every table for the accounts ``ids`` (sorted)."""
        lo, hi = ids[0], ids[-1]
        wanted = set(ids.tolist())
        out: dict[str, pd.DataFrame] = {}
        if self.memory is not None:
            # Tables are sorted by account_id: each chunk is one block of rows.
            for name, df in self.memory.tables.items():
                if name == "accounts":
                    df = self.accounts  # in the same order, with what the run adds (customer flags)
                col = df["account_id"]
                left = int(np.searchsorted(col.to_numpy(), lo, side="left"))
                right = int(np.searchsorted(col.to_numpy(), hi, side="right"))
                out[name] = df.iloc[left:right]
            return out
        for name in self.files:
            if name == "accounts":
                df = self.accounts
            elif name in self.loaded:
                df = self.loaded[name]
            else:
                import pyarrow as pa
                import pyarrow.dataset as ds

                try:
                    if name not in self.datasets:
                        self.datasets[name] = ds.dataset(self.files[name], format="parquet")
                    table = self.datasets[name].to_table(
                        filter=(ds.field("account_id") >= lo) & (ds.field("account_id") <= hi)
                    )
                except (pa.ArrowException, OSError) as exc:
                    raise unreadable(self.files[name], exc) from exc
                df = table.to_pandas()
                del table
            out[name] = df.loc[df["account_id"].isin(wanted).to_numpy()].reset_index(drop=True)
        if self.datasets:
            import pyarrow as pa

            pa.default_memory_pool().release_unused()  # give freed buffers back: memory follows the chunk
        return out


def validated(
    tables: dict[str, pd.DataFrame], protected: tuple[str, ...] | None
) -> tuple[EventData | None, list[tuple[Any, str]]]:
    """The chunk's events, with the accounts whose rows break the contract set aside (bisection)."""
    try:
        return EventData(**tables, protected=protected), []
    except DataValidationError as exc:
        ids = pd.unique(tables["accounts"]["account_id"].dropna().to_numpy())
        if len(ids) <= 1:
            return None, [(a, str(exc).replace("\n", " ")) for a in ids]
        first, second = ids[: len(ids) // 2], ids[len(ids) // 2 :]
        errors: list[tuple[Any, str]] = []
        parts = []
        for half in (first, second):
            keep = set(half.tolist())
            sub = {n: df.loc[df["account_id"].isin(keep).to_numpy()] for n, df in tables.items()}
            events, errs = validated(sub, protected)
            errors += errs
            if events is not None:
                parts.append(events.tables)
        if not parts:
            return None, errors
        merged = {n: pd.concat([p[n] for p in parts if n in p], ignore_index=True) for n in parts[0]}
        return EventData(**merged, protected=protected), errors


# --------------------------------------------------------------------------- the chunk
