"""Converters: each column of the contract checked and normalised to its kind.

A converter takes the table's :class:`Checker`, the column name and the raw
series; it returns the normalised series (or ``None`` when the column is
unusable) and records every problem on the checker, with example ids.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from riskscore.data.schema import Kind
from riskscore.errors import Problem

__all__ = ["CONVERTERS", "MAX_EXAMPLES", "Checker", "fmt", "plain"]

MAX_EXAMPLES = 5
"""Example account ids a problem names."""


def fmt(value: object) -> str:
    """A value as a message shows it: text quoted, whole floats without decimals, dates as dates."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    return str(value)


class Checker:
    """Collects the problems of one table, with example account_ids."""

    def __init__(self, table: str, frame: pd.DataFrame, problems: list[Problem]) -> None:
        self.table = table
        self.frame = frame
        self.problems = problems
        ids = frame["account_id"] if "account_id" in frame.columns else None
        self.ids = ids if isinstance(ids, pd.Series) else None

    def add(self, column: str | None, rule: str, message: str, mask: Any = None) -> None:
        """Record one broken rule; ``mask`` marks the offending rows (counted, with example ids)."""
        n_rows = n_accounts = 0
        examples: tuple[object, ...] = ()
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            n_rows = int(mask.sum())
            if self.ids is not None:
                found = pd.unique(self.ids[mask].dropna().to_numpy())
                n_accounts = len(found)
                examples = tuple(plain(v) for v in found[:MAX_EXAMPLES])
        self.problems.append(Problem(self.table, column, rule, message, n_rows, examples, n_accounts))

    def first_bad(self, series: pd.Series, mask: Any) -> str:
        """The first offending value, formatted for a message."""
        values = series.to_numpy()[np.asarray(mask, dtype=bool)]
        return fmt(values[0]) if len(values) else "?"


