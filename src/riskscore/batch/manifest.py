"""The output folder's bookkeeping: the manifest of a run, resume, and the marks of completeness.

``_manifest.json`` records the run's parameters and its finished chunks;
``SUCCESS`` is written last, once every input account is accounted for in a
part or in ``_errors.parquet``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from riskscore._io import atomic_text
from riskscore._version import __version__
from riskscore.batch.schemas import write_parquet

__all__ = ["ERRORS", "FORMAT", "MANIFEST", "SUCCESS", "chunk_files_exist", "finish", "prepare_output", "write_manifest"]

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
ERRORS = "_errors.parquet"
FORMAT = 1


def prepare_output(out: Path, params: Mapping[str, Any], resume: bool) -> dict[int, dict[str, int]]:
    """A new output folder, or the finished chunks of the same run found in it (refused otherwise)."""
    manifest = out / MANIFEST
    if out.exists() and any(out.iterdir()):
        if not manifest.exists():
            raise FileExistsError(f"output folder {out} exists and holds other files: give an empty or new folder")
        recorded = json.loads(manifest.read_text())
        if not resume:
            raise FileExistsError(
                f"output folder {out} holds a run already: resume=True finishes it, or use a new folder"
            )
        if recorded.get("params") != dict(params):
            changed = sorted(k for k in params if recorded.get("params", {}).get(k) != params[k])
            raise FileExistsError(
                f"output folder {out} holds a run with other inputs or settings ({', '.join(changed)} differ): "
                "use a new folder"
            )
        return {int(k): v for k, v in recorded.get("done", {}).items()}
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out, params, {}, None)
    return {}


def write_manifest(out: Path, params: Mapping[str, Any], done: Mapping[int, Any], chunks: int | None) -> None:
    """Record the run's parameters and finished chunks."""
    body = {
        "params": dict(params),
        "chunks": chunks,
        "done": {str(k): v for k, v in sorted(done.items())},
        "riskscore": __version__,
    }
    atomic_text(out / MANIFEST, json.dumps(body, indent=1, sort_keys=True))


def chunk_files_exist(out: Path, k: int, staged: bool = False) -> bool:
    """Chunk ``k``'s files are in place (its part, or its staged candidates, and its errors)."""
    first = out / ".stage" / f"candidates-{k:05d}.parquet" if staged else out / f"part-{k:05d}.parquet"
    return first.exists() and (out / ".stage" / f"errors-{k:05d}.parquet").exists()


def finish(
    out: Path, params: Mapping[str, Any], done: Mapping[int, Any], chunks: int, accounts: int
) -> tuple[int, int]:
    """Gather errors, reconcile counts, and only then mark the output complete."""
    missing = [k for k in range(chunks) if k not in done or not chunk_files_exist(out, k)]
    if params.get("outreach") is not None:
        missing += [k for k in range(chunks) if not done.get(k, {}).get("final")]
    if missing:
        raise RuntimeError(f"chunks {missing[:5]} did not finish; rerun to resume")
    parts = [pd.read_parquet(out / ".stage" / f"errors-{k:05d}.parquet") for k in range(chunks)]
    errors = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["account_id", "reason"])
    scored = sum(int(d["scored"]) for d in done.values())
    if scored + len(errors) != accounts:
        raise RuntimeError(
            f"row counts do not reconcile: {scored} scored + {len(errors)} errors != {accounts} accounts; "
            "the output is not marked complete"
        )
    write_parquet(out / ERRORS, errors)
    summary = {"accounts": accounts, "scored": scored, "errors": len(errors), "chunks": chunks, "params": dict(params)}
    atomic_text(out / SUCCESS, json.dumps(summary, indent=1, sort_keys=True))
    return scored, len(errors)
