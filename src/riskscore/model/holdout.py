"""The held-out slice for early stopping and calibration: the latest as_of dates, or a stratified sample."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

__all__ = ["holdout_split"]

logger = logging.getLogger("riskscore.model")


def holdout_split(
    frame: pd.DataFrame, y: np.ndarray, fraction: float, validation: str, random_state: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Positions of the training and held-out rows, and how the hold-out was chosen.

    ``validation="time"``: the latest ``as_of`` dates holding about ``fraction``
    of the rows, when the index has an ``as_of`` level and both sides hold both
    classes; otherwise (and for ``"stratified"``) a stratified random sample.
    """
    n = len(frame)
    names = list(frame.index.names) if isinstance(frame.index, pd.MultiIndex) else [frame.index.name]
    if validation == "time" and "as_of" in names:
        as_of = np.asarray(frame.index.get_level_values("as_of"))
        dates = np.unique(as_of)
        if len(dates) >= 2:
            counts = np.array([np.sum(as_of == d) for d in dates])
            later = np.cumsum(counts[::-1])[::-1]  # rows on or after each date
            cut_pos = int(np.argmax(later <= fraction * n)) if (later <= fraction * n).any() else len(dates) - 1
            cut_pos = min(max(cut_pos, 1), len(dates) - 1)
            hold = as_of >= dates[cut_pos]
            if 0 < y[hold].sum() < hold.sum() and 0 < y[~hold].sum() < (~hold).sum():
                return (
                    np.flatnonzero(~hold),
                    np.flatnonzero(hold),
                    f"time: as_of >= {pd.Timestamp(dates[cut_pos]).date()}",
                )
        warnings.warn(
            "validation='time' needs at least two as_of dates with both classes on each side; "
            "using a stratified random hold-out instead",
            UserWarning,
            stacklevel=3,
        )
    elif validation == "time":
        logger.info("no as_of index level: stratified hold-out instead of a time-ordered one")
    rng = np.random.default_rng(random_state)
    hold = np.zeros(n, dtype=bool)
    for cls in (0.0, 1.0):
        idx = np.flatnonzero(y == cls)
        take = max(1, round(fraction * len(idx))) if len(idx) > 1 else 0
        hold[rng.choice(idx, size=min(take, len(idx) - 1), replace=False)] = True
    return np.flatnonzero(~hold), np.flatnonzero(hold), "stratified"
