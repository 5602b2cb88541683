"""Who gets which channel: the control draw, the priority order and the greedy capacity allocation."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["CONTROL_CAPACITY", "allocate", "allocation_order", "control_draw", "left_keys"]

CONTROL_CAPACITY = ("reuse", "hold")
"""What a held-out customer's granted contact does with its capacity: goes to the next in line, or stays unused."""


def control_draw(account_ids: pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per account from (seed, account_id) alone: stable and replayable.

    Whole-number ids go through the SplitMix64 finaliser (vectorised); other ids
    through SHA-256 of ``"seed:id"``. Neither depends on the other accounts.
    """
    ids = np.asarray(account_ids)
    if np.issubdtype(ids.dtype, np.integer):
        with np.errstate(over="ignore"):
            z = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)).astype(np.float64) / float(2**53)
    out = np.empty(len(ids))
    for i, a in enumerate(ids.tolist()):
        digest = hashlib.sha256(f"riskscore-control:{seed}:{a}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2**64
    return out


def allocate(
    usable_rows: list[list[bool]],
    key_rows: list[list[str]],
    capacity: Mapping[str, int] | None,
    free: Sequence[bool] | None = None,
) -> tuple[np.ndarray, dict[int, list[str]]]:
    """Greedy allocation over candidates already in priority order.

    Each candidate takes its first usable option whose capacity key has room
    (keys without a capacity are unlimited). A candidate marked in ``free``
    (a held-out customer whose capacity goes to the next in line) is granted
    the same way but uses none. Returns the option index taken per candidate
    (-1: none) and, per candidate, the keys found used up.
    """
    left = dict(capacity) if capacity is not None else {}
    picks = np.full(len(usable_rows), -1, dtype=np.int64)
    exhausted: dict[int, list[str]] = {}
    spares = [False] * len(usable_rows) if free is None else [bool(f) for f in free]
    if len(spares) != len(usable_rows):
        raise ValueError(f"free has {len(spares)} entries for {len(usable_rows)} candidates")
    for r, (usable, keys) in enumerate(zip(usable_rows, key_rows, strict=True)):
        for k, ok in enumerate(usable):
            if not ok:
                continue
            key = keys[k]
            if key in left:
                if left[key] <= 0:
                    exhausted.setdefault(r, []).append(key)
                    continue
                if not spares[r]:
                    left[key] -= 1
            picks[r] = k
            break
    return picks, exhausted


def _id_order_key(ids: np.ndarray) -> np.ndarray:
    """A sortable integer key per account id (numbers by value, text by text)."""
    if np.issubdtype(np.asarray(ids).dtype, np.integer):
        return np.asarray(ids, dtype=np.int64)
    return pd.factorize(pd.Series(ids).astype(str), sort=True)[0].astype(np.int64)


def allocation_order(ids: np.ndarray, best: np.ndarray) -> np.ndarray:
    """The order in which candidates take capacity: highest best benefit first, ties by account id.

    The one ordering rule, used by :func:`riskscore.recommend` and by batch
    scoring's book-wide allocation alike.
    """
    return np.lexsort((_id_order_key(ids), -np.asarray(best, dtype=np.float64)))


def left_keys(exhausted: Mapping[int, list[str]]) -> set[str]:
    """The capacity keys found used up by any account."""
    return {key for keys in exhausted.values() for key in keys}
