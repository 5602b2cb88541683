"""Event tables on disk: finding, reading and writing one file per table.

Shared by :meth:`EventData.from_dir` and batch scoring, so both find the same
files, read them the same way and report the same problems.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from riskscore.data.schema import EVENT_TABLES, NOT_BEFORE_OPEN, SCHEMA, TABLES
from riskscore.errors import DataValidationError, Problem

__all__ = [
    "METADATA_FILE",
    "SUFFIXES",
    "canonical_int_ids",
    "check_complete",
    "columns_of",
    "find_tables",
    "missing_columns",
    "read_protected",
    "read_table",
    "time_span",
    "unreadable",
    "write_table",
]

METADATA_FILE = "_eventdata.json"
SUFFIXES = (".parquet", ".csv", ".csv.gz")


def find_tables(folder: Path) -> tuple[dict[str, Path], list[Problem]]:
    """The file of each table in ``folder``, and a problem for each table stored twice."""
    files: dict[str, Path] = {}
    problems: list[Problem] = []
    for name in TABLES:
        found = [p for p in (folder / f"{name}{ext}" for ext in SUFFIXES) if p.exists()]
        if len(found) > 1:
            names = [p.name for p in found]
            problems.append(Problem(name, None, "ambiguous_file", f"must be stored once; got {names}"))
        elif found:
            files[name] = found[0]
    return files, problems


def check_complete(folder: Path, files: dict[str, Path]) -> list[Problem]:
    """A problem when ``EventData.to_dir`` did not finish writing ``folder`` or its tables changed since.

    A folder without ``_eventdata.json`` (tables written by other tools) has
    nothing to check; one whose record says it is still being written, or whose
    table files differ from the ones recorded (names or sizes), is refused.
    """
    try:
        record = _metadata(folder)
    except DataValidationError as exc:
        return list(exc.problems)
    if record is None:
        return []
    if record.get("state") == "writing":
        return [
            Problem(
                METADATA_FILE,
                None,
                "complete",
                f"{folder} was not completely written (EventData.to_dir was interrupted): write it again",
            )
        ]
    recorded = record.get("files")
    if not isinstance(recorded, dict):
        return []  # written by an earlier riskscore, before the record listed its files
    present = {p.name: p.stat().st_size for p in files.values() if p.is_file()}
    if present != recorded:
        return [
            Problem(
                METADATA_FILE,
                None,
                "complete",
                f"the table files must be the ones EventData.to_dir recorded {sorted(recorded)}; got "
                f"{sorted(present)} with other sizes or names: the folder was changed or partly rewritten",
            )
        ]
    return []


def _table_of(path: Path) -> str:
    name = path.name
    for suffix in SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def unreadable(path: Path, exc: BaseException) -> DataValidationError:
    """The one error for a table file that cannot be read, naming the file and what it must be."""
    kind = "a parquet file" if path.name.endswith(".parquet") else "a CSV file with a header line (UTF-8)"
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    problem = Problem(
        _table_of(path), None, "unreadable", f"the file {path.name} must be {kind}; it cannot be read ({detail})"
    )
    return DataValidationError([problem])


def _read_errors() -> tuple[type[BaseException], ...]:
    import zlib

    import pyarrow as pa

    return (
        pa.ArrowException,
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        OSError,
        EOFError,
        zlib.error,
        ValueError,
    )


def columns_of(path: Path) -> set[str]:
    """The column names of a table file, read without reading its rows (a clear error if it cannot be read)."""
    try:
        if path.name.endswith(".parquet"):
            import pyarrow.dataset as ds

            return set(ds.dataset(path, format="parquet").schema.names)
        return set(pd.read_csv(path, nrows=0).columns)
    except _read_errors() as exc:
        raise unreadable(path, exc) from exc


def missing_columns(files: dict[str, Path]) -> list[Problem]:
    """A ``required_column`` problem for each required column a table file lacks."""
    problems = []
    for name, path in files.items():
        columns = columns_of(path)
        for col in SCHEMA[name]:
            if col.required and col.name not in columns:
                problems.append(
                    Problem(
                        name,
                        col.name,
                        "required_column",
                        f"required column is missing; the file {path.name} has {sorted(columns)}",
                    )
                )
    return problems


def _metadata(folder: Path) -> dict[str, object] | None:
    """``_eventdata.json`` of ``folder`` as a mapping, None without one; unreadable: a ``metadata`` problem."""
    meta = folder / METADATA_FILE
    if not meta.exists():
        return None
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        message = f"must be the JSON riskscore writes; got unreadable text ({exc})"
        raise DataValidationError([Problem(METADATA_FILE, None, "metadata", message)]) from exc
    if not isinstance(record, dict):
        message = f"must be a JSON object; got {type(record).__name__}"
        raise DataValidationError([Problem(METADATA_FILE, None, "metadata", message)])
    return record


def read_protected(folder: Path) -> tuple[str, ...] | None:
    """The protected columns recorded by ``EventData.to_dir``, or None without a record."""
    record = _metadata(folder)
    if record is None:
        return None
    protected = record.get("protected", [])
    if not isinstance(protected, list) or not all(isinstance(c, str) for c in protected):
        problem = Problem(
            METADATA_FILE, None, "metadata", f"protected must be a list of column names; got {protected!r}"
        )
        raise DataValidationError([problem])
    return tuple(protected)


def read_table(path: Path) -> pd.DataFrame:
    """One table file as a DataFrame (CSV account and customer ids that are canonical integers read as integers)."""
    try:
        if path.name.endswith(".parquet"):
            return pd.read_parquet(path)
        # pandas 3 parses floats exactly by default (and deprecates the option); pandas 2 needs asking.
        if int(pd.__version__.split(".")[0]) >= 3:
            df = pd.read_csv(path, dtype={"account_id": str, "customer_id": str})
        else:
            df = pd.read_csv(path, dtype={"account_id": str, "customer_id": str}, float_precision="round_trip")
    except _read_errors() as exc:
        raise unreadable(path, exc) from exc
    for column in ("account_id", "customer_id"):
        if column in df.columns:
            df[column] = canonical_int_ids(df[column])
    return df


def canonical_int_ids(ids: pd.Series) -> pd.Series:
    """Text ids as int64 when every one is a canonical integer, else unchanged."""
    text = ids.dropna().astype(str)
    if text.empty or not text.str.fullmatch(r"-?(0|[1-9][0-9]{0,17})").all() or ids.isna().any():
        return ids
    return ids.astype("int64")


def write_table(df: pd.DataFrame, path: Path, *, format: str) -> None:
    """Write one table as parquet or CSV (dates as ISO text, sub-second digits kept)."""
    if format == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)  # pandas writes as many digits of the seconds as the values need


def time_span(files: dict[str, Path]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and last event time in the table files (parquet statistics where present), or None if empty."""
    import pyarrow.parquet as pq

    lows: list[pd.Timestamp] = []
    highs: list[pd.Timestamp] = []
    for name in EVENT_TABLES:
        path = files.get(name)
        if path is None:
            continue
        columns = list(NOT_BEFORE_OPEN[name])
        if path.name.endswith(".parquet"):
            # A table may be one file or a folder of parts: the statistics of every part's row groups.
            parts = sorted(p for p in path.rglob("*.parquet") if p.is_file()) if path.is_dir() else [path]
            try:
                for part in parts:
                    meta = pq.ParquetFile(part).metadata
                    schema = meta.schema.names
                    for col in columns:
                        j = schema.index(col)
                        for g in range(meta.num_row_groups):
                            stats = meta.row_group(g).column(j).statistics
                            if stats is None or not stats.has_min_max:
                                raise LookupError(col)
                            lows.append(pd.Timestamp(stats.min))
                            highs.append(pd.Timestamp(stats.max))
                continue
            except (LookupError, ValueError):
                pass  # no statistics: read the columns
        df = read_table(path)
        for col in columns:
            values = pd.to_datetime(df[col], errors="coerce", format="ISO8601").dropna()
            if len(values):
                lows.append(values.min())
                highs.append(values.max())
    if not lows:
        return None
    return min(lows), max(highs)
