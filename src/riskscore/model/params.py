"""LightGBM settings: defaults, the constructor's checks, one parameter builder, monotone constraints.

The parameter builder serves the local and the Dask training paths alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from riskscore.model.scales import DEFAULT_BANDS, DEFAULT_POINTS, check_bands

__all__ = [
    "BOOSTER_SETTINGS",
    "DEFAULT_PARAMS",
    "TRAINING_KEYS",
    "bands_of",
    "booster_params",
    "feature_catalogue",
    "monotone_directions",
    "points_scale",
    "settings_of",
]

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    # Depth-3 trees of 7 leaves: exact TreeSHAP costs about 13x a prediction
    # (21x with depth 4 and 15 leaves, 104x with 31 leaves) and explaining a row
    # takes less time than with depth 4, at an AUC within 0.0004 of depth 4 on
    # the Taiwan data and the synthetic portfolio (benchmarks/RESULTS.md).
    "num_leaves": 7,
    "max_depth": 3,
    "min_child_samples": None,  # None: 0.5% of the training rows, between 20 and 500
    "min_sum_hessian_in_leaf": 1e-3,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 255,
    "n_estimators": 3000,
    "early_stopping_rounds": 100,
    "holdout_fraction": 0.25,
}
"""LightGBM settings for credit data: slow learning, shallow trees (depth 3), large
leaves, row and column subsampling, L2 shrinkage, early stopping on log loss.
Any LightGBM parameter may be added through ``params``."""


TRAINING_KEYS = ("n_estimators", "early_stopping_rounds", "holdout_fraction")
"""Keys of ``params`` that steer training in riskscore rather than being LightGBM parameters."""

BOOSTER_SETTINGS: tuple[str, ...] = (
    "n_estimators",
    "learning_rate",
    "num_leaves",
    "max_depth",
    "min_child_samples",
    "feature_fraction",
    "bagging_fraction",
    "bagging_freq",
    "lambda_l1",
    "lambda_l2",
    "min_split_gain",
    "max_bin",
    "early_stopping_rounds",
)
"""The common LightGBM settings that are ``RiskModel`` parameters of their own (``None``: the default), so
``GridSearchCV``, ``RandomizedSearchCV`` and Optuna tune them as with ``LGBMClassifier``."""

_WHOLE = ("n_estimators", "num_leaves", "max_depth", "min_child_samples", "bagging_freq", "max_bin",
          "early_stopping_rounds")  # fmt: skip
_SHARE = ("feature_fraction", "bagging_fraction")


def settings_of(model: Any) -> dict[str, Any]:
    """The model's constructor parameters checked, and its LightGBM settings over the defaults."""
    if model.calibration not in ("isotonic", "sigmoid", None):
        raise ValueError(f"calibration must be 'isotonic', 'sigmoid' or None; got {model.calibration!r}")
    if model.validation not in ("time", "stratified"):
        raise ValueError(f"validation must be 'time' or 'stratified'; got {model.validation!r}")
    if not (model.monotone in (None, "catalogue", "catalogue_strict") or isinstance(model.monotone, Mapping)):
        raise ValueError(f"monotone must be 'catalogue', 'catalogue_strict', a dict or None; got {model.monotone!r}")
    given = dict(model.params) if model.params else {}
    explicit = {k: getattr(model, k, None) for k in BOOSTER_SETTINGS}
    explicit = {k: v for k, v in explicit.items() if v is not None}
    twice = sorted(set(explicit) & set(given))
    if twice:
        raise ValueError(
            f"{twice[0]} is given twice: as a parameter ({explicit[twice[0]]!r}) and in params "
            f"({given[twice[0]]!r}); give it once"
        )
    for key, value in explicit.items():
        _check_setting(key, value)
    settings = {**DEFAULT_PARAMS, **given, **explicit}
    if not 0 < float(settings["holdout_fraction"]) < 1:
        raise ValueError(f"params['holdout_fraction'] must be between 0 and 1; got {settings['holdout_fraction']}")
    check_bands(bands_of(model))
    return settings


