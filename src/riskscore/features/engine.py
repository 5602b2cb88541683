"""Point-in-time window arithmetic over sorted event arrays.

Everything here works on whole seconds on one shared time line. Each event table
is sorted by (account, time); an observation (account, as_of) sees the rows of
its account with time strictly before ``as_of``: a contiguous range found by one
``searchsorted`` on a composite key ``account_code * span + offset``. A window
``[as_of - w, as_of)`` is a sub-range. Aggregates over ranges are exact:

* counts use integer prefix sums;
* sums, maxima and minima use ``ufunc.reduceat`` over the range itself, so a
  result depends only on the rows inside the range (never on other accounts'
  rows through floating-point rounding of a running total).

Observations are processed sorted by (account, as_of), so the ranges of one
window move forward monotonically and ``reduceat`` touches each row a bounded
number of times: the cost is O(rows + total window length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

NS = 1_000_000_000
DAY = 86_400
_MAX_KEY = 2**62


@dataclass(frozen=True)
class Timeline:
    """Integer seconds from ``t0``; offset ``span - 1`` stands for "never" (NaT)."""

    t0: int
    span: int

    @classmethod
    def covering(cls, arrays: Sequence[np.ndarray], margin_seconds: int) -> Timeline:
        """The timeline spanning every date in ``arrays``, with ``margin_seconds`` on each side."""
        lows, highs = [], []
        for a in arrays:
            s = _seconds(a)
            s = s[s != _NAT]
            if len(s):
                lows.append(int(s.min()))
                highs.append(int(s.max()))
        if not lows:
            return cls(0, 3)
        t0 = min(lows) - margin_seconds - DAY
        return cls(t0, max(highs) - t0 + 3)

    def offsets(self, values: np.ndarray) -> np.ndarray:
        """Offsets of datetime64 values; NaT maps to ``span - 1`` (after everything)."""
        s = _seconds(values)
        out = s - self.t0
        out[s == _NAT] = self.span - 1
        return out


_NAT = np.iinfo(np.int64).min


def _seconds(values: np.ndarray) -> np.ndarray:
    """Whole seconds (floor) of datetime64[ns] values, NaT kept as int64 min."""
    ns = np.asarray(values).astype("datetime64[ns]").view(np.int64)
    out = np.floor_divide(ns, NS)
    out[ns == _NAT] = _NAT
    return out


@dataclass(frozen=True)
class Observations:
    """Observations sorted by (account code, as_of); ``order`` maps back to input rows."""

    code: np.ndarray
    as_of: np.ndarray  # offsets on the timeline
    order: np.ndarray  # sorted position -> input position
    n_accounts: int


class SortedTable:
    """Row ranges of one table sorted by (account code, time offset)."""

    def __init__(self, code: np.ndarray, offset: np.ndarray, n_accounts: int, span: int) -> None:
        if n_accounts * span >= _MAX_KEY:
            raise ValueError("time span times number of accounts is too large for 64-bit keys")
        self.span = span
        # Rows must be sorted by (code, offset): EventData sorts every table so.
        self.key = code.astype(np.int64) * span + offset
        self.starts = np.searchsorted(code, np.arange(n_accounts + 1), side="left")
        self.n = len(code)

    def before(self, obs: Observations, lag: int = 0) -> np.ndarray:
        """Index one past the last row with time < as_of - lag, per observation."""
        off = np.clip(obs.as_of - lag, 0, self.span - 1)
        return np.searchsorted(self.key, obs.code * self.span + off, side="left")

    def start(self, obs: Observations) -> np.ndarray:
        """Index of the account's first row, per observation."""
        return self.starts[obs.code]


# --------------------------------------------------------------------------- range aggregates


