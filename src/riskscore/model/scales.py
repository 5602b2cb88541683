"""Credit scales: risk bands by PD upper bound, and score points (600 at 50:1 odds, 20 to double)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_BANDS", "DEFAULT_POINTS", "band_of", "check_bands", "points_of"]

DEFAULT_BANDS: dict[str, float] = {"A": 0.01, "B": 0.025, "C": 0.05, "D": 0.10, "E": 0.20, "F": 1.0}
"""Risk bands by upper PD bound (exclusive), best first; the last bound must be 1."""

DEFAULT_POINTS: dict[str, float] = {"base_points": 600.0, "base_odds": 50.0, "pdo": 20.0}
"""The score scale: 600 points at good:bad odds 50:1, 20 points more each time the odds double."""


_EPS = 1e-9


def check_bands(bands: dict[str, float]) -> None:
    """Names mapped to increasing PD upper bounds in (0, 1], the last one 1; a ValueError otherwise."""
    bounds = list(bands.values())
    if not bounds or any(not 0 < b <= 1 for b in bounds) or bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        raise ValueError(f"bands must map names to increasing PD upper bounds in (0, 1]; got {bands}")
    if bounds[-1] != 1.0:
        raise ValueError(f"the last band's upper bound must be 1 so every PD has a band; got {bounds[-1]}")


def band_of(p: np.ndarray, bands: dict[str, float]) -> Any:
    """The band of each PD: an ordered categorical, best band first."""
    check_bands(bands)
    names = list(bands)
    bounds = np.asarray(list(bands.values()))
    idx = np.minimum(np.searchsorted(bounds, p, side="right"), len(names) - 1)
    return pd.Categorical.from_codes(idx, dtype=pd.CategoricalDtype(names, ordered=True))


def points_of(p: np.ndarray, base_points: float, base_odds: float, pdo: float) -> np.ndarray:
    """Score points of each PD: ``base_points`` at odds ``base_odds``, ``pdo`` more per doubling of the odds."""
    if pdo <= 0 or base_odds <= 0:
        raise ValueError(f"pdo and base_odds must be positive; got pdo={pdo}, base_odds={base_odds}")
    p = np.clip(p, _EPS, 1 - _EPS)
    odds = (1.0 - p) / p
    return base_points + pdo / math.log(2) * np.log(odds / base_odds)
