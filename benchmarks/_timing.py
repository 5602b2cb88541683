"""Shared helpers for the benchmark scripts: repeated timing and machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_seconds(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs, and all runs."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def machine() -> str:
    import numpy as np
    import pandas as pd

    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}"
    )


def portfolio_matrix(accounts: int, seed: int) -> tuple[Any, Any, Any]:
    """make_portfolio(accounts, 24 months, seed) -> (events, X, y) on complete windows.

    The scoring grid of current accounts at month starts, the 30+ DPD in 90 days
    target and every feature; observations whose window is not complete dropped.
    """
    import riskscore as rs

    events, _ = rs.datasets.make_portfolio(n_accounts=accounts, months=24, seed=seed)
    obs = rs.observation_dates(events)
    y = rs.make_labels(events, obs)
    X = rs.FeatureBuilder().fit_transform(events, obs)
    known = y.notna().to_numpy()
    X, y = X[known], y[known].astype(int)
    y.index = X.index
    return events, X, y


def sample_model() -> Any:
    """A default RiskModel trained on every complete observation of the bundled sample, carrying its builder."""
    import riskscore as rs

    sample = rs.datasets.load_sample()
    obs = rs.observation_dates(sample)
    y = rs.make_labels(sample, obs)
    builder = rs.FeatureBuilder()
    X = builder.fit_transform(sample, obs)
    known = y.notna().to_numpy()
    return rs.RiskModel().fit(X[known], y[known].astype(int).set_axis(X[known].index), builder=builder)
