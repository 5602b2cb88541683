"""Which sample each ``as_of`` date belongs to for a fitted model: development, hold-out or out of time.

The manifest of a fit records the training window (``first_as_of``,
``last_as_of``) and how the hold-out was chosen (``"time: as_of >= D"`` or
``"stratified"``). From these alone, and the dates asked about:

``development``
    dates the trees were grown on (with ``refit=True``, the hold-out dates too,
    since the final model was refit on them);
``hold-out``
    dates held out for early stopping and calibration (a time hold-out only);
``out of time``
    dates after the training window: the only honest measure of the model's
    performance on new data;
``before training``
    dates before the training window.

Metrics over development dates are in-sample and read high; a report or a
monitoring job states which sample each figure comes from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SAMPLES", "holdout_start", "sample_of"]

SAMPLES: tuple[str, ...] = ("before training", "development", "hold-out", "out of time")
"""The samples, in time order."""


def holdout_start(model: Any) -> pd.Timestamp | None:
    """The first ``as_of`` of a time hold-out, or None (stratified hold-out, or not recorded)."""
    how = str(_training(model).get("holdout", ""))
    if how.startswith("time: as_of >= "):
        return pd.Timestamp(how.removeprefix("time: as_of >= "))
    return None


def sample_of(model: Any, as_of: Any) -> np.ndarray:
    """The sample of each date in ``as_of`` for ``model`` (a fitted RiskModel): one of :data:`SAMPLES`."""
    training = _training(model)
    if "first_as_of" not in training or "last_as_of" not in training:
        raise ValueError(
            "the model's manifest records no training window (it was fit without an as_of index level), so "
            "development and out-of-time dates cannot be told apart"
        )
    dates = pd.DatetimeIndex(pd.to_datetime(np.asarray(as_of)))
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    first, last = pd.Timestamp(training["first_as_of"]), pd.Timestamp(training["last_as_of"])
    held = holdout_start(model)
    out = np.full(len(dates), "development", dtype=object)
    if held is not None and not bool(getattr(model, "refit", False)):
        out[(dates >= held) & (dates <= last)] = "hold-out"
    out[dates < first] = "before training"
    out[dates > last] = "out of time"
    return out


def _training(model: Any) -> dict[str, Any]:
    manifest = getattr(model, "manifest_", None)
    if not isinstance(manifest, dict):
        raise ValueError("the model is not fitted: it has no manifest")
    training = manifest.get("training", {})
    return dict(training) if isinstance(training, dict) else {}
