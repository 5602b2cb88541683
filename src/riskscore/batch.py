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
import itertools
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
        self.datasets: dict[str, Any] = {}
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

                if name not in self.datasets:
                    self.datasets[name] = ds.dataset(self.files[name], format="parquet")
                table = self.datasets[name].to_table(
                    filter=(ds.field("account_id") >= lo) & (ds.field("account_id") <= hi)
                )
                df = table.to_pandas()
                del table
            out[name] = df.loc[df["account_id"].isin(wanted).to_numpy()].reset_index(drop=True)
        if self.datasets:
            import pyarrow as pa

            pa.default_memory_pool().release_unused()  # give freed buffers back: memory follows the chunk
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
    policy: Any = None
    templates: Any = None
    settings: Mapping[str, Any] | None = None
    now: pd.Timestamp | None = None
    events_tz: str | None = None
    id_dtype: str = "int64"


def _run_chunk(
    k: int, ids: np.ndarray, tables: dict[str, pd.DataFrame], protected: tuple[str, ...] | None, job: _Job
) -> dict[str, Any]:
    """Score one chunk and write its part (errors first: the part's presence means the chunk is whole)."""
    events, errors = _validated(tables, protected)
    rows = pd.DataFrame()
    expl = None
    if events is not None:
        rows, not_scored, expl = _score(events, job)
        errors += not_scored
    err = pd.DataFrame(errors, columns=["account_id", "reason"])
    _atomic_parquet(job.output / ".stage" / f"errors-{k:05d}.parquet", _error_rows(err, ids))
    if job.policy is None:
        _atomic_parquet(job.output / f"part-{k:05d}.parquet", _part_rows(rows, job.id_dtype))
    else:
        _stage(k, rows, events, expl, job)
    return {"chunk": k, "scored": len(rows), "errors": len(err)}


def _stage(k: int, rows: pd.DataFrame, events: EventData | None, expl: Any, job: _Job) -> None:
    """With a policy: keep the chunk's decision inputs and allocation candidates for the second pass."""
    from riskscore.outreach.recommend import Inputs, decide, prepare_inputs

    stage = job.output / ".stage"
    frame, contacts, candidates = pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    if not rows.empty and events is not None:
        assert job.now is not None and job.events_tz is not None and job.settings is not None
        scores = rows.set_index(["account_id", "as_of"])[["pd", "points", "band"]]
        inputs = prepare_inputs(scores, expl, events, job.treatments, job.now, job.events_tz, job.lang)
        frame = inputs.frame.drop(columns=["explained_row"])
        frame["reasons"] = rows["reasons"].to_numpy()  # every explained account's reasons, as in the scores
        frame["points"] = rows["points"].to_numpy()
        staged = Inputs(frame=frame, contacts=inputs.contacts, events_tz=inputs.events_tz)
        candidates, _ = decide(staged, job.policy, job.treatments, job.templates, job.now, job.settings, plan_only=True)
        contacts = inputs.contacts if inputs.contacts is not None else pd.DataFrame()
    # Candidates last: their presence marks the chunk as staged.
    _atomic_parquet(stage / f"inputs-{k:05d}.parquet", _nested_to_json(frame, ("evidence", "reasons")))
    _atomic_parquet(stage / f"contacts-{k:05d}.parquet", contacts)
    _atomic_parquet(stage / f"candidates-{k:05d}.parquet", candidates)


