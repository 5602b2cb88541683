"""Append-only audit log of outreach decisions, and exact replay.

The log is JSON lines. A run writes one ``run`` record (the policy, treatment
and template documents, capacity, control settings, seed, lender, language,
model version, ``now``) and then one ``decision`` record per account: its
inputs (score, segment and evidence, reasons, time zone and flags, the facts
from its events, its contact ledger), ``input_hash`` (SHA-256 of those inputs),
every rule evaluated with its outcome, the allocation (rank and the option
granted) and the recommendation itself.

:func:`read_audit` returns the decision records with their run attached;
:func:`replay` recomputes a recommendation from one of them, checking the input
hash first, and returns it: equal to the recorded one when nothing was changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore.errors import AuditError
from riskscore.outreach.decision import decide
from riskscore.outreach.inputs import FLAGS, Inputs
from riskscore.outreach.messages import Templates
from riskscore.outreach.policy import OutreachPolicy
from riskscore.outreach.treatments import Treatments

__all__ = ["AuditError", "read_audit", "replay", "write"]

RECORD_VERSION = 2  # 2: the customer's accounts and contacts are part of each decision's inputs
_RUNS: dict[str, Any] = {}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    return value


def _hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_FRAME_COLUMNS = (
    "account_id",
    "customer_id",
    "as_of",
    "pd",
    "band",
    "segment",
    "evidence",
    "reasons",
    "timezone",
    "exposure",
    "amount",
    "due_date",
    "recent_payment",
    "product",
)


def _row_of(frame: pd.DataFrame, out: pd.DataFrame, i: int) -> dict[str, Any]:
    row = {c: _plain(frame[c].iat[i]) for c in _FRAME_COLUMNS if c in frame.columns}
    row["reasons"] = _plain(out["reasons"].iat[i])
    row["flags"] = {f: _plain(frame[f].iat[i]) for f in FLAGS if f in frame.columns}
    return row


def _contacts_by_customer(contacts: pd.DataFrame | None) -> dict[Any, list[list[Any]]]:
    """Each customer's contacts (each account its own customer without ``customer_id``), with the account."""
    out: dict[Any, list[list[Any]]] = {}
    if contacts is None or contacts.empty:
        return out
    direction = contacts["direction"] if "direction" in contacts.columns else pd.Series(None, index=contacts.index)
    owner = contacts["customer_id"] if "customer_id" in contacts.columns else contacts["account_id"]
    for who, a, t, c, o, d in zip(
        owner, contacts["account_id"], contacts["timestamp"], contacts["channel"], contacts["outcome"], direction,
        strict=True,
    ):  # fmt: skip
        out.setdefault(who, []).append(
            [pd.Timestamp(t).isoformat(), str(c), str(o), None if pd.isna(d) else str(d), _plain(a)]
        )
    return out


