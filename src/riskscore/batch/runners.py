"""Runners: chunk functions in this process, on joblib workers, or on a Dask cluster; progress."""

from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from riskscore.batch.chunk import Job, run_chunk
from riskscore.batch.source import ChunkRows, Source

__all__ = ["Runner", "execute", "progress_callback"]

log = logging.getLogger("riskscore.batch")


class Runner:
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

    def rows(self, source: Source, ids: np.ndarray) -> ChunkRows | dict[str, pd.DataFrame]:
        """What a chunk function gets of its accounts' rows, made lazily, a few chunks ahead of the workers.

        Workers on this machine read a folder's parquet tables themselves, so
        the parent holds no chunk's rows; on Dask the parent reads and ships
        them (the workers need not see the folder).
        """
        return source.chunk(ids) if self.backend == "dask" else source.deferred(ids)

    def close(self) -> None:
        """Close the clients and clusters this runner started."""
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


def execute(
    todo: list[int], chunks: list[np.ndarray], source: Source, job: Job, runner: Runner
) -> Iterable[dict[str, Any]]:
    """Run every chunk of ``todo`` on ``runner``; results as they finish."""
    protected = source.protected
    calls = ((k, chunks[k], runner.rows(source, chunks[k]), protected, job) for k in todo)
    return runner.map(run_chunk, calls, len(todo))


def progress_callback(total: int, already: int, wanted: bool | None) -> Callable[[Mapping[str, Any]], None]:
    """A callback per finished chunk: a tqdm bar on a terminal (or when ``wanted``), log lines otherwise."""
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
        log.info("chunk %d done: %d scored, %d excluded, %d errors", result["chunk"], result["scored"],
                 result.get("excluded", 0), result["errors"])  # fmt: skip

    return line
