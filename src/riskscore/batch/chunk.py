"""One chunk of accounts: validate, score, explain, and write its part, or stage it for the second pass.

Accounts whose rows break the contract go to the chunk's errors; accounts that
are valid but outside the scoring population at ``as_of`` (not open, or past
due) to its exclusions.

With a policy, capacity is shared by the whole book, so a chunk first stages
its decision inputs and allocation candidates (``.stage/``); once one
allocation has decided over every chunk's candidates, :func:`finalise` writes
the chunk's part from its staged inputs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore.batch.manifest import part_path
from riskscore.batch.schemas import error_rows, outreach_rows, part_rows, write_parquet
from riskscore.batch.source import ChunkRows, chunk_tables, validated
from riskscore.data import EventData
from riskscore.labels import observation_dates
from riskscore.outreach.decision import decide
from riskscore.outreach.inputs import Inputs, prepare_inputs

__all__ = ["Job", "finalise", "run_chunk"]


@dataclass(frozen=True)
class Job:
    """What every chunk of a run shares: the model, the date, the settings, the outreach setup."""

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
    customer_dtype: str | None = None  # None: customers are the accounts
    parent_pid: int | None = None  # local workers end when this process is gone


_WATCHED: set[int] = set()


def watch_parent(pid: int | None) -> None:
    """In a worker process: end it when the process that started the run is gone (also after kill -9).

    A daemon thread checks every second that the parent is still there (not
    reparented, still alive); in the parent itself this does nothing.
    """
    if pid is None or pid == os.getpid() or pid in _WATCHED:
        return
    _WATCHED.add(pid)
    started_under = os.getppid()

    def gone() -> bool:
        if os.getppid() != started_under:
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def watch() -> None:
        while not gone():
            time.sleep(1.0)
        os._exit(70)  # the run is over: no part of it may be written after its parent died

    threading.Thread(target=watch, name="riskscore-parent-watch", daemon=True).start()


def run_chunk(
    k: int, ids: np.ndarray, tables: ChunkRows | dict[str, pd.DataFrame], protected: tuple[str, ...] | None, job: Job
) -> dict[str, Any]:
    """Score one chunk and write its part (errors first: the part's presence means the chunk is whole)."""
    watch_parent(job.parent_pid)
    events, errors = validated(chunk_tables(tables), protected)
    rows = pd.DataFrame()
    expl = None
    excluded: list[tuple[Any, str]] = []
    if events is not None:
        rows, excluded, expl = _score(events, job)
    err = pd.DataFrame(errors, columns=["account_id", "reason"])
    out = pd.DataFrame(excluded, columns=["account_id", "reason"])
    write_parquet(job.output / ".stage" / f"excluded-{k:05d}.parquet", error_rows(out, ids))
    write_parquet(job.output / ".stage" / f"errors-{k:05d}.parquet", error_rows(err, ids))
    if job.policy is None:
        write_parquet(part_path(job.output, k, staged=True), part_rows(rows, job.id_dtype))
    else:
        _stage(k, rows, events, expl, job)
    return {"chunk": k, "scored": len(rows), "errors": len(err), "excluded": len(out)}


def _stage(k: int, rows: pd.DataFrame, events: EventData | None, expl: Any, job: Job) -> None:
    """With a policy: keep the chunk's decision inputs and allocation candidates for the second pass."""
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
    write_parquet(stage / f"inputs-{k:05d}.parquet", _nested_to_json(frame, ("evidence", "reasons")))
    write_parquet(stage / f"contacts-{k:05d}.parquet", contacts)
    write_parquet(stage / f"candidates-{k:05d}.parquet", candidates)


def _nested_to_json(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = [json.dumps(list(v), ensure_ascii=False) for v in out[col]]
    return out


def finalise(k: int, granted: Mapping[Any, Mapping[str, Any]], job: Job) -> dict[str, Any]:
    """Second pass of a chunk: its decisions under the book-wide allocation, written as its part."""
    watch_parent(job.parent_pid)
    stage = job.output / ".stage"
    frame = pd.read_parquet(stage / f"inputs-{k:05d}.parquet")
    if frame.empty:
        write_parquet(
            part_path(job.output, k, staged=True),
            outreach_rows(pd.DataFrame(), frame, job.id_dtype, job.customer_dtype),
        )
        return {"chunk": k}
    frame["evidence"] = [tuple(json.loads(v)) for v in frame["evidence"]]
    frame["reasons"] = pd.Series([json.loads(v) for v in frame["reasons"]], dtype=object).to_numpy()
    frame["segment"] = frame["segment"].astype(object).where(frame["segment"].notna(), None)
    contacts = pd.read_parquet(stage / f"contacts-{k:05d}.parquet")
    assert job.now is not None and job.events_tz is not None and job.settings is not None
    inputs = Inputs(frame=frame, contacts=None if contacts.empty else contacts, events_tz=job.events_tz)
    mine = {a: granted[a] for a in frame["account_id"].tolist() if a in granted}
    out, _ = decide(inputs, job.policy, job.treatments, job.templates, job.now, job.settings, granted=mine)
    write_parquet(part_path(job.output, k, staged=True), outreach_rows(out, frame, job.id_dtype, job.customer_dtype))
    return {"chunk": k}


def _score(events: EventData, job: Job) -> tuple[pd.DataFrame, list[tuple[Any, str]], Any]:
    as_of = job.as_of
    day = as_of.strftime("%Y-%m-%d")
    opened = observation_dates(events, freq="D", start=as_of, end=as_of, eligible="all")
    current = observation_dates(events, freq="D", start=as_of, end=as_of, eligible="current")
    errors: list[tuple[Any, str]] = []  # accounts outside the scoring population: excluded, not invalid
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
            need = scores["band"].isin(job.treatments.contacted_bands(scores["band"].unique())).to_numpy()
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