def _check_setting(key: str, value: Any) -> None:
    """A booster setting given as a parameter: a number of the right kind and range."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not number or not np.isfinite(value):
        raise ValueError(f"{key} must be a number; got {value!r}")
    if key in _WHOLE and value != int(value):
        raise ValueError(f"{key} must be a whole number; got {value!r}")
    if key == "max_depth" and value != -1 and value < 1:
        raise ValueError(f"max_depth must be >= 1 (or -1: no limit); got {value!r}")
    elif key in _SHARE and not 0 < value <= 1:
        raise ValueError(f"{key} must be in (0, 1]; got {value!r}")
    elif key in ("learning_rate",) and not value > 0:
        raise ValueError(f"{key} must be > 0; got {value!r}")
    elif key == "num_leaves" and value < 2:
        raise ValueError(f"num_leaves must be >= 2; got {value!r}")
    elif key in ("n_estimators", "min_child_samples", "early_stopping_rounds", "max_bin") and value < 1:
        raise ValueError(f"{key} must be >= 1; got {value!r}")
    elif key != "max_depth" and value < 0:
        raise ValueError(f"{key} must be >= 0; got {value!r}")


def bands_of(model: Any) -> dict[str, float]:
    """The model's risk bands (its ``bands`` or :data:`DEFAULT_BANDS`)."""
    return dict(model.bands) if model.bands is not None else dict(DEFAULT_BANDS)


def points_scale(model: Any) -> dict[str, float]:
    """The model's score scale: ``base_points``, ``base_odds``, ``pdo``."""
    return {**DEFAULT_POINTS, **(dict(model.points) if model.points else {})}


def booster_params(settings: Mapping[str, Any], rows: int, seed: int, monotone: list[int]) -> dict[str, Any]:
    """The LightGBM parameters of one training run, the same for the local and the Dask path.

    ``min_child_samples=None`` becomes 0.5% of the training rows, between 20
    and 500 (a twentieth of them below 200 rows, so tiny data still splits);
    training is deterministic and row-wise, with the given monotone constraints.
    """
    params = {k: v for k, v in settings.items() if k not in TRAINING_KEYS}
    if params.get("min_child_samples") is None:
        params["min_child_samples"] = int(np.clip(0.005 * rows, 20, 500))
        if rows < 200:  # tiny data (tests, examples): let trees split at all
            params["min_child_samples"] = max(2, rows // 20)
    params.update(
        verbose=-1,
        seed=seed,
        deterministic=True,
        force_row_wise=True,
        feature_pre_filter=False,
        monotone_constraints=monotone,
        metric="binary_logloss",
    )
    return params


def feature_catalogue(names: list[str], catalogue: pd.DataFrame | None, builder: Any) -> pd.DataFrame:
    """The catalogue of the model's features, every one described.

    The caller's ``catalogue``, else the ``builder``'s (with the directions
    declared to it) for the features it made, else read from the names.
    """
    from riskscore.features import describe

    if catalogue is not None:
        cat = catalogue.reindex(names)
        if cat["direction"].isna().any():
            missing = list(cat.index[cat["direction"].isna()][:5])
            raise ValueError(f"catalogue must describe every feature; missing {missing}")
        return cat
    cat = describe(names)
    own = getattr(builder, "catalogue_", None)
    if own is not None:
        known = [n for n in names if n in own.index]
        for column in cat.columns:
            cat.loc[known, column] = own.loc[known, column].to_numpy()
    return cat


def monotone_directions(monotone: Any, catalogue: pd.DataFrame, frame: pd.DataFrame) -> list[int]:
    """+1/-1/0 per column of ``frame``: from the catalogue, a dict, or none; categoricals never constrained."""
    if monotone is None:
        return [0] * frame.shape[1]
    if monotone in ("catalogue", "catalogue_strict"):
        directions = catalogue["direction"].reindex(frame.columns).fillna(0).astype(int).tolist()
    else:
        unknown = [k for k in monotone if k not in frame.columns]
        if unknown:
            raise ValueError(f"monotone names features the data lacks: {unknown[:5]}")
        directions = [int(monotone.get(c, 0)) for c in frame.columns]
        bad = [d for d in directions if d not in (-1, 0, 1)]
        if bad:
            raise ValueError(f"monotone directions must be -1, 0 or 1; got {bad[:5]}")
    return [
        0 if isinstance(frame[c].dtype, pd.CategoricalDtype) else d
        for c, d in zip(frame.columns, directions, strict=True)
    ]
