"""The output folder's bookkeeping: the manifest of a run, resume, the lock and the marks of completeness.

``_manifest.json`` records the run's parameters (with a fingerprint of every
input) and its finished chunks. While a run is unfinished its parts wait in
``.stage/`` and a file ``INCOMPLETE`` sits in the folder (``pd.read_parquet``
of the folder then fails on it instead of returning some of the parts);
``finish`` moves the parts into place, removes ``INCOMPLETE`` and writes
``_SUCCESS`` last, once every input account is accounted for in a part, in
``_excluded.parquet`` (valid, but not open or not current at ``as_of``) or in
``_errors.parquet`` (its rows break the data contract). ``.riskscore.lock`` is held (an OS file lock, released
when the process ends, however it ends) for as long as a run writes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from riskscore._io import atomic_text
from riskscore._version import __version__
from riskscore.batch.schemas import write_parquet
from riskscore.errors import BatchOutputError

__all__ = [
    "ERRORS",
    "EXCLUDED",
    "FORMAT",
    "INCOMPLETE",
    "LOCK",
    "MANIFEST",
    "SUCCESS",
    "check_foreign",
    "chunk_files_exist",
    "finish",
    "output_lock",
    "part_path",
    "prepare_output",
    "write_manifest",
]

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
ERRORS = "_errors.parquet"
EXCLUDED = "_excluded.parquet"
INCOMPLETE = "INCOMPLETE"
LOCK = ".riskscore.lock"
FORMAT = 3  # 2: parts staged until the run is complete, inputs fingerprinted; 3: exclusions apart from errors
_OURS = {LOCK, INCOMPLETE}
_INCOMPLETE_TEXT = (
    "This riskscore output folder is not complete: a run is writing it, or was interrupted.\n"
    "Rerun the same command (or score_batch call) to finish it; the scores appear as part-*.parquet,\n"
    "with _SUCCESS, once every account is scored or listed in _excluded.parquet or _errors.parquet.\n"
    "riskscore.read_scores(folder) refuses the folder until then.\n"
)


def part_path(out: Path, k: int, staged: bool = False) -> Path:
    """Where chunk ``k``'s part is: in ``.stage/`` until the run is complete, then in the folder."""
    return out / ".stage" / f"part-{k:05d}.parquet" if staged else out / f"part-{k:05d}.parquet"


def check_foreign(out: Path) -> None:
    """Refuse an output path that is a file, or a folder holding files riskscore did not write."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {out} is a file: give a folder (new or empty, or one of an earlier run)")
    if out.is_dir() and not (out / MANIFEST).exists() and any(p.name not in _OURS for p in out.iterdir()):
        raise FileExistsError(f"output folder {out} exists and holds other files: give an empty or new folder")


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the output folder's lock for a run; a second run into the same folder is refused at once."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _try_lock(fd):
            with open(path, encoding="utf-8", errors="replace") as fh:
                holder = fh.read().strip() or "another process"
            raise BatchOutputError(
                f"output folder {out} is being written by another run ({holder}): two runs into one folder "
                "would mix their results; wait for it to finish or give another folder"
            )
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.write(fd, f"pid {os.getpid()}, started {stamp}".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def prepare_output(out: Path, params: Mapping[str, Any], resume: bool) -> dict[int, dict[str, int]]:
    """A new output folder, or the finished chunks of the same run found in it (refused otherwise)."""
    manifest = out / MANIFEST
    check_foreign(out)
    if manifest.exists():
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8"))
            if not isinstance(recorded, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise BatchOutputError(
                f"{manifest}: must be the JSON manifest riskscore writes; got unreadable content ({exc}): "
                "use a new folder"
            ) from exc
        if not resume:
            raise FileExistsError(
                f"output folder {out} holds a run already: resume=True finishes it, or use a new folder"
            )
        raw_before = recorded.get("params")
        before: dict[str, Any] = raw_before if isinstance(raw_before, dict) else {}
        if before != dict(params):
            changed = sorted(k for k in {**before, **params} if before.get(k) != params.get(k))
            why = (
                "the event data changed since that run started, so its output would mix old and new inputs"
                if "inputs" in changed
                else "its output was computed from other inputs or settings"
            )
            raise FileExistsError(
                f"output folder {out} holds a run with other inputs or settings ({', '.join(changed)} differ): "
                f"{why}; use a new folder"
            )
        if not (out / SUCCESS).exists():
            atomic_text(out / INCOMPLETE, _INCOMPLETE_TEXT)
        return {int(k): v for k, v in recorded.get("done", {}).items()}
    out.mkdir(parents=True, exist_ok=True)
    atomic_text(out / INCOMPLETE, _INCOMPLETE_TEXT)  # before anything else: the folder never looks complete
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
    """Chunk ``k``'s files are in place (its part, or with a policy its candidates, and its errors)."""
    if staged:
        first = (out / ".stage" / f"candidates-{k:05d}.parquet").exists()
    else:
        first = part_path(out, k, staged=True).exists() or part_path(out, k).exists()
    stage = out / ".stage"
    return first and (stage / f"errors-{k:05d}.parquet").exists() and (stage / f"excluded-{k:05d}.parquet").exists()


def finish(
    out: Path, params: Mapping[str, Any], done: Mapping[int, Any], chunks: int, accounts: int
) -> tuple[int, int, int]:
    """Gather errors and exclusions, reconcile counts, and only then mark the output complete.

    Returns the accounts scored, in errors and excluded.
    """
    missing = [k for k in range(chunks) if k not in done or not chunk_files_exist(out, k)]
    if params.get("outreach") is not None:
        missing += [k for k in range(chunks) if not done.get(k, {}).get("final")]
    if missing:
        raise RuntimeError(f"chunks {missing[:5]} did not finish; rerun to resume")
    gathered = {}
    for kind in ("errors", "excluded"):
        parts = [pd.read_parquet(out / ".stage" / f"{kind}-{k:05d}.parquet") for k in range(chunks)]
        gathered[kind] = (
            pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["account_id", "reason"])
        )
    errors, excluded = gathered["errors"], gathered["excluded"]
    scored = sum(int(d["scored"]) for d in done.values())
    if scored + len(errors) + len(excluded) != accounts:
        raise RuntimeError(
            f"row counts do not reconcile: {scored} scored + {len(excluded)} excluded + {len(errors)} errors != "
            f"{accounts} accounts; the output is not marked complete"
        )
    write_parquet(out / ERRORS, errors)
    write_parquet(out / EXCLUDED, excluded)
    for k in range(chunks):  # every part moves into place only now that all are written
        if part_path(out, k, staged=True).exists():
            os.replace(part_path(out, k, staged=True), part_path(out, k))
    (out / INCOMPLETE).unlink(missing_ok=True)
    summary = {"accounts": accounts, "scored": scored, "errors": len(errors), "excluded": len(excluded),
               "chunks": chunks, "params": dict(params)}  # fmt: skip
    atomic_text(out / SUCCESS, json.dumps(summary, indent=1, sort_keys=True))
    return scored, len(errors), len(excluded)
