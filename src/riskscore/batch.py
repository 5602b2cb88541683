"""Batch scoring: the whole book in chunks of accounts, resumable, never half-written.

``score_batch`` is orchestration only: each chunk of accounts goes through the
same public pieces a notebook uses (``EventData`` validation, the bundle's
``FeatureBuilder``, ``RiskModel.score`` and ``explain``, ``segment``,
``reason_codes``, and with a policy the outreach decision), and is written to
its own parquet part through a temporary file renamed into place.

Output folder::

    part-00000.parquet ...   one per chunk, rows sorted by account_id
    _errors.parquet          every input account not scored, with the reason (the leading
                             underscore keeps it out of ``pd.read_parquet(output)``)
    _manifest.json           the run's parameters and its finished chunks
    _SUCCESS                 written last, once every account is accounted for

With a policy, capacity is shared by the whole book, so outreach runs in two
passes: every chunk first stages its decision inputs and candidates
(``.stage/``), then one allocation over all candidates decides who gets which
channel, and each chunk's final part is written from its staged inputs. The
result is the one ``recommend`` gives for the whole book at once: it depends on
the inputs only, never on the chunk size, the number of workers or the backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore.data import _SCHEMA, TABLES, EventData
from riskscore.errors import DataValidationError, Problem

__all__ = ["BatchResult", "score_batch"]

log = logging.getLogger("riskscore.batch")

_EXPLAIN = ("all", "recommended", "none")
_MANIFEST = "_manifest.json"
_SUCCESS = "_SUCCESS"
_ERRORS = "_errors.parquet"
_FORMAT = 1


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did: accounts in, scored, listed as errors; time; where the output is."""

    output: Path
    accounts: int
    scored: int
    errors: int
    chunks: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.accounts:,} accounts: {self.scored:,} scored, {self.errors:,} in {_ERRORS}; "
            f"{self.chunks} chunks in {self.seconds:.1f} s -> {self.output}"
        )


# --------------------------------------------------------------------------- sources


class _Source:
    """Where a chunk's event rows come from: an EventData in memory or a folder of tables."""

    def __init__(self, events: EventData | str | os.PathLike[str]) -> None:
        self.memory: EventData | None = events if isinstance(events, EventData) else None
        self.folder: Path | None = None if self.memory is not None else Path(events)  # type: ignore[arg-type]
        self.files: dict[str, Path] = {}
        self.loaded: dict[str, pd.DataFrame] = {}
        self.protected: tuple[str, ...] | None = None
        if self.memory is not None:
            self.accounts = self.memory.accounts
            return
        folder = self.folder
        assert folder is not None
        if not folder.is_dir():
            raise FileNotFoundError(f"event data folder does not exist: {folder}")
        problems = []
        for name in TABLES:
            found = [
                p for p in (folder / f"{name}.parquet", folder / f"{name}.csv", folder / f"{name}.csv.gz") if p.exists()
            ]
            if len(found) > 1:
                problems.append(
                    Problem(name, None, "ambiguous_file", f"must be stored once; got {[p.name for p in found]}")
                )
            elif found:
                self.files[name] = found[0]
        if "accounts" not in self.files:
            raise FileNotFoundError(f"no accounts table (accounts.parquet or accounts.csv) in {folder}")
        for name, path in self.files.items():
            columns = _columns_of(path)
            for col in _SCHEMA[name]:
                if col.required and col.name not in columns:
                    problems.append(
                        Problem(
                            name, col.name, "missing_column", f"is required; the file {path.name} has {sorted(columns)}"
                        )
                    )
        if problems:
            raise DataValidationError(problems)  # a whole table is wrong: stop before any work
        meta = folder / "_eventdata.json"
        if meta.exists():
            self.protected = tuple(json.loads(meta.read_text()).get("protected", []))
        from riskscore.data import _read_table

        self.accounts = _read_table(self.files["accounts"])
        for name, path in self.files.items():
            if name != "accounts" and not path.name.endswith(".parquet"):
                self.loaded[name] = _read_table(path)  # CSV has no row-group statistics: read once

    def account_ids(self) -> np.ndarray:
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
                import pyarrow.dataset as ds

                dataset = ds.dataset(self.files[name], format="parquet")
                table = dataset.to_table(filter=(ds.field("account_id") >= lo) & (ds.field("account_id") <= hi))
                df = table.to_pandas()
            out[name] = df.loc[df["account_id"].isin(wanted).to_numpy()].reset_index(drop=True)
        return out