def _nested_to_json(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = [json.dumps(list(v), ensure_ascii=False) for v in out[col]]
    return out


def _finalise(k: int, granted: Mapping[Any, Mapping[str, Any]], job: _Job) -> dict[str, Any]:
    """Second pass of a chunk: its decisions under the book-wide allocation, written as its part."""
    from riskscore.outreach.recommend import Inputs, decide

    stage = job.output / ".stage"
    frame = pd.read_parquet(stage / f"inputs-{k:05d}.parquet")
    if frame.empty:
        _atomic_parquet(job.output / f"part-{k:05d}.parquet", _outreach_rows(pd.DataFrame(), frame, job.id_dtype))
        return {"chunk": k}
    frame["evidence"] = [tuple(json.loads(v)) for v in frame["evidence"]]
    frame["reasons"] = pd.Series([json.loads(v) for v in frame["reasons"]], dtype=object).to_numpy()
    frame["segment"] = frame["segment"].astype(object).where(frame["segment"].notna(), None)
    contacts = pd.read_parquet(stage / f"contacts-{k:05d}.parquet")
    assert job.now is not None and job.events_tz is not None and job.settings is not None
    inputs = Inputs(frame=frame, contacts=None if contacts.empty else contacts, events_tz=job.events_tz)
    mine = {a: granted[a] for a in frame["account_id"].tolist() if a in granted}
    out, _ = decide(inputs, job.policy, job.treatments, job.templates, job.now, job.settings, granted=mine)
    _atomic_parquet(job.output / f"part-{k:05d}.parquet", _outreach_rows(out, frame, job.id_dtype))
    return {"chunk": k}


def _score(events: EventData, job: _Job) -> tuple[pd.DataFrame, list[tuple[Any, str]], Any]:
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
        return pd.DataFrame(), errors, None
    builder = job.model.builder_
    X = builder.transform(events, current[["account_id", "as_of"]])
    scores = job.model.score(X)
    rows = scores.reset_index()
    segments = np.full(len(rows), None, dtype=object)
    evidence = np.empty(len(rows), dtype=object)
    evidence.fill(())
    reasons = np.empty(len(rows), dtype=object)
    reasons.fill(())
    expl = None
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
    return rows, errors, expl


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


_OUTREACH_COLUMNS = (
    "action", "channel", "send_after", "timezone", "offer", "message", "blocked", "expected_benefit", "control",
    "model_version", "policy_version",
)  # fmt: skip


def _outreach_schema(id_type: Any) -> Any:
    import pyarrow as pa

    base = _part_schema(id_type)
    offer = pa.struct(
        [("instalment", pa.float64()), ("term_months", pa.int64()), ("total", pa.float64()), ("first_due", pa.string())]
    )
    blocked = pa.struct([("rule", pa.string()), ("channel", pa.string()), ("why", pa.string())])
    fields = [
        ("action", pa.string()),
        ("channel", pa.string()),
        ("send_after", pa.timestamp("ns", tz="UTC")),
        ("timezone", pa.string()),
        ("offer", offer),
        ("message", pa.string()),
        ("blocked", pa.list_(blocked)),
        ("expected_benefit", pa.float64()),
        ("control", pa.bool_()),
        ("model_version", pa.string()),
        ("policy_version", pa.string()),
    ]
    return pa.schema([*base, *[pa.field(n, t) for n, t in fields]])


def _empty(columns: Iterable[str], id_dtype: str) -> pd.DataFrame:
    out = pd.DataFrame({c: [] for c in columns})
    out["account_id"] = pd.Series([], dtype=np.dtype(id_dtype))
    return out


def _outreach_rows(out: pd.DataFrame, frame: pd.DataFrame, id_dtype: str) -> pd.DataFrame:
    columns = [*_PART_COLUMNS, *_OUTREACH_COLUMNS]
    if out.empty:
        return _empty(columns, id_dtype)
    rows = out.copy()
    rows["points"] = frame["points"].to_numpy()
    rows["evidence"] = [list(e) for e in frame["evidence"]]
    rows["reasons"] = [list(r) for r in rows["reasons"]]
    rows["blocked"] = [list(b) for b in rows["blocked"]]
    rows["segment"] = rows["segment"].astype(object).where(rows["segment"].notna(), None)
    return rows[columns].sort_values("account_id", kind="stable").reset_index(drop=True)


def _part_rows(rows: pd.DataFrame, id_dtype: str) -> pd.DataFrame:
    if rows.empty:
        return _empty(_PART_COLUMNS, id_dtype)
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
            schema = _outreach_schema(id_type) if "action" in frame.columns else _part_schema(id_type)
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
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
    policy: Any = None,
    capacity: Mapping[str, int] | None = None,
    now: Any = None,
    costs: Mapping[str, Any] | None = None,
    control_share: float = 0.05,
    seed: int = 0,
    lender: Mapping[str, str] | None = None,
    events_timezone: str | None = None,
    client: Any = None,
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
    backend : {"local", "dask"}, default="local"
        ``"dask"`` runs the same chunk function on a Dask cluster
        (``riskscore[dask]``): ``client`` (a ``distributed.Client`` or a
        scheduler address), a local cluster of ``n_jobs`` workers by default.
        The parent reads each chunk's rows and ships them, so the workers need
        not see the input folder; they write the parts into ``output``, which
        they must see (a shared file system).
    resume : bool, default=True
        Finish an interrupted run in ``output`` (same inputs and settings);
        with False an existing run in ``output`` is an error.
    lang : {"en", "zh"}, default="en"
        Language of the reason texts.
    progress : bool, optional
        A progress bar (tqdm) on a terminal; log lines otherwise. Default: a
        bar when standard error is a terminal.
    policy : OutreachPolicy, name or path, optional
        Recommend outreach as :func:`riskscore.recommend` does, for the whole
        book: ``capacity``, ``costs``, ``control_share``, ``seed``, ``lender``
        and ``events_timezone`` as there. Capacity is shared by the whole book:
        chunks stage their candidates, one allocation decides, then each
        chunk's part is written with its decisions.
    now : tz-aware timestamp, optional
        The moment of the decisions; ``as_of`` at midnight UTC by default.

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
    if backend not in ("local", "dask"):
        raise ValueError(f"backend must be 'local' or 'dask'; got {backend!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a whole number of accounts >= 1; got {chunk_size!r}")
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh'; got {lang!r}")
    if policy is not None and explain == "none":
        raise ValueError("explain='none' cannot go with a policy: outreach needs the segments and reasons")
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
    outreach: dict[str, Any] = {}
    if policy is not None:
        outreach = _outreach_setup(policy, capacity, now, costs, control_share, seed, lender, events_timezone,
                                   day, lang, model)  # fmt: skip
    params = {
        "format": _FORMAT,
        "model_version": model.version_,
        "as_of": day.strftime("%Y-%m-%d"),
        "explain": explain,
        "lang": lang,
        "chunk_size": int(chunk_size),
        "accounts": len(ids),
        "accounts_sha256": hashlib.sha256(pd.util.hash_array(ids).tobytes()).hexdigest(),
        "outreach": outreach.get("params"),
    }
    done = _prepare_output(out, params, resume)
    job = _Job(
        model=model,
        as_of=day,
        explain=explain,
        output=out,
        treatments=outreach.get("treatments") or Treatments.load(),
        lang=lang,
        policy=outreach.get("policy"),
        templates=outreach.get("templates"),
        settings=outreach.get("settings"),
        now=outreach.get("now"),
        events_tz=outreach.get("events_tz"),
        id_dtype=str(ids.dtype) if np.issubdtype(ids.dtype, np.integer) else "object",
    )
    staged = policy is not None
    todo = [k for k in range(len(chunks)) if k not in done or not _chunk_files_exist(out, k, staged)]
    log.info("score_batch: %d accounts in %d chunks, %d to do -> %s", len(ids), len(chunks), len(todo), out)
    bar = _progress(len(chunks), len(chunks) - len(todo), progress)
    runner = _Runner(backend, n_jobs, client)
    try:
        for finished in _execute(todo, chunks, source, job, runner):
            done[finished["chunk"]] = {"scored": finished["scored"], "errors": finished["errors"]}
            _write_manifest(out, params, done, len(chunks))
            bar(finished)
        if staged:
            _second_pass(out, params, done, len(chunks), job, runner, chunks)
    finally:
        runner.close()
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


def _chunk_files_exist(out: Path, k: int, staged: bool = False) -> bool:
    first = out / ".stage" / f"candidates-{k:05d}.parquet" if staged else out / f"part-{k:05d}.parquet"
    return first.exists() and (out / ".stage" / f"errors-{k:05d}.parquet").exists()


def _outreach_setup(
    policy: Any,
    capacity: Mapping[str, int] | None,
    now: Any,
    costs: Mapping[str, Any] | None,
    control_share: float,
    seed: int,
    lender: Mapping[str, str] | None,
    events_timezone: str | None,
    day: pd.Timestamp,
    lang: str,
    model: Any,
) -> dict[str, Any]:
    """Everything a chunk needs to decide, checked once, and what the manifest records of it."""
    from riskscore.outreach import OutreachPolicy, Templates, Treatments
    from riskscore.outreach.recommend import DEFAULT_LENDER, _check_capacity, _check_now

    rules = policy if isinstance(policy, OutreachPolicy) else OutreachPolicy.load(policy)
    table = Treatments.load().with_costs(costs)
    templates = Templates.load(rules, None)
    when = _check_now(now if now is not None else day.tz_localize("UTC"))
    if not 0 <= control_share < 1:
        raise ValueError(f"control_share must be in [0, 1); got {control_share!r}")
    settings = {
        "capacity": _check_capacity(capacity, rules),
        "control_share": float(control_share),
        "seed": int(seed),
        "lang": lang,
        "lender": {**DEFAULT_LENDER[lang], **dict(lender or {})},
        "model_version": model.version_,
    }
    tz = events_timezone or str(when.tz)
    return {
        "policy": rules,
        "treatments": table,
        "templates": templates,
        "settings": settings,
        "now": when,
        "events_tz": tz,
        "params": {"policy": rules.hash, "treatments": table.hash, "templates": templates.hash,
                   "now": when.isoformat(), "events_timezone": tz, **settings},
    }  # fmt: skip


def _second_pass(
    out: Path, params: Mapping[str, Any], done: dict[int, Any], chunks: int, job: _Job, runner: _Runner,
    ids: list[np.ndarray],
) -> None:  # fmt: skip
    """Allocate capacity over the candidates of every chunk, then write each chunk's part."""
    from riskscore.outreach.recommend import _id_order_key, allocate

    stage = out / ".stage"
    allocation = stage / "allocation.parquet"
    if not allocation.exists():
        frames = [pd.read_parquet(stage / f"candidates-{k:05d}.parquet") for k in range(chunks)]
        frames = [f for f in frames if not f.empty]
        if frames:
            cand = pd.concat(frames, ignore_index=True)
            cand_ids = cand["account_id"].to_numpy()
            order = np.lexsort((_id_order_key(cand_ids), -cand["best"].to_numpy(dtype=np.float64)))
            cand = cand.iloc[order].reset_index(drop=True)
            picks, used_up = allocate(
                [list(u) for u in cand["usable"]],
                [list(k) for k in cand["keys"]],
                job.settings["capacity"],  # type: ignore[index]
            )
            table = pd.DataFrame(
                {
                    "account_id": cand["account_id"].to_numpy(),
                    "granted": picks,
                    "exhausted": [json.dumps(list(dict.fromkeys(used_up.get(r, [])))) for r in range(len(cand))],
                }
            )
        else:
            table = pd.DataFrame({"account_id": [], "granted": [], "exhausted": []})
        _atomic_parquet(allocation, table)
    table = pd.read_parquet(allocation)
    granted = {
        a: {"granted": None if g < 0 else int(g), "exhausted": json.loads(e)}
        for a, g, e in zip(
            table["account_id"].tolist(), table["granted"].tolist(), table["exhausted"].tolist(), strict=True
        )
    }
    # Each chunk gets only its own accounts' allocation.
    chunk_of = {a: k for k, chunk in enumerate(ids) for a in chunk.tolist()}
    by_chunk: dict[int, list[Any]] = {}
    for a in granted:
        by_chunk.setdefault(chunk_of[a], []).append(a)
    final = {int(k) for k, v in done.items() if v.get("final")}
    todo = [k for k in range(chunks) if k not in final or not (out / f"part-{k:05d}.parquet").exists()]
    results = runner.map(_finalise, ((k, {a: granted[a] for a in by_chunk.get(k, [])}, job) for k in todo), len(todo))
    for finished in results:
        done[finished["chunk"]]["final"] = True
        _write_manifest(out, params, done, chunks)


class _Runner:
    """Runs chunk functions: in this process, on joblib workers, or on a Dask cluster."""

    def __init__(self, backend: str, n_jobs: int | None, client: Any) -> None:
        self.backend, self.n_jobs = backend, n_jobs
        self.client: Any = None
        self.own: list[Any] = []
        if backend == "dask":
            try:
                from distributed import Client, LocalCluster
            except ImportError as exc:  # optional extra
                raise ImportError("backend='dask' needs riskscore[dask]: pip install 'riskscore[dask]'") from exc
            if client is None:
                workers = max(1, os.cpu_count() or 1) if n_jobs in (None, -1) else max(1, int(n_jobs))
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)  # type: ignore[no-untyped-call]
                self.client = Client(cluster)  # type: ignore[no-untyped-call]
                self.own = [self.client, cluster]
            elif isinstance(client, str):
                self.client = Client(client)  # type: ignore[no-untyped-call]
                self.own = [self.client]
            else:
                self.client = client

    def close(self) -> None:
        for thing in self.own:
            thing.close()

    def map(
        self, func: Callable[..., dict[str, Any]], calls: Iterable[tuple[Any, ...]], count: int
    ) -> Iterable[dict[str, Any]]:
        """``func(*args)`` for every tuple of ``calls`` (made lazily, a few ahead), results as they finish."""
        if count == 0:
            return []
        if self.backend == "dask":
            return self._dask(func, calls)
        if self.n_jobs == 1 or count == 1:
            return (func(*args) for args in calls)
        from joblib import Parallel, delayed

        return Parallel(n_jobs=self.n_jobs, return_as="generator_unordered", pre_dispatch="n_jobs")(
            delayed(func)(*args) for args in calls
        )

    def _dask(self, func: Callable[..., dict[str, Any]], calls: Iterable[tuple[Any, ...]]) -> Iterable[dict[str, Any]]:
        from distributed import as_completed

        workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        pending = iter(calls)
        running = as_completed()  # type: ignore[no-untyped-call]
        # At most two chunks per worker in flight: memory stays bounded by the chunk size.
        for args in itertools.islice(pending, 2 * workers):
            running.add(self.client.submit(func, *args, pure=False))  # type: ignore[no-untyped-call]
        for future in running:
            result = future.result()
            future.release()
            nxt = next(pending, None)
            if nxt is not None:
                running.add(self.client.submit(func, *nxt, pure=False))  # type: ignore[no-untyped-call]
            yield result


def _execute(
    todo: list[int], chunks: list[np.ndarray], source: _Source, job: _Job, runner: _Runner
) -> Iterable[dict[str, Any]]:
    protected = source.protected if source.memory is None else source.memory.protected
    # The parent reads each chunk's rows lazily, a few chunks ahead of the workers.
    calls = ((k, chunks[k], source.chunk(chunks[k]), protected, job) for k in todo)
    return runner.map(_run_chunk, calls, len(todo))


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
    _atomic_parquet(out / _ERRORS, errors)
    summary = {"accounts": accounts, "scored": scored, "errors": len(errors), "chunks": chunks, "params": dict(params)}
    _atomic_text(out / _SUCCESS, json.dumps(summary, indent=1, sort_keys=True))
    return scored, len(errors)