def write(
    path: str | Path,
    inputs: Any,
    out: pd.DataFrame,
    trail: Mapping[str, Any],
    policy: Any,
    treatments: Any,
    templates: Any,
    now: pd.Timestamp,
    settings: Mapping[str, Any],
) -> None:
    """Append a run record and one decision record per account to ``path`` (JSON lines)."""
    from riskscore._version import __version__

    run = {
        "type": "run",
        "record_version": RECORD_VERSION,
        "riskscore": __version__,
        "now": now.isoformat(),
        "events_timezone": inputs.events_tz,
        "policy": policy.document,
        "policy_version": policy.version,
        "treatments": treatments.document,
        "templates": templates.document,
        "settings": _plain(dict(settings)),
    }
    run["run_id"] = _hash(run)[:16]
    evaluation = trail["evaluation"]
    hits = trail["evaluation"].hits_by_account()
    contacts = _contacts_by_customer(inputs.contacts)
    frame = inputs.frame
    rows = [_row_of(frame, out, i) for i in range(len(frame))]
    owner = frame["customer_id"] if "customer_id" in frame.columns else frame["account_id"]
    together: dict[Any, list[int]] = {}
    for i, who in enumerate(owner.tolist()):
        together.setdefault(who, []).append(i)
    lines = [json.dumps(run, ensure_ascii=False, sort_keys=True)]
    for i in range(len(frame)):
        account = frame["account_id"].iat[i]
        who = owner.iat[i]
        # One decision per customer: the record holds what it rests on, all the customer's accounts.
        record_inputs = {
            **rows[i],
            "contacts": contacts.get(who, []),
            "others": [rows[j] for j in together[who] if j != i],
        }
        fired = {(h.rule, h.channel) for h, _ in hits[i]}
        evaluations = []
        for hit, k in hits[i]:
            until = int(hit.until[k])
            evaluations.append(
                {
                    "rule": hit.rule,
                    "channel": hit.channel,
                    "outcome": "block" if until == np.iinfo(np.int64).max else "defer",
                    "until": None if until == np.iinfo(np.int64).max else pd.Timestamp(until, tz="UTC").isoformat(),
                    "why": hit.why if isinstance(hit.why, str) else hit.why[k],
                }
            )
        passed = [r for r in evaluation.checked if not any(r == f[0] for f in fired)]
        evaluations += [{"rule": r, "channel": "*", "outcome": "pass"} for r in passed]
        chosen = int(trail["chosen"][i])
        recommendation = {c: _plain(out[c].iat[i]) for c in out.columns}
        record = {
            "type": "decision",
            "record_version": RECORD_VERSION,
            "run_id": run["run_id"],
            "account_id": _plain(account),
            "inputs": record_inputs,
            "input_hash": _hash(record_inputs),
            "model_version": settings["model_version"],
            "policy_version": policy.version,
            "rules": evaluations,
            "allocation": {
                "rank": int(trail["rank"][i]),
                "granted": None if chosen < 0 else chosen,
                "exhausted": list(dict.fromkeys(trail["exhausted"].get(i, []))),
            },
            "recommendation": recommendation,
        }
        lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Append only; one write of whole lines, flushed to disk before returning.
    with open(target, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_audit(path: str | Path) -> Iterator[dict[str, Any]]:
    """The decision records of an audit log, each with its ``run`` record under ``"run"``."""
    runs: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AuditError(f"{path}: line {number} is not JSON: {exc}") from exc
            if record.get("type") == "run":
                runs[record["run_id"]] = record
            elif record.get("type") == "decision":
                if record.get("run_id") not in runs:
                    raise AuditError(f"{path}: line {number} refers to run {record.get('run_id')!r}, not in the log")
                yield {**record, "run": runs[record["run_id"]]}
            else:
                raise AuditError(f"{path}: line {number} has unknown record type {record.get('type')!r}")


def replay(record: Mapping[str, Any]) -> dict[str, Any]:
    """Recompute the recommendation of one decision record (from :func:`read_audit`).

    Raises :class:`AuditError` if the record's inputs do not match their hash.
    Returns the recommendation as a dict of plain values, like
    ``record["recommendation"]``.
    """
    if "run" not in record or "inputs" not in record:
        raise AuditError("replay needs a decision record with its run attached (use read_audit)")
    inputs = record["inputs"]
    if _hash(inputs) != record.get("input_hash"):
        raise AuditError(f"account {record.get('account_id')!r}: the recorded inputs do not match input_hash")
    run = record["run"]
    key = _hash(run)
    if key not in _RUNS:  # parsing and linting once per run, not per record
        policy = OutreachPolicy.from_dict(run["policy"], origin="audit run")
        _RUNS.clear()
        _RUNS[key] = (
            policy,
            Treatments.from_dict(run["treatments"], "audit run"),
            Templates.load(policy, run["templates"]),
        )
    policy, treatments, templates = _RUNS[key]
    now = pd.Timestamp(run["now"])
    rows = [_frame_row(inputs), *(_frame_row(other) for other in inputs.get("others", []))]
    frame = pd.DataFrame(rows)
    if "customer_id" not in inputs:
        frame = frame.drop(columns="customer_id")
    frame["due_date"] = pd.to_datetime(frame["due_date"])
    contacts = None
    if inputs["contacts"]:
        listed = [list(c) + [inputs["account_id"]] * (5 - len(c)) for c in inputs["contacts"]]
        contacts = pd.DataFrame(listed, columns=["timestamp", "channel", "outcome", "direction", "account_id"])
        contacts = contacts[["account_id", "timestamp", "channel", "outcome", "direction"]]
        if "customer_id" in inputs:
            contacts.insert(1, "customer_id", [inputs["customer_id"]] * len(contacts))
        contacts["timestamp"] = pd.to_datetime(contacts["timestamp"])
    settings = dict(run["settings"])
    granted = {row["account_id"]: record["allocation"] for row in rows}
    out, _ = decide(
        Inputs(frame=frame, contacts=contacts, events_tz=run["events_timezone"]),
        policy,
        treatments,
        templates,
        now,
        settings,
        granted=granted,
    )
    return {c: _plain(out[c].iat[0]) for c in out.columns}


def _frame_row(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """One account's recorded inputs as a row of the decision frame."""
    row: dict[str, Any] = {c: inputs.get(c) for c in _FRAME_COLUMNS}
    row["as_of"] = pd.Timestamp(row["as_of"])
    row["due_date"] = pd.Timestamp(row["due_date"]) if row["due_date"] else pd.NaT
    row["evidence"] = tuple(row["evidence"] or ())
    for key in ("exposure", "amount", "recent_payment"):
        row[key] = np.nan if row[key] is None else float(row[key])
    for flag in FLAGS:
        if flag in inputs["flags"]:
            row[flag] = inputs["flags"][flag]
    return row