def _columns_of(path: Path) -> set[str]:
    if path.name.endswith(".parquet"):
        import pyarrow.dataset as ds

        return set(ds.dataset(path, format="parquet").schema.names)
    return set(pd.read_csv(path, nrows=0).columns)


def _validated(
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
            events, errs = _validated(sub, protected)
            errors += errs
            if events is not None:
                parts.append(events.tables)
        if not parts:
            return None, errors
        merged = {n: pd.concat([p[n] for p in parts if n in p], ignore_index=True) for n in parts[0]}
        return EventData(**merged, protected=protected), errors


# --------------------------------------------------------------------------- the chunk


@dataclass(frozen=True)
class _Job:
    model: Any
    as_of: pd.Timestamp
    explain: str
    output: Path
    treatments: Any
    lang: str


def _run_chunk(
    k: int, ids: np.ndarray, tables: dict[str, pd.DataFrame], protected: tuple[str, ...] | None, job: _Job
) -> dict[str, Any]:
    """Score one chunk and write its part (errors first: the part's presence means the chunk is whole)."""
    events, errors = _validated(tables, protected)
    rows = pd.DataFrame()
    if events is not None:
        rows, not_scored = _score(events, job)
        errors += not_scored
    err = pd.DataFrame(errors, columns=["account_id", "reason"])
    _atomic_parquet(job.output / ".stage" / f"errors-{k:05d}.parquet", _error_rows(err, ids))
    _atomic_parquet(job.output / f"part-{k:05d}.parquet", _part_rows(rows))
    return {"chunk": k, "scored": len(rows), "errors": len(err)}


def _score(events: EventData, job: _Job) -> tuple[pd.DataFrame, list[tuple[Any, str]]]:
    from riskscore.labels import observation_dates

    as_of = job.as_of
    day = as_of.strftime("%Y-%m-%d")
    opened = observation_dates(events, freq="D", start=as_of, end=as_of, eligible="all")
    current = observation_dates(events, freq="D", start=as_of, end=as_of, eligible="current")
    errors: list[tuple[Any, str]] = []
    ids = events.accounts["account_id"]
    open_ids = set(opened["account_id"].tolist())
    current_ids = set(current["account_id"].tolist())
    for a in ids[~ids.isin(open_ids)].tolist():
        errors.append((a, f"not open at as_of {day}: opened later or closed; not scored"))
    for a in ids[ids.isin(open_ids) & ~ids.isin(current_ids)].tolist():
        errors.append((a, f"past due at as_of {day}: the model scores current accounts only; not scored"))
    if current.empty:
        return pd.DataFrame(), errors
    builder = job.model.builder_
    X = builder.transform(events, current[["account_id", "as_of"]])
    scores = job.model.score(X)
    rows = scores.reset_index()
    segments = np.full(len(rows), None, dtype=object)
    evidence = np.empty(len(rows), dtype=object)
    evidence.fill(())
    reasons = np.empty(len(rows), dtype=object)
    reasons.fill(())
    if job.explain != "none":
        if job.explain == "all":
            need = np.ones(len(scores), dtype=bool)
        else:
            table = job.treatments
            contact = {b for b in scores["band"].unique() if any(e[2] for e in table.entries if b in e[0])}
            need = scores["band"].isin(contact).to_numpy()
        if need.any():
            expl = job.model.explain(X[need])
            seg = expl.segment(evidence=True)
            rc = expl.reason_codes(top=4, lang=job.lang)
            by_row: dict[int, list[dict[str, Any]]] = {}
            positions = expl.values.index.get_indexer(pd.MultiIndex.from_frame(rc.iloc[:, :2]))
            for p, code, text, c in zip(
                positions.tolist(),
                rc["reason_code"].astype(object).tolist(),
                rc["text"].astype(object).tolist(),
                np.round(rc["contribution"].to_numpy(dtype=np.float64), 6).tolist(),
                strict=True,
            ):
                by_row.setdefault(p, []).append({"code": code, "text": text, "contribution": c})
            at = np.flatnonzero(need)
            segments[at] = seg["segment"].astype(str).to_numpy(dtype=object)
            seg_evidence = seg["evidence"].to_numpy()
            for j, i in enumerate(at.tolist()):
                evidence[i] = tuple(seg_evidence[j])
                reasons[i] = by_row.get(j, [])
    rows["segment"] = pd.Series(segments, dtype=object)
    rows["evidence"] = pd.Series(evidence, dtype=object)
    rows["reasons"] = pd.Series(reasons, dtype=object)
    return rows, errors


_PART_COLUMNS = ("account_id", "as_of", "pd", "points", "band", "segment", "evidence", "reasons")


def _part_schema(id_type: Any) -> Any:
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


def _part_rows(rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame({c: [] for c in _PART_COLUMNS})
    out = rows[list(_PART_COLUMNS)].copy()
    out["evidence"] = [list(e) for e in out["evidence"]]
    out["reasons"] = [list(r) for r in out["reasons"]]
    return out.sort_values("account_id", kind="stable").reset_index(drop=True)


def _error_rows(err: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    out = err.copy()
    out["account_id"] = pd.Series(out["account_id"].tolist(), dtype=pd.Series(ids).dtype)
    out["reason"] = out["reason"].astype(str)
    return out.sort_values("account_id", kind="stable").reset_index(drop=True)


def _atomic_parquet(target: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` to ``target`` through a temporary file renamed into place (and synced)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if target.name.startswith("part-"):
            id_type = pa.int64() if pd.api.types.is_integer_dtype(frame["account_id"].dtype) else pa.string()
            if frame.empty:
                id_type = pa.int64() if frame["account_id"].dtype != object else pa.string()
            table = pa.Table.from_pandas(frame, schema=_part_schema(id_type), preserve_index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_text(target: Path, text: str) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the run


def score_batch(
    bundle: Any,
    events: EventData | str | os.PathLike[str],
    as_of: Any,
    output: str | os.PathLike[str],
    explain: str = "recommended",
    chunk_size: int = 50_000,
    n_jobs: int | None = -1,
    backend: str = "local",
    resume: bool = True,
    *,
    lang: str = "en",
    progress: bool | None = None,
) -> BatchResult:
    """Score every account of ``events`` at ``as_of`` with the model ``bundle``, chunk by chunk.

    Parameters
    ----------
    bundle : RiskModel or path
        A fitted model that carries its FeatureBuilder (``fit(..., builder=)``),
        or the folder of a saved bundle.
    events : EventData or path
        The event tables, or a folder of them (parquet read chunk by chunk with
        row-group filters on ``account_id``, so memory follows the chunk size;
        CSV tables are read once).
    as_of : date-like
        The scoring date: features use what was known strictly before it.
    output : path
        The output folder (see the module documentation).
    explain : {"recommended", "all", "none"}, default="recommended"
        Which rows get an explanation (segment, evidence, top-4 reasons):
        those in bands the treatment table contacts, all, or none.
    chunk_size : int, default=50_000
        Accounts per chunk; bounds the memory of a worker.
    n_jobs : int, default=-1
        Worker processes (joblib; -1: all cores, 1: in this process).
    backend : {"local"}, default="local"
    resume : bool, default=True
        Finish an interrupted run in ``output`` (same inputs and settings);
        with False an existing run in ``output`` is an error.
    lang : {"en", "zh"}, default="en"
        Language of the reason texts.
    progress : bool, optional
        A progress bar (tqdm) on a terminal; log lines otherwise. Default: a
        bar when standard error is a terminal.

    Returns
    -------
    BatchResult
        Accounts, scored, errors, chunks, seconds and the output folder.
    """
    from riskscore.model import RiskModel
    from riskscore.outreach import Treatments

    start = time.perf_counter()
    if explain not in _EXPLAIN:
        raise ValueError(f"explain must be one of {list(_EXPLAIN)}; got {explain!r}")
    if backend != "local":
        raise ValueError(f"backend must be 'local' (the Dask backend is not built yet); got {backend!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a whole number of accounts >= 1; got {chunk_size!r}")
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh'; got {lang!r}")
    model = bundle if isinstance(bundle, RiskModel) else RiskModel.load(bundle)
    if model.builder_ is None:
        raise ValueError("the model carries no FeatureBuilder: fit it with fit(X, y, builder=builder) and save it")
    day = pd.Timestamp(as_of)
    if day.tzinfo is not None or day != day.normalize():
        raise ValueError(f"as_of must be a date (naive, midnight); got {as_of!r}")
    # Absolute: worker processes may have been started in another working directory.
    out = Path(output).resolve()
    source = _Source(events)
    ids = np.sort(source.account_ids())
    chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
    params = {
        "format": _FORMAT,
        "model_version": model.version_,
        "as_of": day.strftime("%Y-%m-%d"),
        "explain": explain,
        "lang": lang,
        "chunk_size": int(chunk_size),
        "accounts": len(ids),
        "accounts_sha256": hashlib.sha256(pd.util.hash_array(ids).tobytes()).hexdigest(),
    }
    done = _prepare_output(out, params, resume)
    job = _Job(model=model, as_of=day, explain=explain, output=out, treatments=Treatments.load(), lang=lang)
    todo = [k for k in range(len(chunks)) if k not in done or not _chunk_files_exist(out, k)]
    log.info("score_batch: %d accounts in %d chunks, %d to do -> %s", len(ids), len(chunks), len(todo), out)
    bar = _progress(len(chunks), len(chunks) - len(todo), progress)
    for finished in _execute(todo, chunks, source, job, n_jobs):
        done[finished["chunk"]] = {"scored": finished["scored"], "errors": finished["errors"]}
        _write_manifest(out, params, done, len(chunks))
        bar(finished)
    scored, errors = _finish(out, params, done, len(chunks), len(ids))
    result = BatchResult(
        output=out,
        accounts=len(ids),
        scored=scored,
        errors=errors,
        chunks=len(chunks),
        seconds=time.perf_counter() - start,
    )
    log.info("score_batch: %s", result)
    return result


def _prepare_output(out: Path, params: Mapping[str, Any], resume: bool) -> dict[int, dict[str, int]]:
    manifest = out / _MANIFEST
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
    _write_manifest(out, params, {}, None)
    return {}


def _write_manifest(out: Path, params: Mapping[str, Any], done: Mapping[int, Any], chunks: int | None) -> None:
    from riskscore import __version__

    body = {
        "params": dict(params),
        "chunks": chunks,
        "done": {str(k): v for k, v in sorted(done.items())},
        "riskscore": __version__,
    }
    _atomic_text(out / _MANIFEST, json.dumps(body, indent=1, sort_keys=True))


def _chunk_files_exist(out: Path, k: int) -> bool:
    return (out / f"part-{k:05d}.parquet").exists() and (out / ".stage" / f"errors-{k:05d}.parquet").exists()


def _execute(
    todo: list[int], chunks: list[np.ndarray], source: _Source, job: _Job, n_jobs: int | None
) -> Iterable[dict[str, Any]]:
    if not todo:
        return []
    protected = source.protected if source.memory is None else source.memory.protected
    # The parent reads each chunk's rows (lazily: joblib dispatches a few chunks ahead), workers compute.
    if n_jobs == 1 or len(todo) == 1:
        return (_run_chunk(k, chunks[k], source.chunk(chunks[k]), protected, job) for k in todo)
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs, return_as="generator_unordered", pre_dispatch="n_jobs")(
        delayed(_run_chunk)(k, chunks[k], source.chunk(chunks[k]), protected, job) for k in todo
    )


def _progress(total: int, already: int, wanted: bool | None) -> Callable[[Mapping[str, Any]], None]:
    show = sys.stderr.isatty() if wanted is None else wanted
    if show:
        try:
            from tqdm import tqdm
        except ImportError:  # optional: log lines instead
            show = False
    if show:
        bar = tqdm(total=total, initial=already, unit="chunk", desc="scoring")
        counter = {"n": already}

        def tick(result: Mapping[str, Any]) -> None:
            counter["n"] += 1
            bar.update(1)
            if counter["n"] >= total:
                bar.close()

        return tick

    def line(result: Mapping[str, Any]) -> None:
        log.info("chunk %d done: %d scored, %d errors", result["chunk"], result["scored"], result["errors"])

    return line


def _finish(
    out: Path, params: Mapping[str, Any], done: Mapping[int, Any], chunks: int, accounts: int
) -> tuple[int, int]:
    """Gather errors, reconcile counts, and only then mark the output complete."""
    missing = [k for k in range(chunks) if k not in done or not _chunk_files_exist(out, k)]
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
    _atomic_parquet(out / _ERRORS, errors)
    summary = {"accounts": accounts, "scored": scored, "errors": len(errors), "chunks": chunks, "params": dict(params)}
    _atomic_text(out / _SUCCESS, json.dumps(summary, indent=1, sort_keys=True))
    return scored, len(errors)
