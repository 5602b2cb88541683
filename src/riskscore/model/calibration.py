"""Calibration: the map from the booster's raw margin to a PD, fitted on held-out rows and stored as numbers."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from riskscore.errors import BundleIntegrityError

__all__ = ["PD_FLOOR", "apply_calibration", "fit_calibration"]

PD_FLOOR = 1e-4
"""Calibrated PDs stay within [PD_FLOOR, 1 - PD_FLOOR]: an isotonic step with no
default in the hold-out would otherwise say 0, a certainty no sample supports
(regulators floor PDs too: 0.03% under Basel)."""


def fit_calibration(method: str | None, margin: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> dict[str, Any]:
    """The calibration map of ``method`` (isotonic, sigmoid or None) fitted on held-out margins and labels."""
    if method is None:
        return {"method": None}
    if not 0 < y.sum() < len(y):
        warnings.warn(
            "the held-out rows hold one class only: no calibration is fitted, probabilities are the booster's",
            UserWarning,
            stacklevel=3,
        )
        return {"method": None}
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000)
        lr.fit(margin.reshape(-1, 1), y, sample_weight=w)
        return {"method": "sigmoid", "slope": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])}
    return _centred_isotonic(margin, y, w)


def _centred_isotonic(margin: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> dict[str, Any]:
    """Centred isotonic regression (Oron and Flournoy, 2017) of y on the margin.

    Plain isotonic regression is a step function: whole ranges of margins get the
    same probability, which throws away the booster's ranking inside each step
    (ROC AUC drops). Placing each step's value at the weighted mean margin of its
    rows and interpolating linearly between those centres keeps the fit
    monotone, calibrated on the steps, and strictly increasing between the first
    and the last centre.
    """
    from sklearn.isotonic import IsotonicRegression

    weight = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    order = np.argsort(margin, kind="stable")
    xs, ys, ws = margin[order], y[order], weight[order]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True).fit(xs, ys, sample_weight=ws).predict(xs)
    starts = np.flatnonzero(np.concatenate([[True], np.diff(fitted) != 0]))
    centres = np.add.reduceat(xs * ws, starts) / np.add.reduceat(ws, starts)
    return {"method": "isotonic", "x": [float(v) for v in centres], "y": [float(v) for v in fitted[starts]]}


def apply_calibration(calibration: dict[str, Any], margin: np.ndarray) -> np.ndarray:
    """PD from the raw margin, kept within [PD_FLOOR, 1 - PD_FLOOR]."""
    method = calibration.get("method")
    if method is None:
        p = 1.0 / (1.0 + np.exp(-margin))
    elif method == "sigmoid":
        p = 1.0 / (1.0 + np.exp(-(calibration["slope"] * margin + calibration["intercept"])))
    elif method == "isotonic":
        p = np.interp(margin, np.asarray(calibration["x"]), np.asarray(calibration["y"]))
    else:
        raise BundleIntegrityError(f"unknown calibration method {method!r}")
    return np.clip(p, PD_FLOOR, 1.0 - PD_FLOOR)
