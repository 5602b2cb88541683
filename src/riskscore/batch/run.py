"""``score_batch``: the whole book in chunks of accounts, resumable, never half-written.

``score_batch`` is orchestration only: each chunk of accounts goes through the
same public pieces a notebook uses (``EventData`` validation, the bundle's
``FeatureBuilder``, ``RiskModel.score`` and ``explain``, ``segment``,
``reason_codes``, and with a policy the outreach decision), and is written to
its own parquet part through a temporary file renamed into place.

Output folder::

    part-00000.parquet ...   one per chunk, rows sorted by account_id (in .stage/ until
                             the run is complete)
    _excluded.parquet        valid accounts outside the scoring population at as_of (not
                             open, or past due), with the reason
    _errors.parquet          accounts whose rows break the data contract, with the problem
                             (the leading underscores keep both out of ``pd.read_parquet(output)``)
    _manifest.json           the run's parameters, a fingerprint of its inputs, its finished chunks
    INCOMPLETE               while the run is unfinished: ``pd.read_parquet(output)`` fails on it
    _SUCCESS                 written last, once every account is accounted for
    .riskscore.lock          held while a run writes: a second run into the folder is refused

Read a finished output with :func:`riskscore.read_scores`, which refuses one
that is not complete.

With a policy, capacity is shared by the whole book, so outreach runs in two
passes (:mod:`riskscore.batch.shared_capacity`). The result is the one
``recommend`` gives for the whole book at once: it depends on the inputs only,
never on the chunk size, the number of workers or the backend.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore.batch.chunk import Job
from riskscore.batch.manifest import (
    ERRORS,
    EXCLUDED,
    FORMAT,
    check_foreign,
    chunk_files_exist,
    finish,
    output_lock,
    prepare_output,
    write_manifest,
)
from riskscore.batch.runners import Runner, execute, progress_callback
from riskscore.batch.shared_capacity import outreach_setup, second_pass
from riskscore.batch.source import Source
from riskscore.data import EventData
from riskscore.model import RiskModel
from riskscore.outreach import Treatments
from riskscore.outreach.inputs import customer_flags

__all__ = ["BatchResult", "score_batch"]

log = logging.getLogger("riskscore.batch")

_EXPLAIN = ("all", "recommended", "none")


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did: accounts in, scored, excluded, listed as errors; time; where the output is."""

    output: Path
    accounts: int
    scored: int
    errors: int
    chunks: int
    seconds: float
    excluded: int = 0

    def __str__(self) -> str:
        return (
            f"{self.accounts:,} accounts: {self.scored:,} scored, {self.excluded:,} not open or not current "
            f"({EXCLUDED}), {self.errors:,} invalid ({ERRORS}); {self.chunks} chunks in {self.seconds:.1f} s "
            f"-> {self.output}"
        )

    @property
    def error_share(self) -> float:
        """Share of the input accounts whose rows break the data contract."""
        return self.errors / self.accounts if self.accounts else 0.0


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
    control_capacity: str = "reuse",
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
        book: ``capacity``, ``costs``, ``control_share``, ``control_capacity``,
        ``seed``, ``lender`` and ``events_timezone`` as there. Capacity is shared by the whole book:
        chunks stage their candidates, one allocation decides, then each
        chunk's part is written with its decisions.
    now : tz-aware timestamp, optional
        The moment of the decisions; ``as_of`` at midnight UTC by default.

    Returns
    -------
    BatchResult
        Accounts, scored, errors, chunks, seconds and the output folder.
    """
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
    check_foreign(out)  # before anything is created in it
    source = Source(events)
    # A flag on any of a customer's accounts holds for all of them, whichever chunk each lands in.
    source.accounts = customer_flags(source.accounts)
    chunks = source.chunks(int(chunk_size))  # whole customers in each
    ids = np.sort(np.concatenate(chunks)) if chunks else source.account_ids()
    outreach: dict[str, Any] = {}
    if policy is not None:
        outreach = outreach_setup(policy, capacity, now, costs, control_share, seed, lender, events_timezone,
                                   day, lang, model, control_capacity)  # fmt: skip
    params = {
        "format": FORMAT,
        "model_version": model.version_,
        "as_of": day.strftime("%Y-%m-%d"),
        "explain": explain,
        "lang": lang,
        "chunk_size": int(chunk_size),
        "accounts": len(ids),
        "accounts_sha256": hashlib.sha256(pd.util.hash_array(ids).tobytes()).hexdigest(),
        "inputs": source.fingerprint(),
        "outreach": outreach.get("params"),
    }
    with output_lock(out):
        return _run(out, params, resume, chunks, ids, source, model, day, explain, lang, outreach, policy,
                    n_jobs, backend, client, progress, start)  # fmt: skip


def _run(
    out: Path, params: dict[str, Any], resume: bool, chunks: list[np.ndarray], ids: np.ndarray, source: Source,
    model: RiskModel, day: pd.Timestamp, explain: str, lang: str, outreach: dict[str, Any], policy: Any,
    n_jobs: int | None, backend: str, client: Any, progress: bool | None, start: float,
) -> BatchResult:  # fmt: skip
    """The run itself, under the output folder's lock."""
    done = prepare_output(out, params, resume)
    job = Job(
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
        customer_dtype=_customer_dtype(source),
        parent_pid=os.getpid() if backend == "local" else None,
    )
    staged = policy is not None
    todo = [k for k in range(len(chunks)) if k not in done or not chunk_files_exist(out, k, staged)]
    log.info("score_batch: %d accounts in %d chunks, %d to do -> %s", len(ids), len(chunks), len(todo), out)
    bar = progress_callback(len(chunks), len(chunks) - len(todo), progress)
    runner = Runner(backend, n_jobs, client)
    try:
        for finished in execute(todo, chunks, source, job, runner):
            done[finished["chunk"]] = {k: finished[k] for k in ("scored", "errors", "excluded")}
            write_manifest(out, params, done, len(chunks))
            bar(finished)
        if staged:
            second_pass(out, params, done, len(chunks), job, runner, chunks)
    finally:
        runner.close()
    scored, errors, excluded = finish(out, params, done, len(chunks), len(ids))
    result = BatchResult(
        output=out,
        accounts=len(ids),
        scored=scored,
        errors=errors,
        chunks=len(chunks),
        seconds=time.perf_counter() - start,
        excluded=excluded,
    )
    log.info("score_batch: %s", result)
    return result


def _customer_dtype(source: Source) -> str | None:
    """The dtype of the parts' ``customer_id``: int64 or object (text); None when customers are the accounts."""
    if "customer_id" not in source.accounts.columns:
        return None
    kind = source.accounts["customer_id"].dtype
    # Whole floats become integers when a chunk is validated; anything else is refused there.
    return "int64" if pd.api.types.is_integer_dtype(kind) or pd.api.types.is_float_dtype(kind) else "object"
