"""Observations: the (account_id, as_of) pairs to build features or labels for, checked against the accounts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.errors import DataValidationError, Problem
from riskscore.features import engine as E

__all__ = ["prepare_observations"]


def prepare_observations(events: EventData, obs: object) -> tuple[np.ndarray, np.ndarray, pd.MultiIndex]:
    """Account ids, ``as_of`` values (datetime64[ns]) and the (account_id, as_of) index of ``obs``.

    ``obs`` is a DataFrame with columns ``account_id`` and ``as_of`` (any index),
    or anything indexed by (``account_id``, ``as_of``): a feature matrix, a Series
    of labels, or the MultiIndex itself.
    """
    if isinstance(obs, pd.MultiIndex):
        frame = obs.to_frame(index=False)
    elif isinstance(obs, (pd.DataFrame, pd.Series)) and isinstance(obs.index, pd.MultiIndex):
        frame = obs.index.to_frame(index=False)
    elif isinstance(obs, pd.DataFrame):
        frame = obs
    else:
        raise DataValidationError(
            [
                Problem(
                    "observations", None, "type", f"must be a DataFrame (account_id, as_of); got {type(obs).__name__}"
                )
            ]
        )
    missing = [c for c in ("account_id", "as_of") if c not in frame.columns]
    if missing:
        raise DataValidationError(
            [
                Problem(
                    "observations",
                    missing[0],
                    "required_column",
                    f"required column is missing; got columns {list(map(str, frame.columns))}",
                )
            ]
        )
    ids = frame["account_id"]
    problems: list[Problem] = []
    as_of = (
        pd.to_datetime(frame["as_of"], errors="coerce", format="ISO8601")
        if not pd.api.types.is_datetime64_dtype(frame["as_of"].dtype)
        else frame["as_of"]
    )
    if isinstance(as_of.dtype, pd.DatetimeTZDtype):
        raise DataValidationError(
            [Problem("observations", "as_of", "naive_dates", f"must be naive dates; got {as_of.dtype}")]
        )
    as_of = as_of.astype("datetime64[ns]")
    bad = as_of.isna().to_numpy()
    if bad.any():
        problems.append(_obs_problem("as_of", "parse_date", "must be a date (ISO 8601 or datetime)", bad, ids))
    ns = as_of.to_numpy().view(np.int64)
    frac = ~bad & (ns % E.NS != 0)
    if frac.any():
        problems.append(_obs_problem("as_of", "whole_seconds", "must be whole seconds", frac, ids))
    code = E.account_codes(events.accounts["account_id"], ids)
    unknown = code < 0
    if unknown.any():
        problems.append(
            _obs_problem("account_id", "known_account", "every account_id must exist in accounts", unknown, ids)
        )
    known = np.flatnonzero(~unknown & ~bad)
    before_open = np.zeros(len(code), dtype=bool)
    before_open[known] = as_of.to_numpy()[known] <= events.accounts["open_date"].to_numpy()[code[known]]
    if before_open.any():
        problems.append(
            _obs_problem(
                "as_of",
                "after_open",
                "must be after the account's open_date (an account is not scored before it existed)",
                before_open,
                ids,
            )
        )
    if problems:
        raise DataValidationError(problems)
    index = pd.MultiIndex.from_arrays(
        [
            pd.Index(events.accounts["account_id"].to_numpy()[code], name="account_id"),
            pd.DatetimeIndex(as_of, name="as_of"),
        ]
    )
    return code, as_of.to_numpy(), index


def _obs_problem(column: str, rule: str, message: str, mask: np.ndarray, ids: pd.Series) -> Problem:
    found = pd.unique(ids.to_numpy()[mask])
    examples = tuple(v.item() if isinstance(v, np.generic) else v for v in found[:5])
    return Problem("observations", column, rule, message, int(mask.sum()), examples, len(found))
