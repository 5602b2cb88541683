"""The pyarrow schemas and row shapes of the batch output's parts and error files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore._io import atomic_write

__all__ = [
    "OUTREACH_COLUMNS",
    "PART_COLUMNS",
    "error_rows",
    "outreach_rows",
    "part_rows",
    "part_schema",
    "schema_for",
    "write_parquet",
]


PART_COLUMNS = ("account_id", "as_of", "pd", "points", "band", "segment", "evidence", "reasons")


def part_schema(id_type: Any) -> Any:
    """The schema of a scores part (ids of ``id_type``)."""
    import pyarrow as pa

    reason = pa.struct([("code", pa.string()), ("text", pa.string()), ("contribution", pa.float64())])
    return pa.schema(
        [
            ("account_id", id_type),
            ("as_of", pa.timestamp("ns")),
            ("pd", pa.float64()),
            ("points", pa.float64()),
            ("band", pa.string()),
            ("segment", pa.string()),
            ("evidence", pa.list_(pa.string())),
            ("reasons", pa.list_(reason)),
        ]
    )


OUTREACH_COLUMNS = (
    "customer_id", "action", "channel", "contact_id", "send_after", "timezone", "offer", "message", "blocked",
    "expected_benefit", "control", "treatment",
    "model_version", "policy_version",
)  # fmt: skip


def outreach_schema(id_type: Any, customer_type: Any = None) -> Any:
    """The schema of a scores-and-outreach part (ids of ``id_type``, customers of ``customer_type``)."""
    import pyarrow as pa

    base = part_schema(id_type)
    offer = pa.struct(
        [("instalment", pa.float64()), ("term_months", pa.int64()), ("total", pa.float64()), ("first_due", pa.string())]
    )
    blocked = pa.struct([("rule", pa.string()), ("channel", pa.string()), ("why", pa.string())])
    fields = [
        ("customer_id", id_type if customer_type is None else customer_type),
        ("action", pa.string()),
        ("channel", pa.string()),
        ("contact_id", pa.string()),
        ("send_after", pa.timestamp("ns", tz="UTC")),
        ("timezone", pa.string()),
        ("offer", offer),
        ("message", pa.string()),
        ("blocked", pa.list_(blocked)),
        ("expected_benefit", pa.float64()),
        ("control", pa.bool_()),
        ("treatment", pa.string()),
        ("model_version", pa.string()),
        ("policy_version", pa.string()),
    ]
    return pa.schema([*base, *[pa.field(n, t) for n, t in fields]])


_EMPTY_DTYPES: dict[str, Any] = {
    "as_of": "datetime64[ns]",
    "send_after": pd.DatetimeTZDtype("ns", "UTC"),
    "pd": np.float64,
    "points": np.float64,
    "expected_benefit": np.float64,
    "control": bool,
}


def _empty(columns: Iterable[str], id_dtype: str, customer_dtype: str | None = None) -> pd.DataFrame:
    """A part with no rows whose columns have the dtypes of the part schema (a chunk with nothing to score)."""
    out = pd.DataFrame({c: pd.Series([], dtype=_EMPTY_DTYPES.get(c, object)) for c in columns})
    out["account_id"] = pd.Series([], dtype=np.dtype(id_dtype))
    if "customer_id" in out.columns:
        out["customer_id"] = pd.Series([], dtype=np.dtype(customer_dtype or id_dtype))
    return out


def outreach_rows(
    out: pd.DataFrame, frame: pd.DataFrame, id_dtype: str, customer_dtype: str | None = None
) -> pd.DataFrame:
    """The rows of a scores-and-outreach part from the decisions and their staged inputs."""
    columns = [*PART_COLUMNS, *OUTREACH_COLUMNS]
    if out.empty:
        return _empty(columns, id_dtype, customer_dtype)
    rows = out.copy()
    rows["points"] = frame["points"].to_numpy()
    rows["evidence"] = [list(e) for e in frame["evidence"]]
    rows["reasons"] = [list(r) for r in rows["reasons"]]
    rows["blocked"] = [list(b) for b in rows["blocked"]]
    rows["segment"] = rows["segment"].astype(object).where(rows["segment"].notna(), None)
    return rows[columns].sort_values("account_id", kind="stable").reset_index(drop=True)


def part_rows(rows: pd.DataFrame, id_dtype: str) -> pd.DataFrame:
    """The rows of a scores part, sorted by account_id."""
    if rows.empty:
        return _empty(PART_COLUMNS, id_dtype)
    out = rows[list(PART_COLUMNS)].copy()
    out["evidence"] = [list(e) for e in out["evidence"]]
    out["reasons"] = [list(r) for r in out["reasons"]]
    return out.sort_values("account_id", kind="stable").reset_index(drop=True)


def error_rows(err: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """The rows of an errors file (account_id of the ids' type, reason), sorted by account_id."""
    out = err.copy()
    out["account_id"] = pd.Series(out["account_id"].tolist(), dtype=pd.Series(ids).dtype)
    out["reason"] = out["reason"].astype(str)
    return out.sort_values("account_id", kind="stable").reset_index(drop=True)


def schema_for(frame: pd.DataFrame) -> Any:
    """The schema a part with ``frame``'s columns is written with (scores, or scores and outreach)."""
    import pyarrow as pa

    def kind(column: str) -> Any:
        return pa.int64() if pd.api.types.is_integer_dtype(frame[column].dtype) else pa.string()

    if "action" not in frame.columns:
        return part_schema(kind("account_id"))
    return outreach_schema(kind("account_id"), kind("customer_id"))


def write_parquet(target: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` to ``target`` atomically; parts (``part-*``) with their fixed schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if target.name.startswith("part-"):
        table = pa.Table.from_pandas(frame, schema=schema_for(frame), preserve_index=False)
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    atomic_write(target, lambda p: pq.write_table(table, p))
