"""`RiskModel`: a calibrated LightGBM probability of default, its credit scales, its bundle.

The model learns from point-in-time features (rows indexed by ``account_id`` and
``as_of``) and a 0/1 target. Early stopping and calibration use a held-out slice:
the latest ``as_of`` dates of the training data when the index carries them (the
model is judged on the future, as it will be used), a stratified random slice
otherwise, or an explicit ``eval_set``. The booster is fitted on the rest; the
calibration map (isotonic or sigmoid on the raw margin) is fitted on the held-out
slice only and stored as plain numbers.

A bundle is a folder with LightGBM's text model, a JSON manifest, the feature
catalogue and a checksum file; loading verifies every hash and never unpickles.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from riskscore.errors import BundleIntegrityError, DataValidationError, NotFittedError, Problem

__all__ = ["BUNDLE_VERSION", "DEFAULT_BANDS", "DEFAULT_PARAMS", "PD_FLOOR", "RiskModel"]

logger = logging.getLogger(__name__)

BUNDLE_VERSION = 1
_MODEL_FILE = "model.txt"
_MANIFEST_FILE = "manifest.json"
_CATALOGUE_FILE = "catalogue.csv"
_CHECKSUM_FILE = "SHA256SUMS"

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    # Depth-4 trees: exact TreeSHAP costs 25x a prediction instead of 104x with
    # 31-leaf trees, at the same AUC on the Taiwan data and the synthetic
    # portfolio (benchmarks/RESULTS.md): explanations stay affordable.
    "num_leaves": 15,
    "max_depth": 4,
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
"""LightGBM settings for credit data: slow learning, shallow trees (depth 4), large
leaves, row and column subsampling, L2 shrinkage, early stopping on log loss.
Any LightGBM parameter may be added through ``params``."""

DEFAULT_BANDS: dict[str, float] = {"A": 0.01, "B": 0.025, "C": 0.05, "D": 0.10, "E": 0.20, "F": 1.0}
"""Risk bands by upper PD bound (exclusive), best first; the last bound must be 1."""

DEFAULT_POINTS: dict[str, float] = {"base_points": 600.0, "base_odds": 50.0, "pdo": 20.0}

PD_FLOOR = 1e-4
"""Calibrated PDs stay within [PD_FLOOR, 1 - PD_FLOOR]: an isotonic step with no
default in the hold-out would otherwise say 0, a certainty no sample supports
(regulators floor PDs too: 0.03% under Basel)."""

_EPS = 1e-9


class RiskModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Calibrated LightGBM probability of default.

    Parameters
    ----------
    params : dict, optional
        LightGBM parameters overriding :data:`DEFAULT_PARAMS` (also
        ``n_estimators``, ``early_stopping_rounds`` and ``holdout_fraction``).
    monotone : "catalogue", dict or None, default="catalogue"
        Monotone constraints. ``"catalogue"``: each feature's expected risk
        direction from the feature catalogue (``riskscore.features.describe``,
        or the ``catalogue`` passed to :meth:`fit`); a dict maps feature names
        to +1/-1/0; ``None`` for none. Categorical features are never constrained.
    calibration : {"isotonic", "sigmoid"} or None, default="isotonic"
        Map from the raw margin to a probability, fitted on held-out rows only.
    validation : {"time", "stratified"}, default="time"
        How the held-out slice is chosen when no ``eval_set`` is given: the
        latest ``as_of`` dates (needs an ``as_of`` index level; falls back to
        stratified with a warning), or a stratified random sample.
    random_state : int, default=0
    bands : dict, optional
        Risk band names and their upper PD bounds (:data:`DEFAULT_BANDS`).
    points : dict, optional
        ``base_points``, ``base_odds``, ``pdo`` of the score scale (600 points
        at good:bad odds 50:1, 20 points to double the odds).
    refit : bool, default=False
        After early stopping and calibration, train the final booster once more
        on every training row (hold-out included) with the number of trees
        scaled up by the hold-out share. More data for the final model (a
        little better ranking when data is scarce); the calibration map is still
        the one fitted on the first booster's held-out predictions, so check
        the calibration of the refitted model on later data.

    Attributes
    ----------
    booster_ : lightgbm.Booster
    classes_ : ndarray of shape (2,)
    feature_names_in_ : ndarray (when fitted on a DataFrame)
    n_features_in_ : int
    calibration_ : dict
        The calibration map as plain numbers.
    catalogue_ : DataFrame
        The feature catalogue in use (direction, group, description).
    manifest_ : dict
        Training window, target, metrics, versions: what :meth:`save` writes.

    Examples
    --------
    >>> import numpy as np, riskscore as rs
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 3)); y = (X[:, 0] + rng.normal(size=2000) > 1.5).astype(int)
    >>> model = rs.RiskModel(validation="stratified").fit(X, y)
    >>> model.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        monotone: Literal["catalogue"] | Mapping[str, int] | None = "catalogue",
        calibration: Literal["isotonic", "sigmoid"] | None = "isotonic",
        validation: Literal["time", "stratified"] = "time",
        random_state: int = 0,
        bands: Mapping[str, float] | None = None,
        points: Mapping[str, float] | None = None,
        refit: bool = False,
    ) -> None:
        self.params = params
        self.monotone = monotone
        self.calibration = calibration
        self.validation = validation
        self.random_state = random_state
        self.bands = bands
        self.points = points
        self.refit = refit

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "booster_")

    # ----------------------------------------------------------------- fit

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
        catalogue: pd.DataFrame | None = None,
        builder: Any = None,
    ) -> RiskModel:
        """Fit the booster with early stopping, then the calibration map on held-out rows.

        Parameters
        ----------
        X : DataFrame or array of shape (n, p)
            Features; pandas categoricals and NaN are handled natively.
        y : array-like of shape (n,)
            Binary target. Missing labels (incomplete windows) are an error: drop
            them first, e.g. ``X[y.notna()]``.
        sample_weight : array-like, optional
        eval_set : (X_val, y_val), optional
            Rows for early stopping and calibration instead of a held-out slice.
        catalogue : DataFrame, optional
            The feature catalogue (``FeatureBuilder.catalogue_``); default: read
            from the feature names.
        builder : FeatureBuilder, optional
            The fitted builder that made ``X``; its settings go into the bundle.

        Returns
        -------
        self
        """
        if _is_dask(X):
            return self._fit_dask(X, y, eval_set=eval_set, catalogue=catalogue, builder=builder)
        settings = self._settings()
        frame, names = self._as_frame(X, fitting=True)
        labels = self._labels(y, len(frame))
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if weight is not None and weight.shape != (len(frame),):
            raise ValueError(f"sample_weight must have one value per row ({len(frame)}); got shape {weight.shape}")
        from riskscore.features import describe

        cat = describe(names) if catalogue is None else catalogue.reindex(names)
        if catalogue is not None and cat["direction"].isna().any():
            missing = list(cat.index[cat["direction"].isna()][:5])
            raise ValueError(f"catalogue must describe every feature; missing {missing}")
        self.catalogue_ = cat
        if eval_set is not None:
            val_frame, _ = self._as_frame(eval_set[0], fitting=False)
            val_labels = self._labels(eval_set[1], len(val_frame), fitting=False)
            train_idx = np.arange(len(frame))
            fit_frame, fit_y, fit_w = frame, labels, weight
            hold_frame, hold_y, hold_w = val_frame, val_labels, None
            how = "eval_set"
        else:
            train_idx, hold_idx, how = self._split(frame, labels, settings["holdout_fraction"])
            fit_frame, fit_y = frame.iloc[train_idx], labels[train_idx]
            fit_w = None if weight is None else weight[train_idx]
            hold_frame, hold_y = frame.iloc[hold_idx], labels[hold_idx]
            hold_w = None if weight is None else weight[hold_idx]
        self.booster_ = self._train(fit_frame, fit_y, fit_w, hold_frame, hold_y, hold_w, settings)
        margin = self.booster_.predict(hold_frame, raw_score=True)
        self.calibration_ = _fit_calibration(self.calibration, margin, hold_y, hold_w)
        if self.refit and eval_set is None:
            rounds = math.ceil(self.booster_.num_trees() * len(frame) / len(fit_frame))
            self.booster_ = self._train(frame, labels, weight, None, None, None, {**settings, "n_estimators": rounds})
        self.manifest_ = self._describe_training(frame, labels, y, train_idx, how, hold_y, margin, builder)
        return self

    def _fit_dask(
        self, X: Any, y: Any, *, eval_set: tuple[Any, Any] | None, catalogue: pd.DataFrame | None, builder: Any
    ) -> RiskModel:
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
        if self.refit:
            raise ValueError("refit=True is not available with Dask collections: it would train a second time")
        settings = self._settings()
        sample = X.head(1000, npartitions=-1)
        _, names = self._as_frame(sample, fitting=True)
        classes = np.sort(np.asarray(_compute(y.unique())))
        if len(classes) != 2:
            raise ValueError(f"y must contain two classes; got {list(classes)}")
        self.classes_ = classes
        from riskscore.features import describe

        self.catalogue_ = describe(names) if catalogue is None else catalogue.reindex(names)
        X_val, y_val = (_compute(v) for v in eval_set)
        hold_frame, _ = self._as_frame(X_val, fitting=False)
        hold_y = self._labels(y_val, len(hold_frame), fitting=False)
        rows = int(_compute(X.shape[0]))
        params = {
            k: v for k, v in settings.items() if k not in ("n_estimators", "early_stopping_rounds", "holdout_fraction")
        }
        if params.get("min_child_samples") is None:
            params["min_child_samples"] = int(np.clip(0.005 * rows, 20, 500))
        params.update(
            verbose=-1,
            seed=self.random_state,
            deterministic=True,
            force_row_wise=True,
            feature_pre_filter=False,
            monotone_constraints=self._monotone(sample[names]),
        )
        labels = (y == classes[1]).astype("int64")
        clf = lgb.DaskLGBMClassifier(n_estimators=int(settings["n_estimators"]), **params)
        clf.fit(X[names], labels)
        # The hold-out's log loss after every round, computed here from the leaves each row
        # reaches (LightGBM records it only on the worker that held the hold-out).
        losses = _logloss_by_round(clf.booster_, hold_frame, hold_y)
        best = int(np.argmin(losses)) + 1
        self.booster_ = lgb.Booster(model_str=clf.booster_.model_to_string(num_iteration=best))
        margin = self.booster_.predict(hold_frame, raw_score=True)
        self.calibration_ = _fit_calibration(self.calibration, margin, hold_y, None)
        positives = int(_compute(labels.sum()))
        manifest = self._describe_training(
            hold_frame, hold_y, y, np.arange(0), "eval_set (Dask)", hold_y, margin, builder
        )
        manifest["training"].update(rows=rows, positives=positives, rounds_trained=len(losses), dask=True)
        manifest["training"].pop("first_as_of", None)
        manifest["training"].pop("last_as_of", None)
        self.manifest_ = manifest
        return self

    def _settings(self) -> dict[str, Any]:
        if self.calibration not in ("isotonic", "sigmoid", None):
            raise ValueError(f"calibration must be 'isotonic', 'sigmoid' or None; got {self.calibration!r}")
        if self.validation not in ("time", "stratified"):
            raise ValueError(f"validation must be 'time' or 'stratified'; got {self.validation!r}")
        if not (self.monotone is None or self.monotone == "catalogue" or isinstance(self.monotone, Mapping)):
            raise ValueError(f"monotone must be 'catalogue', a dict or None; got {self.monotone!r}")
        settings = {**DEFAULT_PARAMS, **(dict(self.params) if self.params else {})}
        if not 0 < float(settings["holdout_fraction"]) < 1:
            raise ValueError(f"params['holdout_fraction'] must be between 0 and 1; got {settings['holdout_fraction']}")
        _check_bands(self._bands())
        return settings

    def _bands(self) -> dict[str, float]:
        return dict(self.bands) if self.bands is not None else dict(DEFAULT_BANDS)

    def _points(self) -> dict[str, float]:
        return {**DEFAULT_POINTS, **(dict(self.points) if self.points else {})}

    def _as_frame(self, X: Any, *, fitting: bool) -> tuple[pd.DataFrame, list[str]]:
        """X as a DataFrame of float and categorical columns, in the fitted column order.

        DataFrames keep their column names and categoricals; arrays go through
        scikit-learn's input validation (finite or NaN numbers, 2-D, no sparse).
        """
        if isinstance(X, pd.DataFrame):
            frame = X.set_axis([str(c) for c in X.columns], axis=1)
            if fitting:
                if frame.shape[1] == 0:
                    raise ValueError(f"0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
                names = list(frame.columns)
                if all(isinstance(c, str) for c in X.columns):
                    self.feature_names_in_ = np.asarray(names, dtype=object)
                elif hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            else:
                names = self._feature_names()
                missing = [c for c in names if c not in frame.columns]
                if missing:
                    raise DataValidationError(
                        [
                            Problem(
                                "features",
                                str(missing[0]),
                                "required_column",
                                f"the model needs {len(missing)} features the data lacks: {missing[:10]}",
                            )
                        ]
                    )
                frame = frame[names]
        else:
            from sklearn.utils.validation import validate_data

            arr = validate_data(
                self,
                X,
                reset=fitting,
                dtype=np.float64,
                ensure_all_finite="allow-nan",
                ensure_min_samples=1,
                skip_check_array=False,
            )
            names = [f"x{i}" for i in range(arr.shape[1])] if fitting else self._feature_names()
            frame = pd.DataFrame(arr, columns=names)
        if fitting:
            self.n_features_in_ = len(names)
            self._names_ = names
        if len(frame) == 0:
            raise ValueError("Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 is required.")
        return self._conform(frame, fitting=fitting), names

    def _feature_names(self) -> list[str]:
        return list(self._names_)

    def _conform(self, frame: pd.DataFrame, *, fitting: bool) -> pd.DataFrame:
        """Numbers as float64 and categoricals with the training levels (unseen: empty, warned)."""
        out: dict[str, Any] = {}
        if fitting:
            self.categories_ = {}
        for col in frame.columns:
            series = frame[col]
            if isinstance(series.dtype, pd.CategoricalDtype) or (
                fitting and (pd.api.types.is_string_dtype(series.dtype) or series.dtype == object)
            ):
                if fitting:
                    seen = [str(v) for v in pd.unique(series.dropna().astype(str))]
                    self.categories_[str(col)] = sorted(seen)
                known = self.categories_.get(str(col))
                if known is None:
                    raise DataValidationError(
                        [Problem("features", str(col), "dtype", "must be numeric as in training; got categories")]
                    )
                text = series.astype(object).where(series.notna(), None)
                text = text.map(lambda v: None if v is None else str(v))
                codes = pd.Index(known).get_indexer(pd.Index(text))
                unseen = (codes < 0) & text.notna().to_numpy()
                if unseen.any() and not fitting:
                    warnings.warn(
                        f"features.{col}: {int(unseen.sum())} rows have categories not seen in training "
                        f"({sorted(set(text[unseen]))[:5]}); they are scored as missing",
                        UserWarning,
                        stacklevel=4,
                    )
                out[col] = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(known))
            else:
                if str(col) in getattr(self, "categories_", {}) and not fitting:
                    raise DataValidationError(
                        [
                            Problem(
                                "features", str(col), "dtype", f"must be categorical as in training; got {series.dtype}"
                            )
                        ]
                    )
                try:
                    out[col] = series.to_numpy(dtype=np.float64, na_value=np.nan)
                except (TypeError, ValueError) as exc:
                    raise DataValidationError(
                        [Problem("features", str(col), "numeric", f"must be numeric; got dtype {series.dtype}")]
                    ) from exc
        return pd.DataFrame(out, index=frame.index)

    def _labels(self, y: Any, n: int, *, fitting: bool = True) -> np.ndarray:
        """Y as 0.0/1.0 (1 = the second of the sorted classes); learns ``classes_`` when fitting."""
        if isinstance(y, pd.DataFrame):
            if y.shape[1] != 1:
                raise ValueError(f"y must be one column; got {y.shape[1]}")
            y = y.iloc[:, 0]
        if y is None:
            raise ValueError("RiskModel requires y to be passed, but the target y is None")
        raw = y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y)
        if raw.ndim == 2 and raw.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it is flattened.",
                _data_conversion_warning(),
                stacklevel=3,
            )
            raw = raw.ravel()
        series = pd.Series(raw)
        if len(series) != n:
            raise ValueError(f"y must have one label per row of X ({n}); got {len(series)}")
        if series.isna().any():
            raise ValueError(
                f"y has {int(series.isna().sum())} missing labels (windows not complete in the data); "
                "drop those rows first, e.g. X[y.notna()], y.dropna()"
            )
        if fitting:
            from sklearn.utils.multiclass import check_classification_targets

            check_classification_targets(series.to_numpy())
            classes = np.unique(series.to_numpy())
            if len(classes) == 1:
                raise ValueError(f"y must contain two classes; got one class: {_plain(classes[0])!r}")
            if len(classes) > 2:
                raise ValueError(
                    f"Only binary classification is supported. y has {len(classes)} classes: {list(classes)[:5]}"
                )
            self.classes_ = classes
        return (series.to_numpy() == self.classes_[1]).astype(np.float64)

    def _split(self, frame: pd.DataFrame, y: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray, str]:
        n = len(frame)
        names = list(frame.index.names) if isinstance(frame.index, pd.MultiIndex) else [frame.index.name]
        if self.validation == "time" and "as_of" in names:
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
        elif self.validation == "time":
            logger.info("no as_of index level: stratified hold-out instead of a time-ordered one")
        rng = np.random.default_rng(self.random_state)
        hold = np.zeros(n, dtype=bool)
        for cls in (0.0, 1.0):
            idx = np.flatnonzero(y == cls)
            take = max(1, round(fraction * len(idx))) if len(idx) > 1 else 0
            hold[rng.choice(idx, size=min(take, len(idx) - 1), replace=False)] = True
        return np.flatnonzero(~hold), np.flatnonzero(hold), "stratified"

    def _monotone(self, frame: pd.DataFrame) -> list[int]:
        if self.monotone is None:
            return [0] * frame.shape[1]
        if self.monotone == "catalogue":
            directions = self.catalogue_["direction"].reindex(frame.columns).fillna(0).astype(int).tolist()
        else:
            unknown = [k for k in self.monotone if k not in frame.columns]
            if unknown:
                raise ValueError(f"monotone names features the data lacks: {unknown[:5]}")
            directions = [int(self.monotone.get(c, 0)) for c in frame.columns]
            bad = [d for d in directions if d not in (-1, 0, 1)]
            if bad:
                raise ValueError(f"monotone directions must be -1, 0 or 1; got {bad[:5]}")
        return [
            0 if isinstance(frame[c].dtype, pd.CategoricalDtype) else d
            for c, d in zip(frame.columns, directions, strict=True)
        ]

    def _train(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        w: np.ndarray | None,
        X_val: pd.DataFrame | None,
        y_val: np.ndarray | None,
        w_val: np.ndarray | None,
        settings: dict[str, Any],
    ) -> Any:
        import lightgbm as lgb

        params = {
            k: v for k, v in settings.items() if k not in ("n_estimators", "early_stopping_rounds", "holdout_fraction")
        }
        if params.get("min_child_samples") is None:
            params["min_child_samples"] = int(np.clip(0.005 * len(X), 20, 500))
            if len(X) < 200:  # tiny data (tests, examples): let trees split at all
                params["min_child_samples"] = max(2, len(X) // 20)
        params.update(
            verbose=-1,
            seed=self.random_state,
            deterministic=True,
            force_row_wise=True,
            feature_pre_filter=False,
            monotone_constraints=self._monotone(X),
            metric="binary_logloss",
        )
        train = lgb.Dataset(X, label=y, weight=w, free_raw_data=False)
        if X_val is None:  # a refit with a fixed number of trees
            booster = lgb.train(params, train, num_boost_round=int(settings["n_estimators"]))
            return lgb.Booster(model_str=booster.model_to_string())
        valid = lgb.Dataset(X_val, label=y_val, weight=w_val, reference=train, free_raw_data=False)
        callbacks: list[Any] = [lgb.early_stopping(int(settings["early_stopping_rounds"]), verbose=False)]
        booster = lgb.train(
            params,
            train,
            num_boost_round=int(settings["n_estimators"]),
            valid_sets=[valid],
            valid_names=["holdout"],
            callbacks=callbacks,
        )
        booster.best_iteration = booster.best_iteration or booster.current_iteration()
        # Keep only the trees that early stopping chose: the saved model is then exactly what predicts.
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))

    def _describe_training(
        self,
        frame: pd.DataFrame,
        labels: np.ndarray,
        y: Any,
        train_idx: np.ndarray,
        how: str,
        hold_y: np.ndarray,
        margin: np.ndarray,
        builder: Any,
    ) -> dict[str, Any]:
        from riskscore.evaluate import evaluate

        window: dict[str, Any] = {"rows": len(frame), "positives": int(labels.sum())}
        if isinstance(frame.index, pd.MultiIndex) and "as_of" in frame.index.names:
            as_of = frame.index.get_level_values("as_of")
            window.update(first_as_of=str(as_of.min().date()), last_as_of=str(as_of.max().date()))
        hold_pd = _apply_calibration(self.calibration_, margin)
        metrics = {}
        if 0 < hold_y.sum() < len(hold_y):
            report = evaluate(hold_y, hold_pd)
            metrics = {k: report.summary[k] for k in ("auc", "gini", "ks", "brier", "log_loss", "ece")}
        target = {"name": str(getattr(y, "name", None) or "target"), "positive_class": _plain(self.classes_[1])}
        name = target["name"]
        if name.startswith("dpd") and "_" in name:
            threshold, horizon = name[3:].split("_", 1)
            if threshold.isdigit():
                target.update(dpd_threshold=int(threshold), horizon=horizon.upper())
        return {
            "training": {
                **window,
                "holdout": how,
                "holdout_rows": len(hold_y),
                "trees": self.booster_.num_trees(),
            },
            "target": target,
            "holdout_metrics": metrics,
            "builder": builder.to_dict() if builder is not None else None,
        }

    # ----------------------------------------------------------------- predict

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("this RiskModel is not fitted yet; call fit(X, y) first")

    def predict_raw(self, X: Any) -> np.ndarray:
        """The booster's raw margin (log-odds, before calibration), one value per row."""
        self._check_fitted()
        frame, _ = self._as_frame(X, fitting=False)
        return np.asarray(self.booster_.predict(frame, raw_score=True), dtype=np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): column 1 is the PD."""
        margin = self.predict_raw(X)  # checks fitted first
        p = _apply_calibration(self.calibration_, margin)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """The more likely class (PD >= 0.5), in the labels of ``y``."""
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p >= 0.5).astype(int)]

    def score_points(
        self,
        X: Any,
        base_points: float | None = None,
        base_odds: float | None = None,
        pdo: float | None = None,
    ) -> np.ndarray:
        """Credit score points (higher is safer).

        ``base_points`` at good:bad odds ``base_odds``; ``pdo`` more points each
        time the odds double. Defaults from the model's ``points``.
        """
        scale = self._points()
        base_points = scale["base_points"] if base_points is None else base_points
        base_odds = scale["base_odds"] if base_odds is None else base_odds
        pdo = scale["pdo"] if pdo is None else pdo
        return _points(self.predict_proba(X)[:, 1], base_points, base_odds, pdo)

    def band(self, X: Any, bands: Mapping[str, float] | None = None) -> Any:
        """Risk band of each row from PD upper bounds (best band first)."""
        return _band(self.predict_proba(X)[:, 1], dict(bands) if bands is not None else self._bands())

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """``pd``, ``points`` and ``band`` per row, with the index of ``X``: the input of outreach.

        With ``y`` (scikit-learn model selection, pipelines), the ROC AUC of the
        PD against ``y`` instead: higher is better, as scikit-learn expects.
        """
        if y is not None:
            from sklearn.metrics import roc_auc_score

            labels = self._labels(y, len(y), fitting=False)
            return float(roc_auc_score(labels, self.predict_proba(X)[:, 1], sample_weight=sample_weight))
        p = self.predict_proba(X)[:, 1]
        scale = self._points()
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(p))
        out = pd.DataFrame(
            {
                "pd": p,
                "points": _points(p, scale["base_points"], scale["base_odds"], scale["pdo"]),
                "band": _band(p, self._bands()),
            },
            index=index,
        )
        out.attrs["model_version"] = self.version_
        return out

    def explain(self, X: Any, chunk_size: int = 20_000) -> Any:
        """Exact contributions of every feature to each row's margin: a :class:`riskscore.Explanation`.

        LightGBM's native exact path-dependent TreeSHAP, in chunks of
        ``chunk_size`` rows so memory stays bounded; every row is checked for
        additivity (contributions + base value = margin within 1e-6), and an
        ``AdditivityError`` is raised otherwise. Explain only the rows you need
        (those recommended for outreach): it costs far more than a prediction.
        """
        from riskscore.explain import explain

        return explain(self, X, chunk_size=chunk_size)

    # ----------------------------------------------------------------- bundle

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the bundle folder: model text, manifest, catalogue and checksums.

        The folder is written under a temporary name and renamed into place,
        so an interrupted save never leaves a bundle that looks complete.
        """
        self._check_fitted()
        target = Path(path)
        occupied = target.is_file() or (target.is_dir() and any(target.iterdir()))
        if occupied and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            (tmp / _MODEL_FILE).write_text(self.booster_.model_to_string(), encoding="utf-8")
            catalogue = self.catalogue_.reset_index()
            catalogue.to_csv(tmp / _CATALOGUE_FILE, index=False, lineterminator="\n")
            files = {name: _sha256(tmp / name) for name in (_MODEL_FILE, _CATALOGUE_FILE)}
            manifest = self._manifest(files)
            (tmp / _MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            sums = {name: _sha256(tmp / name) for name in (_MODEL_FILE, _CATALOGUE_FILE, _MANIFEST_FILE)}
            (tmp / _CHECKSUM_FILE).write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())), encoding="utf-8")
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def _manifest(self, files: dict[str, str]) -> dict[str, Any]:
        import lightgbm
        import sklearn

        from riskscore import __version__

        return {
            "format": "riskscore-bundle",
            "bundle_version": BUNDLE_VERSION,
            "model_params": {
                "params": dict(self.params) if self.params else None,
                "monotone": self.monotone
                if isinstance(self.monotone, str) or self.monotone is None
                else dict(self.monotone),
                "calibration": self.calibration,
                "validation": self.validation,
                "random_state": self.random_state,
                "bands": self._bands(),
                "points": self._points(),
                "refit": self.refit,
            },
            "features": {
                "names": self._feature_names(),
                "from_dataframe": hasattr(self, "feature_names_in_"),
                "dtypes": {n: ("category" if n in self.categories_ else "float64") for n in self._feature_names()},
                "categories": self.categories_,
            },
            "classes": [_plain(c) for c in self.classes_],
            "calibration": self.calibration_,
            **self.manifest_,
            "versions": {
                "riskscore": __version__,
                "lightgbm": lightgbm.__version__,
                "scikit-learn": sklearn.__version__,
                "numpy": np.__version__,
                "pandas": pd.__version__,
                "python": platform.python_version(),
            },
            "files": files,
        }

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RiskModel:
        """Read a bundle written by :meth:`save`, verifying every file first.

        Raises
        ------
        BundleIntegrityError
            If a file is missing, a hash does not match, or the bundle's format
            or version is unknown.
        """
        import lightgbm as lgb

        folder = Path(path)
        if not folder.is_dir():
            raise BundleIntegrityError(f"model bundle not found: {folder} is not a folder")
        sums_path = folder / _CHECKSUM_FILE
        if not sums_path.is_file():
            raise BundleIntegrityError(f"{folder}: the checksum file {_CHECKSUM_FILE} is missing")
        listed: dict[str, str] = {}
        for line in sums_path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("  ", 1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise BundleIntegrityError(f"{folder}/{_CHECKSUM_FILE}: malformed line {line!r}")
            listed[parts[1]] = parts[0]
        required = {_MODEL_FILE, _CATALOGUE_FILE, _MANIFEST_FILE}
        if set(listed) != required:
            raise BundleIntegrityError(
                f"{folder}/{_CHECKSUM_FILE} must list exactly {sorted(required)}; got {sorted(listed)}"
            )
        for name, expected in sorted(listed.items()):
            file = folder / name
            if not file.is_file():
                raise BundleIntegrityError(f"{folder}: {name} is missing")
            actual = _sha256(file)
            if actual != expected:
                raise BundleIntegrityError(f"{folder}/{name} was changed: SHA-256 {actual} does not match {expected}")
        try:
            manifest = json.loads((folder / _MANIFEST_FILE).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BundleIntegrityError(f"{folder}/{_MANIFEST_FILE} is not valid JSON: {exc}") from exc
        if manifest.get("format") != "riskscore-bundle" or manifest.get("bundle_version") != BUNDLE_VERSION:
            raise BundleIntegrityError(
                f"{folder}: unknown bundle format or version {manifest.get('format')!r} "
                f"{manifest.get('bundle_version')!r}; this riskscore reads riskscore-bundle version {BUNDLE_VERSION}"
            )
        for name, expected in manifest.get("files", {}).items():
            if listed.get(name) != expected:
                raise BundleIntegrityError(f"{folder}: the manifest's hash of {name} does not match {_CHECKSUM_FILE}")
        mp = manifest["model_params"]
        model = cls(
            params=mp["params"],
            monotone=mp["monotone"],
            calibration=mp["calibration"],
            validation=mp["validation"],
            random_state=mp["random_state"],
            bands=mp["bands"],
            points=mp["points"],
            refit=mp.get("refit", False),
        )
        model.booster_ = lgb.Booster(model_str=(folder / _MODEL_FILE).read_text(encoding="utf-8"))
        feats = manifest["features"]
        model._names_ = list(feats["names"])
        model.n_features_in_ = len(model._names_)
        if feats["from_dataframe"]:
            model.feature_names_in_ = np.asarray(model._names_, dtype=object)
        model.categories_ = {k: list(v) for k, v in feats["categories"].items()}
        model.classes_ = np.asarray(manifest["classes"])
        model.calibration_ = manifest["calibration"]
        catalogue = pd.read_csv(folder / _CATALOGUE_FILE, keep_default_na=False, na_values=[""])
        model.catalogue_ = catalogue.set_index("feature")
        model.manifest_ = {k: manifest[k] for k in ("training", "target", "holdout_metrics", "builder")}
        return model

    @property
    def version_(self) -> str:
        """Identity of the fitted model: ``sha256:`` and 16 hex digits of its trees and calibration.

        The same for a model and the bundle it was saved to and loaded from;
        ``score`` puts it in ``scores.attrs["model_version"]`` and outreach
        records it on every recommendation.
        """
        self._check_fitted()
        text = self.booster_.model_to_string()
        calibration = json.dumps(self.calibration_, sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256((text + calibration).encode()).hexdigest()[:16]

    @property
    def builder_(self) -> Any:
        """The FeatureBuilder that made the training features, when it was passed to ``fit``."""
        self._check_fitted()
        data = self.manifest_.get("builder")
        if data is None:
            return None
        from riskscore.features import FeatureBuilder

        return FeatureBuilder.from_dict(data)


# --------------------------------------------------------------------------- helpers


def _is_dask(X: Any) -> bool:
    """A Dask DataFrame or Array (duck-typed: no Dask import needed to test it)."""
    return type(X).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(X, "compute")


def _compute(value: Any) -> Any:
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


def _logloss_by_round(booster: Any, frame: pd.DataFrame, y: np.ndarray) -> np.ndarray:
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


def _data_conversion_warning() -> type[Warning]:
    from sklearn.exceptions import DataConversionWarning

    return DataConversionWarning


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_bands(bands: dict[str, float]) -> None:
    bounds = list(bands.values())
    if not bounds or any(not 0 < b <= 1 for b in bounds) or bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        raise ValueError(f"bands must map names to increasing PD upper bounds in (0, 1]; got {bands}")
    if bounds[-1] != 1.0:
        raise ValueError(f"the last band's upper bound must be 1 so every PD has a band; got {bounds[-1]}")


def _band(p: np.ndarray, bands: dict[str, float]) -> Any:
    _check_bands(bands)
    names = list(bands)
    bounds = np.asarray(list(bands.values()))
    idx = np.minimum(np.searchsorted(bounds, p, side="right"), len(names) - 1)
    return pd.Categorical.from_codes(idx, dtype=pd.CategoricalDtype(names, ordered=True))


def _points(p: np.ndarray, base_points: float, base_odds: float, pdo: float) -> np.ndarray:
    if pdo <= 0 or base_odds <= 0:
        raise ValueError(f"pdo and base_odds must be positive; got pdo={pdo}, base_odds={base_odds}")
    p = np.clip(p, _EPS, 1 - _EPS)
    odds = (1.0 - p) / p
    return base_points + pdo / math.log(2) * np.log(odds / base_odds)


def _fit_calibration(method: str | None, margin: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> dict[str, Any]:
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


def _apply_calibration(calibration: dict[str, Any], margin: np.ndarray) -> np.ndarray:
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