def plain(value: object) -> object:
    """A numpy scalar as the Python value a user would type."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --------------------------------------------------------------------------- kinds


_INT64_MAX = 2**63 - 1
_FLOAT_EXACT = 2.0**53


def _fits_int64(chk: Checker, col: str, s: pd.Series, over: np.ndarray) -> pd.Series | None:
    """``s`` as int64, or a problem for the ids a signed 64-bit integer cannot hold (never a wrapped id)."""
    if over.any():
        chk.add(
            col,
            "id_range",
            f"{col} must fit a signed 64-bit integer (below 2^63); got {chk.first_bad(s, over)}: "
            "store such ids as text",
            over,
        )
        return None
    return s.astype("int64")


def _to_id(chk: Checker, col: str, s: pd.Series) -> pd.Series | None:
    null = s.isna().to_numpy()
    if null.any():
        chk.add(col, "not_null", "must not be empty", null)
        return None
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        chk.add(col, "dtype", f"{col} must be integers or text; got dtype {dtype}")
        return None
    if pd.api.types.is_integer_dtype(dtype):
        if pd.api.types.is_unsigned_integer_dtype(dtype):
            return _fits_int64(chk, col, s, s.to_numpy() > np.uint64(_INT64_MAX))
        return s.astype("int64")
    if pd.api.types.is_float_dtype(dtype):
        values = s.to_numpy(dtype="float64")
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            chk.add(
                col,
                "dtype",
                f"{col} must be whole numbers or text; got {chk.first_bad(s, bad)}",
                bad,
            )
            return None
        inexact = np.abs(values) > _FLOAT_EXACT
        if inexact.any():
            chk.add(
                col,
                "id_range",
                f"{col} stored as floats must be below 2^53 to be exact (larger ones have lost digits); "
                f"got {chk.first_bad(s, inexact)}: store the ids as integers or text",
                inexact,
            )
            return None
        return s.astype("int64")
    values = s.to_numpy(dtype=object)
    types = {type(v) for v in values}
    if types <= {str}:
        return s.astype(str)
    if all(issubclass(t, (int, np.integer)) and not issubclass(t, (bool, np.bool_)) for t in types):
        return _fits_int64(chk, col, s, np.array([not -_INT64_MAX - 1 <= int(v) <= _INT64_MAX for v in values]))
    names = sorted(t.__name__ for t in types)
    bad = np.array([not isinstance(v, str) for v in values])
    chk.add(
        col,
        "dtype",
        f"{col} must be all integers or all text; got mixed types ({', '.join(names)})",
        bad,
    )
    return None


def _to_date(chk: Checker, col: str, s: pd.Series) -> pd.Series | None:
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        chk.add(
            col,
            "naive_dates",
            f"dates must be naive (one consistent local zone); got time-zone-aware {dtype}: "
            "convert with .dt.tz_convert(zone).dt.tz_localize(None)",
        )
        return None
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        chk.add(col, "dtype", f"must be dates (ISO 8601 text or datetime); got numeric dtype {dtype}")
        return None
    parsed = s if pd.api.types.is_datetime64_dtype(dtype) else _parse_dates(s)
    try:
        out = parsed.astype("datetime64[ns]")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        out = _parse_dates(parsed.astype(object))
    bad = (out.isna() & s.notna()).to_numpy()
    if bad.any():
        chk.add(
            col,
            "parse_date",
            "must be a date in ISO 8601 form (YYYY-MM-DD[ HH:MM:SS]) between 1678 and 2261; "
            f"got {chk.first_bad(s, bad)}",
            bad,
        )
    return out


def _parse_dates(s: pd.Series) -> pd.Series:
    """Text and date objects parsed as ISO 8601; anything else (numbers, lists) is NaT."""
    if not isinstance(s.dtype, pd.StringDtype):
        values = s.to_numpy(dtype=object)
        usable = np.fromiter((_date_like(v) for v in values), dtype=bool, count=len(values))
        if not usable.all():
            s = s.where(usable)
    try:
        return pd.to_datetime(s, format="ISO8601", errors="coerce").astype("datetime64[ns]")
    except Exception:  # mixed zones, odd objects: fall back to one value at a time
        return pd.Series([_parse_one_date(v) for v in s.to_numpy(dtype=object)], index=s.index, dtype="datetime64[ns]")


def _date_like(value: object) -> bool:
    return value is None or isinstance(value, (str, datetime.date, np.datetime64))


def _parse_one_date(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return pd.NaT
    if isinstance(value, (int, float, bool, np.number)):
        return pd.NaT
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except Exception:
        return pd.NaT
    if pd.isna(ts) or ts.tzinfo is not None:
        return pd.NaT
    try:
        return ts.as_unit("ns")
    except Exception:
        return pd.NaT


def _to_number(chk: Checker, col: str, s: pd.Series) -> pd.Series | None:
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        chk.add(col, "numeric", f"must be numeric; got dtype {dtype}")
        return None
    if pd.api.types.is_numeric_dtype(dtype):
        out = s.astype("float64")
    else:
        values = s.to_numpy(dtype=object)
        flags = np.fromiter((isinstance(v, (bool, np.bool_)) for v in values), dtype=bool, count=len(values))
        source = s.where(~flags) if flags.any() else s  # True/False are not amounts
        try:
            out = pd.to_numeric(source, errors="coerce").astype("float64")
        except Exception:
            out = pd.Series([_number_or_nan(v) for v in values], index=s.index)
        notnum = (out.isna() & s.notna()).to_numpy()
        if notnum.any():
            chk.add(col, "numeric", f"must be numeric; got {chk.first_bad(s, notnum)}", notnum)
    values = out.to_numpy()
    inf = np.isinf(values)
    if inf.any():
        chk.add(col, "finite", f"must be finite; got {chk.first_bad(out, inf)}", inf)
    return out


def _number_or_nan(value: object) -> float:
    if isinstance(value, (bool, np.bool_)):
        return np.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan


def _to_category(chk: Checker, col: str, s: pd.Series) -> pd.Series | None:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s
    try:
        codes, uniques = pd.factorize(s, sort=False)
    except TypeError:  # unhashable values (lists, dicts)
        bad = np.array([not _is_label(v) for v in s.to_numpy(dtype=object)])
        chk.add(col, "label", f"must be text labels; got {chk.first_bad(s, bad)}", bad)
        return None
    kinds = {_label_kind(v) for v in np.asarray(uniques, dtype=object)}
    if None in kinds or len(kinds) > 1:
        wrong = [i for i, v in enumerate(np.asarray(uniques, dtype=object)) if _label_kind(v) != "text"]
        bad = np.isin(codes, wrong)
        chk.add(col, "label", f"must be text labels; got {chk.first_bad(s, bad)}", bad)
        return None
    return s.astype("category")


def _label_kind(value: object) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    return None


def _is_label(value: object) -> bool:
    return value is None or _label_kind(value) is not None


def _to_timezone(chk: Checker, col: str, s: pd.Series) -> pd.Series | None:
    out = _to_category(chk, col, s)
    if out is None:
        return None
    bad_names = [name for name in out.cat.categories if not _is_iana(name)]
    if bad_names:
        mask = out.isin(bad_names).to_numpy()
        chk.add(
            col,
            "iana_timezone",
            f"must be an IANA time-zone name such as 'Asia/Shanghai' or empty; got {fmt(bad_names[0])}",
            mask,
        )
    return out


def _is_iana(name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


CONVERTERS: dict[Kind, Callable[[Checker, str, pd.Series], pd.Series | None]] = {
    "id": _to_id,
    "date": _to_date,
    "number": _to_number,
    "integer": _to_number,
    "category": _to_category,
    "timezone": _to_timezone,
}


# --------------------------------------------------------------------------- tables
