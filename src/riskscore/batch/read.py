"""Reading a batch output: only a complete one, whole, or a clear error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from riskscore.batch.manifest import ERRORS, EXCLUDED, INCOMPLETE, MANIFEST, SUCCESS, part_path
from riskscore.errors import BatchOutputError

__all__ = ["read_scores"]


def read_scores(output: str | os.PathLike[str], errors: bool = False, excluded: bool = False) -> pd.DataFrame:
    """The scores of a finished :func:`riskscore.score_batch` run, one row per scored account.

    With a policy the rows carry the outreach decisions too. An output that is
    not complete is refused: no ``_SUCCESS``, an ``INCOMPLETE`` mark, a part
    missing, unreadable or of another run, or counts that do not reconcile.

    Parameters
    ----------
    output : path
        The run's output folder.
    errors : bool, default=False
        Return the accounts whose rows break the data contract instead
        (``account_id``, ``reason``).
    excluded : bool, default=False
        Return the valid accounts outside the scoring population at ``as_of``
        instead (not open, or past due; ``account_id``, ``reason``).

    Returns
    -------
    DataFrame
        Rows in ``account_id`` order; ``attrs`` hold ``model_version`` and ``as_of``.

    Raises
    ------
    BatchOutputError
        If the folder is not a complete batch output.
    """
    out = Path(output)
    if not out.is_dir():
        raise BatchOutputError(f"batch output {out}: no such folder")
    if (out / INCOMPLETE).exists() or not (out / SUCCESS).exists():
        raise BatchOutputError(
            f"batch output {out} is not complete (no {SUCCESS}, or an {INCOMPLETE} mark): the run is still "
            "writing or was interrupted; rerun the same command to finish it"
        )
    summary = _json(out / SUCCESS)
    manifest = _json(out / MANIFEST)
    if summary.get("params") != manifest.get("params"):
        raise BatchOutputError(
            f"batch output {out}: {SUCCESS} and {MANIFEST} describe different runs; score into a new folder"
        )
    chunks = summary.get("chunks")
    if not isinstance(chunks, int) or chunks < 0:
        raise BatchOutputError(f"{out / SUCCESS}: chunks must be a whole number; got {chunks!r}")
    if errors and excluded:
        raise ValueError("read_scores: ask for errors or for excluded accounts, not both")
    if errors or excluded:
        name, what = (ERRORS, "errors") if errors else (EXCLUDED, "excluded")
        frame = _read([out / name])
        expected = summary.get(what)
    else:
        wanted = [part_path(out, k) for k in range(chunks)]
        missing = [p.name for p in wanted if not p.is_file()]
        extra = sorted({p.name for p in out.glob("part-*.parquet")} - {p.name for p in wanted})
        if missing or extra:
            raise BatchOutputError(
                f"batch output {out}: the parts must be exactly part-00000 to part-{max(chunks - 1, 0):05d}; "
                f"missing {missing[:5]}, not of this run {extra[:5]}"
            )
        frame = _read(wanted)
        expected, what = summary.get("scored"), "scored"
    if len(frame) != expected:
        raise BatchOutputError(
            f"batch output {out}: {SUCCESS} records {expected!r} rows {what} but the files hold {len(frame)}; "
            "the folder was changed after the run"
        )
    params = summary.get("params") or {}
    frame.attrs["model_version"] = params.get("model_version")
    frame.attrs["as_of"] = params.get("as_of")
    return frame


def _json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BatchOutputError(f"{path}: must be the JSON riskscore writes; got unreadable content ({exc})") from exc
    if not isinstance(body, dict):
        raise BatchOutputError(f"{path}: must be a JSON object; got {type(body).__name__}")
    return body


def _read(paths: list[Path]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path))
        except (pa.ArrowException, OSError) as exc:
            raise BatchOutputError(
                f"{path}: must be a parquet file riskscore wrote; it cannot be read ({exc})"
            ) from exc
    if not tables:
        return pd.DataFrame()
    first = tables[0].schema
    for path, table in zip(paths, tables, strict=True):
        if not table.schema.equals(first):
            raise BatchOutputError(
                f"{path}: its columns differ from {paths[0].name}'s: the parts are of different runs"
            )
    frame = pa.concat_tables(tables).to_pandas()
    # Parts hold whole customers, so ids of one part need not be consecutive: sort them back.
    return frame.sort_values("account_id", kind="stable").reset_index(drop=True) if len(frame) else frame
