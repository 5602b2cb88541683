"""``build_features``: the features and labels of a training grid, chunk by chunk, as a parquet dataset.

The training counterpart of ``score_batch``, with the same machinery: accounts
in chunks that never split a customer, each chunk validated, its
observations' features built with the builder and its labels with
``make_labels``, written to its own part through a temporary file renamed into
place; a manifest with the inputs' fingerprint (a resume after the inputs
changed is refused), a lock, ``INCOMPLETE`` until every chunk is in and
``_SUCCESS`` last. The parts hold ``account_id``, ``as_of``, every feature in
the builder's order (numbers as float64, codes as categoricals with the fitted
levels) and the label, so they are identical whatever the chunk size, and
``dask.dataframe.read_parquet(output)`` feeds ``RiskModel.fit`` past one
machine's memory. Accounts whose rows break the data contract go to
``_errors.parquet``; accounts without an observation in the grid to
``_excluded.parquet``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore._io import atomic_write
from riskscore.batch.chunk import watch_parent
from riskscore.batch.manifest import (
    FORMAT,
    check_foreign,
    chunk_files_exist,
    finish,
    output_lock,
    part_path,
    prepare_output,
    write_manifest,
)
from riskscore.batch.runners import Runner
from riskscore.batch.schemas import error_rows, write_parquet
from riskscore.batch.source import ChunkRows, Source, chunk_tables, validated
from riskscore.features import FeatureBuilder
from riskscore.labels import make_labels

__all__ = ["FeatureRun", "build_features"]

log = logging.getLogger("riskscore.batch")


@dataclass(frozen=True)
class FeatureRun:
    """What a ``build_features`` run did: accounts, observations written, errors, excluded, chunks, time."""

    output: Path
    accounts: int
    observations: int
    errors: int
    excluded: int
    chunks: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.accounts:,} accounts: {self.observations:,} observations written, {self.excluded:,} without an "
            f"observation (_excluded.parquet), {self.errors:,} invalid (_errors.parquet); {self.chunks} chunks in "
            f"{self.seconds:.1f} s -> {self.output}"
        )


@dataclass(frozen=True)
class _Job:
    builder: FeatureBuilder
    observations: pd.DataFrame
    span: tuple[str, str] | None
    horizon: str
    dpd_threshold: int
    output: Path
    id_dtype: str
    parent_pid: int | None


def build_features(
    builder: Any,
    events: Any,
    observations: pd.DataFrame | tuple[Any, Any],
    output: str | os.PathLike[str],
    *,
    horizon: str = "90D",
    dpd_threshold: int = 30,
    chunk_size: int = 50_000,
    n_jobs: int | None = -1,
    backend: str = "local",
    client: Any = None,
    resume: bool = True,
) -> FeatureRun:
    """Write the features and labels of ``observations`` as a parquet dataset in ``output``, chunk by chunk.

    Parameters
    ----------
    builder : FeatureBuilder, RiskModel or bundle path
        A fitted builder, or a model (or bundle) that carries one.
    events : EventData or path
        The event tables, or a folder of them (parquet read chunk by chunk).
    observations : DataFrame or (start, end)
        The grid: ``account_id``, ``as_of`` (``observation_dates`` gives one),
        or ``(start, end)`` for the accounts current at each month start from
        ``start`` to ``end``, found chunk by chunk (so the book is never read
        whole: ``observation_dates`` of an account depends on its own events only).
    output : path
        A new folder (or the folder of an unfinished run with the same inputs).
    horizon, dpd_threshold
        The label, as :func:`riskscore.make_labels` (column ``label``; NA
        where the window is not complete in the data).
    chunk_size, n_jobs, backend, client, resume
        As for :func:`riskscore.score_batch`.

    Returns
    -------
    FeatureRun
    """
    start = time.perf_counter()
    fitted = _builder(builder)
    if backend not in ("local", "dask"):
        raise ValueError(f"backend must be 'local' or 'dask'; got {backend!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a whole number of accounts >= 1; got {chunk_size!r}")
    span: tuple[str, str] | None = None
    if isinstance(observations, tuple) and len(observations) == 2:
        span = (f"{pd.Timestamp(observations[0]):%Y-%m-%d}", f"{pd.Timestamp(observations[1]):%Y-%m-%d}")
        grid = pd.DataFrame({"account_id": [], "as_of": pd.Series([], dtype="datetime64[ns]")})
    elif isinstance(observations, pd.DataFrame) and {"account_id", "as_of"} <= set(observations.columns):
        grid = observations[["account_id", "as_of"]].copy()
        grid["as_of"] = pd.to_datetime(grid["as_of"])
    else:
        raise ValueError("observations must be a DataFrame with columns account_id and as_of, or (start, end)")
    out = Path(output).resolve()
    check_foreign(out)
    source = Source(events)
    chunks = source.chunks(int(chunk_size))
    ids = np.sort(np.concatenate(chunks)) if chunks else source.account_ids()
    unknown = ~grid["account_id"].isin(ids)
    if unknown.any():
        raise ValueError(f"observations name {int(unknown.sum()):,} account(s) not in the accounts table, e.g. "
                         f"{grid.loc[unknown, 'account_id'].head(3).tolist()}")  # fmt: skip
    grid_key = (
        f"month starts {span[0]} to {span[1]}"
        if span is not None
        else hashlib.sha256(pd.util.hash_pandas_object(grid, index=False).to_numpy().tobytes()).hexdigest()
    )
    params = {
        "format": FORMAT,
        "kind": "features",
        "builder": hashlib.sha256(repr(fitted.to_dict()).encode()).hexdigest(),
        "horizon": str(horizon),
        "dpd_threshold": int(dpd_threshold),
        "chunk_size": int(chunk_size),
        "accounts": len(ids),
        "observations": grid_key,
        "inputs": source.fingerprint(),
    }
    job = _Job(fitted, grid, span, str(horizon), int(dpd_threshold), out,
               str(ids.dtype) if np.issubdtype(ids.dtype, np.integer) else "object",
               os.getpid() if backend == "local" else None)  # fmt: skip
    with output_lock(out):
        done = prepare_output(out, params, resume)
        todo = [k for k in range(len(chunks)) if k not in done or not chunk_files_exist(out, k)]
        log.info("build_features: %d accounts in %d chunks, %d to do -> %s", len(ids), len(chunks), len(todo), out)
        runner = Runner(backend, n_jobs, client)
        try:
            calls = ((k, chunks[k], runner.rows(source, chunks[k]), source.protected, job) for k in todo)
            for finished in runner.map(_chunk, calls, len(todo)):
                done[finished["chunk"]] = {k: finished[k] for k in ("scored", "errors", "excluded", "rows")}
                write_manifest(out, params, done, len(chunks))
                log.info("chunk %d done: %d rows", finished["chunk"], finished["rows"])
        finally:
            runner.close()
        _, errors, excluded = finish(out, params, done, len(chunks), len(ids))
    rows = sum(int(d["rows"]) for d in done.values())
    result = FeatureRun(out, len(ids), rows, errors, excluded, len(chunks), time.perf_counter() - start)
    log.info("build_features: %s", result)
    return result


def _builder(thing: Any) -> FeatureBuilder:
    if isinstance(thing, FeatureBuilder):
        if not hasattr(thing, "fitted_"):
            raise ValueError("the FeatureBuilder is not fitted: fit it on the training events first")
        return thing
    from riskscore.model import RiskModel

    model = thing if isinstance(thing, RiskModel) else RiskModel.load(thing)
    if model.builder_ is None:
        raise ValueError("the model carries no FeatureBuilder: fit it with fit(X, y, builder=builder)")
    return model.builder_


def _chunk(k: int, ids: np.ndarray, tables: ChunkRows | dict[str, pd.DataFrame], protected: Any, job: _Job,
           ) -> dict[str, Any]:  # fmt: skip
    """Validate one chunk, build its observations' features and labels, write its part (errors first)."""
    watch_parent(job.parent_pid)
    events, errors = validated(chunk_tables(tables), protected)
    err = pd.DataFrame(errors, columns=["account_id", "reason"])
    bad = set(err["account_id"].tolist())
    if job.span is not None:
        from riskscore.labels import observation_dates

        grid = observation_dates(events, start=job.span[0], end=job.span[1]) if events is not None else job.observations
    else:
        grid = job.observations
    mine = grid[grid["account_id"].isin(ids) & ~grid["account_id"].isin(bad)]
    frame = _empty(job)
    if events is not None and len(mine):
        X = job.builder.transform(events, mine)
        labels = make_labels(events, mine, horizon=job.horizon, dpd_threshold=job.dpd_threshold)
        frame = X.reset_index()
        frame["label"] = labels.to_numpy(dtype=np.float64, na_value=np.nan)
        frame = frame.sort_values(["account_id", "as_of"], kind="stable").reset_index(drop=True)
        frame = frame.astype({c: t for c, t in _empty(job).dtypes.items() if not isinstance(t, pd.CategoricalDtype)})
    seen = set(frame["account_id"].tolist())
    excluded = pd.DataFrame(
        [(a, "no observation in the grid") for a in ids.tolist() if a not in seen and a not in bad],
        columns=["account_id", "reason"],
    )
    stage = job.output / ".stage"
    write_parquet(stage / f"excluded-{k:05d}.parquet", error_rows(excluded, ids))
    write_parquet(stage / f"errors-{k:05d}.parquet", error_rows(err, ids))
    atomic_write(part_path(job.output, k, staged=True), lambda p: frame.to_parquet(p, index=False))
    return {"chunk": k, "scored": len(seen), "errors": len(err), "excluded": len(excluded), "rows": len(frame)}


def _empty(job: _Job) -> pd.DataFrame:
    """A part without rows, with the columns and dtypes of every other part."""
    columns: dict[str, Any] = {
        "account_id": pd.Series([], dtype=job.id_dtype),
        "as_of": pd.Series([], dtype="datetime64[ns]"),
    }
    probe_levels = _levels(job.builder)
    for name in job.builder.catalogue_.index:
        if name in probe_levels:
            columns[name] = pd.Categorical([], categories=probe_levels[name])
        else:
            columns[name] = pd.Series([], dtype=np.float64)
    columns["label"] = pd.Series([], dtype=np.float64)
    return pd.DataFrame(columns)


def _levels(builder: FeatureBuilder) -> dict[str, list[Any]]:
    """The categorical features of the builder and their fitted levels."""
    from riskscore.features.names import account_feature_name

    out: dict[str, list[Any]] = {}
    account = builder.fitted_.get("account", {})
    if account.get("products") is not None:
        out["acct_product"] = list(account["products"])
    for col, levels in account.get("categorical", {}).items():
        out[account_feature_name(col)] = list(levels)
    for col, levels in builder.fitted_.get("repayment", {}).get("coded", {}).items():
        out[f"stmt_extra_{col}_last"] = list(levels)
    return out
