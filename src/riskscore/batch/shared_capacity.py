"""Outreach over the whole book: the setup checked once, and the second pass.

The second pass allocates capacity over every chunk's candidates before each
chunk's part is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore.batch.chunk import Job, finalise
from riskscore.batch.manifest import part_path, write_manifest
from riskscore.batch.runners import Runner
from riskscore.batch.schemas import write_parquet
from riskscore.outreach import OutreachPolicy, Templates, Treatments
from riskscore.outreach.allocation import allocate, allocation_order
from riskscore.outreach.inputs import check_now
from riskscore.outreach.recommend import decision_settings

__all__ = ["outreach_setup", "second_pass"]


def outreach_setup(
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
    control_capacity: str = "reuse",
) -> dict[str, Any]:
    """Everything a chunk needs to decide, checked once, and what the manifest records of it."""
    rules = policy if isinstance(policy, OutreachPolicy) else OutreachPolicy.load(policy)
    table = Treatments.load().with_costs(costs)
    templates = Templates.load(rules, None)
    when = check_now(now if now is not None else day.tz_localize("UTC"))
    settings = decision_settings(rules, capacity, control_share, seed, lang, lender, model.version_, control_capacity)
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


def second_pass(
    out: Path, params: Mapping[str, Any], done: dict[int, Any], chunks: int, job: Job, runner: Runner,
    ids: list[np.ndarray],
) -> None:  # fmt: skip
    """Allocate capacity over the candidates of every chunk, then write each chunk's part."""
    stage = out / ".stage"
    allocation = stage / "allocation.parquet"
    if not allocation.exists():
        frames = [pd.read_parquet(stage / f"candidates-{k:05d}.parquet") for k in range(chunks)]
        frames = [f for f in frames if not f.empty]
        if frames:
            cand = pd.concat(frames, ignore_index=True)
            cand_ids = cand["account_id"].to_numpy()
            order = allocation_order(cand_ids, cand["best"].to_numpy(dtype=np.float64))
            cand = cand.iloc[order].reset_index(drop=True)
            picks, used_up = allocate(
                [list(u) for u in cand["usable"]],
                [list(k) for k in cand["keys"]],
                job.settings["capacity"],  # type: ignore[index]
                cand["free"].astype(bool).tolist(),
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
        write_parquet(allocation, table)
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
    written = [part_path(out, k, staged=True).exists() or part_path(out, k).exists() for k in range(chunks)]
    todo = [k for k in range(chunks) if k not in final or not written[k]]
    results = runner.map(finalise, ((k, {a: granted[a] for a in by_chunk.get(k, [])}, job) for k in todo), len(todo))
    for finished in results:
        done[finished["chunk"]]["final"] = True
        write_manifest(out, params, done, chunks)
