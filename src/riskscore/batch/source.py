"""Where a chunk's event rows come from: an ``EventData`` in memory or a folder of tables.

A folder is checked once (files present, required columns) with the same rules
``EventData.from_dir`` applies; parquet tables are then read chunk by chunk with
row-group filters on ``account_id``, so memory follows the chunk size.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
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

__all__ = ["ChunkRows", "Source", "chunk_tables", "validated"]


class Source:
    """Where a chunk's event rows come from: an EventData in memory or a folder of tables."""

    def __init__(self, events: EventData | str | os.PathLike[str]) -> None:
        self.memory: EventData | None = events if isinstance(events, EventData) else None
        self.folder: Path | None = None if self.memory is not None else Path(events)  # type: ignore[arg-type]
        self.files: dict[str, Path] = {}
        self.loaded: dict[str, pd.DataFrame] = {}
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
            # A table may be a folder of parquet parts: every file in it counts.
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                where = file.relative_to(path.parent)
                digest.update(f"{name}:{where}:{file.stat().st_size}:{sha256_file(file)}".encode())
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

    def chunks(self, size: int) -> list[np.ndarray]:
        """The accounts in chunks of about ``size``, never splitting a customer; each chunk's ids sorted.

        Without ``accounts.customer_id`` every account is its own customer and
        the chunks are consecutive runs of ``size`` sorted ids. With it, a
        customer goes where its smallest account id falls in that order and a
        chunk closes at the first customer boundary at or after ``size``
        accounts, so its accounts are scored together (their outreach and their
        customer features need each other) whatever the chunk size. An empty
        ``customer_id`` makes the account its own customer here; validation
        then refuses it in its chunk.
        """
        ids = self.account_ids()
        if "customer_id" not in self.accounts.columns:
            ids = np.sort(ids)
            return [ids[i : i + size] for i in range(0, len(ids), size)]
        frame = self.accounts[["account_id", "customer_id"]].drop_duplicates("account_id")
        account = frame["account_id"].to_numpy()
        codes = pd.factorize(frame["customer_id"], use_na_sentinel=True)[0]
        alone = codes < 0
        codes[alone] = codes.max(initial=-1) + 1 + np.arange(int(alone.sum()))
        rank = pd.factorize(account, sort=True)[0]  # the account's place in sorted id order
        first = np.full(codes.max(initial=-1) + 1, len(rank), dtype=np.int64)
        np.minimum.at(first, codes, rank)
        order = np.lexsort((rank, first[codes]))
        key = first[codes][order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # where a customer begins
        out = []
        at = 0
        while at < len(order):
            k = int(np.searchsorted(starts, at + size, side="left"))
            end = int(starts[k]) if k < len(starts) else len(order)
            out.append(np.sort(account[order[at:end]]))
            at = end
        return out

    def chunk(self, ids: np.ndarray) -> dict[str, pd.DataFrame]:
        """The raw rows of every table for the accounts ``ids`` (sorted; not always consecutive)."""
        if self.memory is not None:
            return _memory_rows(self.memory.tables, self.accounts, ids)
        return self._on_disk(ids).read()

    def deferred(self, ids: np.ndarray) -> ChunkRows | dict[str, pd.DataFrame]:
        """The chunk's rows for a worker on this machine: the parquet tables left on disk for it to read.

        The parent then never holds a chunk's event rows (its memory does not
        follow the chunk size or the book); an in-memory EventData's rows are
        sliced here as :meth:`chunk` does.
        """
        if self.memory is not None:
            return self.chunk(ids)
        return self._on_disk(ids)

    def _on_disk(self, ids: np.ndarray) -> ChunkRows:
        wanted = set(ids.tolist())
        frames: dict[str, pd.DataFrame] = {}
        files: dict[str, Path] = {}
        for name, path in self.files.items():
            if name == "accounts" or name in self.loaded:
                df = self.accounts if name == "accounts" else self.loaded[name]
                frames[name] = df.loc[df["account_id"].isin(wanted).to_numpy()].reset_index(drop=True)
            else:
                files[name] = path.absolute()  # a worker started elsewhere reads the same file
        return ChunkRows(ids, list(self.files), frames, files)


@dataclass(frozen=True)
class ChunkRows:
    """A chunk's rows, the parquet tables still on disk: :meth:`read` in the worker that builds the chunk."""

    ids: np.ndarray
    order: list[str]
    frames: dict[str, pd.DataFrame]
    files: dict[str, Path]

    def read(self) -> dict[str, pd.DataFrame]:
        """Every table's rows for the chunk's accounts, in the folder's table order."""
        wanted = set(self.ids.tolist())
        out: dict[str, pd.DataFrame] = {}
        for name in self.order:
            if name in self.frames:
                out[name] = self.frames[name]
            else:
                df = _read_parquet(self.files[name], self.ids)
                out[name] = df.loc[df["account_id"].isin(wanted).to_numpy()].reset_index(drop=True)
        if self.files:
            import pyarrow as pa

            pa.default_memory_pool().release_unused()  # give freed buffers back: memory follows the chunk
        return out


def chunk_tables(tables: ChunkRows | dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """A chunk function's tables: read now when they were left on disk."""
    return tables.read() if isinstance(tables, ChunkRows) else tables


def _memory_rows(tables: dict[str, pd.DataFrame], accounts: pd.DataFrame, ids: np.ndarray) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    # Tables are sorted by account_id: each account is one block of rows.
    for name, df in tables.items():
        if name == "accounts":
            df = accounts  # in the same order, with what the run adds (customer flags)
        col = df["account_id"].to_numpy()
        left = np.searchsorted(col, ids, side="left")
        right = np.searchsorted(col, ids, side="right")
        if len(ids) and int(right[-1] - left[0]) == int((right - left).sum()):
            out[name] = df.iloc[int(left[0]) : int(right[-1])]  # one block: no copy
        else:
            rows = np.concatenate([np.arange(a, b) for a, b in zip(left.tolist(), right.tolist(), strict=True)])
            out[name] = df.iloc[rows.astype(np.int64)].reset_index(drop=True)
    return out


_INDEX: dict[tuple[str, int, int], tuple[Any, list[Any]]] = {}
"""Per process: each parquet table's schema and row-group ranges, by path, modification time and size."""


def _read_parquet(path: Path, ids: np.ndarray) -> pd.DataFrame:
    """The rows of ``ids`` from a parquet table: only the row groups whose id range holds one of them."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        info = path.stat()
        key = (str(path), info.st_mtime_ns, info.st_size)
        if key not in _INDEX:
            dataset = ds.dataset(path, format="parquet")
            _INDEX[key] = (dataset.schema, _row_groups(dataset))
        schema, files = _INDEX[key]
        wanted = ds.field("account_id").isin(pa.array(ids.tolist()))
        pieces = []
        for fragment, groups, known, low, high in files:
            hit = ~known
            if known.any():
                # A group holds a wanted id when some id lies in [low, high].
                lo, hi = np.asarray(low, dtype=ids.dtype), np.asarray(high, dtype=ids.dtype)
                hit[known] = np.searchsorted(ids, lo, "left") < np.searchsorted(ids, hi, "right")
            take = [g for g, h in zip(groups, hit.tolist(), strict=True) if h]
            if take:
                pieces.append(fragment.subset(row_group_ids=take).to_table(filter=wanted, schema=schema))
        table = pa.concat_tables(pieces) if pieces else schema.empty_table()
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(path, exc) from exc
    df = table.to_pandas()
    del table
    return df


def _row_groups(dataset: Any) -> list[tuple[Any, list[int], np.ndarray, np.ndarray, np.ndarray]]:
    """Per file of a parquet dataset: its row groups, whether each has ``account_id`` statistics, their ranges."""
    out = []
    for fragment in dataset.get_fragments():
        fragment.ensure_complete_metadata()
        groups, low, high = [], [], []
        for group in fragment.row_groups:
            stats = (group.statistics or {}).get("account_id") or {}
            groups.append(group.id)
            low.append(stats.get("min"))
            high.append(stats.get("max"))
        known = np.array([a is not None and b is not None for a, b in zip(low, high, strict=True)], dtype=bool)
        values = [np.array([v for v, k in zip(col, known.tolist(), strict=True) if k]) for col in (low, high)]
        out.append((fragment, groups, known, values[0], values[1]))
    return out


def validated(
    tables: dict[str, pd.DataFrame], protected: tuple[str, ...] | None
) -> tuple[EventData | None, list[tuple[Any, str]]]:
    """The chunk's events, with the customers whose rows break the contract set aside (bisection).

    A customer is set aside whole: its other accounts' features and its one
    outreach decision read the account at fault, so scoring them without it
    would rest on partial data. Each of its accounts gets the validation message.
    """
    accounts = tables["accounts"]
    ids = accounts["account_id"]
    owner = accounts["customer_id"] if "customer_id" in accounts.columns else ids
    return _bisect(tables, protected, pd.Series(owner.to_numpy(), index=ids.to_numpy()))


def _bisect(
    tables: dict[str, pd.DataFrame], protected: tuple[str, ...] | None, owner: pd.Series
) -> tuple[EventData | None, list[tuple[Any, str]]]:
    try:
        return EventData(**tables, protected=protected), []
    except DataValidationError as exc:
        present = owner[owner.index.notna()]
        units = pd.unique(present.to_numpy())
        if len(units) <= 1:
            message = str(exc).replace("\n", " ")
            return None, [(a, message) for a in pd.unique(present.index.to_numpy())]
        first, second = units[: len(units) // 2], units[len(units) // 2 :]
        errors: list[tuple[Any, str]] = []
        parts = []
        for half in (first, second):
            keep = set(present.index[present.isin(set(half.tolist()))].tolist())
            sub = {n: df.loc[df["account_id"].isin(keep).to_numpy()] for n, df in tables.items()}
            events, errs = _bisect(sub, protected, present[present.index.isin(keep)])
            errors += errs
            if events is not None:
                parts.append(events.tables)
        if not parts:
            return None, errors
        merged = {n: pd.concat([p[n] for p in parts if n in p], ignore_index=True) for n in parts[0]}
        return EventData(**merged, protected=protected), errors


# --------------------------------------------------------------------------- the chunk
