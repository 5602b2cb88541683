"""Training on Dask collections: LightGBM's Dask estimator boosts on the cluster, the rest as in ``fit``.

LightGBM's Dask interface has no early stopping, so every round up to
``n_estimators`` is trained, the hold-out's log loss after each round is
computed here from the leaves each row reaches, and the model is cut at the
best round. This module is reached only from ``RiskModel.fit`` when it is given
Dask collections; it takes the estimator as an argument and never imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskscore.model.bundle import describe_training
from riskscore.model.calibration import fit_calibration
from riskscore.model.inputs import as_frame, labels
from riskscore.model.params import booster_params, feature_catalogue, monotone_directions, settings_of

__all__ = ["compute", "fit_dask", "is_dask", "logloss_by_round"]


def fit_dask(
    model: Any, X: Any, y: Any, *, eval_set: tuple[Any, Any] | None, catalogue: pd.DataFrame | None, builder: Any
) -> Any:
    """Boosting on a Dask cluster (LightGBM's Dask estimator), the rest as in ``fit``.

    LightGBM's Dask interface has no early stopping, so every round up to
    ``n_estimators`` is trained with the hold-out's log loss recorded, and
    the model is cut at the round with the lowest one: the model early
    stopping would have kept, at the cost of the rounds after it. The
    hold-out (``eval_set``, required) is also where the calibration is fitted.
    """
    import lightgbm as lgb

    if eval_set is None:
        raise ValueError(
            "with Dask collections, pass eval_set=(X_val, y_val): the rows (for instance the latest months) "
            "for early stopping and calibration; they may be pandas or Dask"
        )
    if model.refit:
        raise ValueError("refit=True is not available with Dask collections: it would train a second time")
    settings = settings_of(model)
    sample = X.head(1000, npartitions=-1)
    _, names = as_frame(model, sample, fitting=True)
    classes = np.sort(np.asarray(compute(y.unique())))
    if len(classes) != 2:
        raise ValueError(f"y must contain two classes; got {list(classes)}")
    model.classes_ = classes
    model.catalogue_ = feature_catalogue(names, catalogue, builder)
    X_val, y_val = (compute(v) for v in eval_set)
    hold_frame, _ = as_frame(model, X_val, fitting=False)
    hold_y = labels(model, y_val, len(hold_frame), fitting=False)
    rows = int(compute(X.shape[0]))
    monotone = monotone_directions(model.monotone, model.catalogue_, sample[names])
    params = booster_params(settings, rows, model.random_state, monotone)
    target = (y == classes[1]).astype("int64")
    clf = lgb.DaskLGBMClassifier(n_estimators=int(settings["n_estimators"]), **params)
    clf.fit(X[names], target)
    # The hold-out's log loss after every round, computed here from the leaves each row
    # reaches (LightGBM records it only on the worker that held the hold-out).
    losses = logloss_by_round(clf.booster_, hold_frame, hold_y)
    best = int(np.argmin(losses)) + 1
    model.booster_ = lgb.Booster(model_str=clf.booster_.model_to_string(num_iteration=best))
    margin = model.booster_.predict(hold_frame, raw_score=True)
    model.calibration_ = fit_calibration(model.calibration, margin, hold_y, None)
    positives = int(compute(target.sum()))
    manifest = describe_training(model, hold_frame, hold_y, y, np.arange(0), "eval_set (Dask)", hold_y, margin, builder)
    manifest["training"].update(rows=rows, positives=positives, rounds_trained=len(losses), dask=True)
    manifest["training"].pop("first_as_of", None)
    manifest["training"].pop("last_as_of", None)
    model.manifest_ = manifest
    return model


def is_dask(X: Any) -> bool:
    """A Dask DataFrame or Array (duck-typed: no Dask import needed to test it)."""
    return type(X).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(X, "compute")


def compute(value: Any) -> Any:
    """A Dask value computed; anything else as it is."""
    return (
        value.compute()
        if hasattr(value, "compute")
        and type(value).__module__.split(".")[0]
        in (
            "dask",
            "dask_expr",
        )
        else value
    )


def logloss_by_round(booster: Any, frame: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    """Log loss of ``frame`` after each boosting round: leaf outputs of every tree, summed cumulatively."""
    leaves = np.asarray(booster.predict(frame, pred_leaf=True), dtype=np.int64).reshape(len(frame), -1)
    rounds = leaves.shape[1]
    table = np.zeros((rounds, int(leaves.max()) + 1 if leaves.size else 1))
    for t in range(rounds):
        for leaf in np.unique(leaves[:, t]).tolist():
            table[t, leaf] = booster.get_leaf_output(t, leaf)
    margin = np.cumsum(table[np.arange(rounds), leaves], axis=1)
    p = np.clip(1.0 / (1.0 + np.exp(-margin)), 1e-15, 1 - 1e-15)
    return np.asarray(-(y[:, None] * np.log(p) + (1 - y[:, None]) * np.log(1 - p)).mean(axis=0))