def _pairs(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    idx = np.empty(2 * len(lo), dtype=np.int64)
    idx[0::2] = lo
    idx[1::2] = hi
    return idx


def _reduce(ufunc: np.ufunc, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, empty: float) -> np.ndarray:
    """``ufunc`` reduced over ``x[lo:hi]`` per range, ``empty`` for empty ranges.

    ``reduceat`` reduces each range on its own (first element, then the rest), so
    a result does not depend on anything outside its range. It needs indices
    inside the array: the few ranges that end at the last row (the last
    account's) are reduced on a small copy of the array's tail with a sentinel,
    which keeps the exact same order of operations without copying ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    out = np.full(len(lo), empty)
    if n == 0 or len(lo) == 0:
        return out
    part = ufunc.reduceat(x, _pairs(np.minimum(lo, n - 1), np.minimum(hi, n - 1)))[0::2]
    inner = lo < np.minimum(hi, n - 1)
    out[inner] = part[inner]
    to_end = (hi == n) & (lo < n)
    if to_end.any():
        first = int(lo[to_end].min())
        tail = np.append(x[first:], empty)
        ends = np.full(int(to_end.sum()), n - first)
        out[to_end] = ufunc.reduceat(tail, _pairs(lo[to_end] - first, ends))[0::2]
    return out


def range_sum(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of ``x[lo:hi]`` per range (0 for an empty range)."""
    return _reduce(np.add, x, lo, hi, 0.0)


def range_max(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """NaN-ignoring maximum of ``x[lo:hi]`` (NaN for an empty or all-NaN range)."""
    return _reduce(np.fmax, x, lo, hi, np.nan)


def range_min(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """NaN-ignoring minimum of ``x[lo:hi]`` (NaN for an empty or all-NaN range)."""
    return _reduce(np.fmin, x, lo, hi, np.nan)


class Counter:
    """Exact counts of a boolean flag over row ranges (integer prefix sums)."""

    def __init__(self, flag: np.ndarray) -> None:
        flag = np.asarray(flag)
        dtype = np.int32 if len(flag) < 2**31 - 1 else np.int64  # half the memory traffic
        self.cum = np.zeros(len(flag) + 1, dtype=dtype)
        np.cumsum(flag, dtype=dtype, out=self.cum[1:])

    def __call__(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The count of flagged rows in each range ``[lo, hi)``."""
        return (self.cum[hi] - self.cum[np.minimum(lo, hi)]).astype(np.float64)


def last(x: np.ndarray, start: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``x[hi - 1]`` where the range [start, hi) is not empty, else NaN."""
    out = np.full(len(hi), np.nan)
    ok = hi > start
    out[ok] = np.asarray(x, dtype=np.float64)[hi[ok] - 1]
    return out


def first(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``x[lo]`` where the range [lo, hi) is not empty, else NaN."""
    out = np.full(len(hi), np.nan)
    ok = hi > lo
    out[ok] = np.asarray(x, dtype=np.float64)[lo[ok]]
    return out


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Num / den, NaN where den is 0 or NaN."""
    out = np.full(len(num), np.nan)
    ok = np.isfinite(den) & (den != 0)
    out[ok] = num[ok] / den[ok]
    return out


def previous_in_account(x: np.ndarray, code: np.ndarray) -> np.ndarray:
    """The previous row's value within the same account (NaN on an account's first row)."""
    out = np.full(len(x), np.nan)
    if len(x) > 1:
        same = code[1:] == code[:-1]
        out[1:][same] = np.asarray(x, dtype=np.float64)[:-1][same]
    return out


def last_position(flag: np.ndarray) -> np.ndarray:
    """For each row, the index of the last row at or before it where ``flag`` holds (-1 if none)."""
    pos = np.where(flag, np.arange(len(flag)), -1)
    return np.maximum.accumulate(pos) if len(pos) else pos


def next_position(flag: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row at or after it where ``flag`` holds (n if none)."""
    n = len(flag)
    pos = np.where(flag, np.arange(n), n)
    return np.minimum.accumulate(pos[::-1])[::-1] if n else pos


def expand(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (range number, row) pairs of the ranges [lo, hi), ranges in order."""
    length = np.maximum(hi - lo, 0)
    which = np.repeat(np.arange(len(lo)), length)
    starts = np.cumsum(length) - length
    rows = np.arange(int(length.sum())) - np.repeat(starts, length) + np.repeat(lo, length)
    return which, rows


def account_codes(accounts: pd.Series, ids: pd.Series) -> np.ndarray:
    """Position of each id in ``accounts`` (sorted and unique, as EventData keeps it); -1 when unknown."""
    if pd.api.types.is_integer_dtype(accounts.dtype) and pd.api.types.is_integer_dtype(ids.dtype):
        keys = accounts.to_numpy(dtype=np.int64)
        values = ids.to_numpy(dtype=np.int64)
        pos = np.searchsorted(keys, values)
        clipped = np.minimum(pos, len(keys) - 1)
        found = (pos < len(keys)) & (keys[clipped] == values) if len(keys) else np.zeros(len(values), dtype=bool)
        return np.where(found, pos, -1).astype(np.int64)
    return np.asarray(pd.Index(accounts).get_indexer(ids), dtype=np.int64)


def label_mask(column: pd.Series, labels: set[str]) -> np.ndarray:
    """Rows whose label, lower-cased, is in ``labels`` (computed on the categories, not per row)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        lookup = np.append(np.asarray([str(c).lower() in labels for c in column.cat.categories], dtype=bool), False)
        return lookup[column.cat.codes.to_numpy()]  # code -1 (empty) picks the trailing False
    return column.astype(str).str.lower().isin(labels).to_numpy()


def label_codes(column: pd.Series, levels: list[str]) -> np.ndarray:
    """Position of each row's lower-cased label in ``levels`` (-1 when absent or empty)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        index = pd.Index(levels)
        lookup = np.append(index.get_indexer(pd.Index([str(c).lower() for c in column.cat.categories])), -1)
        return lookup[column.cat.codes.to_numpy()]
    return np.asarray(pd.Index(levels).get_indexer(pd.Index(column.astype(str).str.lower())), dtype=np.int64)
