"""`RiskModel`: a calibrated LightGBM probability of default, its credit scales, its bundle.

The model learns from point-in-time features (rows indexed by ``account_id`` and
``as_of``) and a 0/1 target. Early stopping and calibration use a held-out slice:
the latest ``as_of`` dates of the training data when the index carries them (the
model is judged on the future, as it will be used), a stratified random slice
otherwise, or an explicit ``eval_set``. The booster is fitted on the rest; the
calibration map (isotonic or sigmoid on the raw margin) is fitted on the held-out
slice only and stored as plain numbers.

The parts live beside this module: input conformance (``inputs``), the hold-out
(``holdout``), LightGBM settings and constraints (``params``), calibration,
credit scales (``scales``), the bundle, and training on Dask (``dask``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from riskscore.errors import NotFittedError
from riskscore.model import bundle
from riskscore.model.calibration import apply_calibration, fit_calibration
from riskscore.model.holdout import holdout_split
from riskscore.model.inputs import as_frame
from riskscore.model.inputs import labels as conform_labels
from riskscore.model.monotone import agreeing
from riskscore.model.params import (
    bands_of,
    booster_params,
    feature_catalogue,
    monotone_directions,
    points_scale,
    settings_of,
)
from riskscore.model.scales import band_of, points_of

__all__ = ["RiskModel"]


class RiskModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Calibrated LightGBM probability of default.

    Parameters
    ----------
    params : dict, optional
        LightGBM parameters overriding :data:`DEFAULT_PARAMS` (also
        ``n_estimators``, ``early_stopping_rounds`` and ``holdout_fraction``):
        any LightGBM setting that is not a parameter of its own.
    monotone : "catalogue", "catalogue_strict", dict or None, default="catalogue"
        Monotone constraints. ``"catalogue"``: each feature's expected risk
        direction from the feature catalogue (``riskscore.features.describe``,
        or the ``catalogue`` passed to :meth:`fit`), kept where the training
        rows agree with it and dropped where they contradict it
        (:func:`riskscore.model.monotone.agreeing`; the manifest's
        ``training.monotone`` lists what was dropped and why);
        ``"catalogue_strict"``: every catalogue direction; a dict maps feature
        names to +1/-1/0 (enforced as given); ``None`` for none. Categorical
        features are never constrained.
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
    n_estimators, learning_rate, num_leaves, max_depth, min_child_samples, \
feature_fraction, bagging_fraction, bagging_freq, lambda_l1, lambda_l2, \
min_split_gain, max_bin, early_stopping_rounds : optional
        The common LightGBM settings (:data:`~riskscore.model.params.BOOSTER_SETTINGS`),
        keyword only; ``None`` keeps :data:`DEFAULT_PARAMS` (or ``params``).
        Parameters of their own so that ``GridSearchCV(RiskModel(),
        {"num_leaves": [7, 15]})``, ``RandomizedSearchCV`` and Optuna tune them
        as they tune ``LGBMClassifier``; a setting given here and in ``params``
        is refused. ``n_estimators`` is the most trees; early stopping on the
        held-out rows picks how many are kept.

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
        *,
        n_estimators: int | None = None,
        learning_rate: float | None = None,
        num_leaves: int | None = None,
        max_depth: int | None = None,
        min_child_samples: int | None = None,
        feature_fraction: float | None = None,
        bagging_fraction: float | None = None,
        bagging_freq: int | None = None,
        lambda_l1: float | None = None,
        lambda_l2: float | None = None,
        min_split_gain: float | None = None,
        max_bin: int | None = None,
        early_stopping_rounds: int | None = None,
    ) -> None:
        self.params = params
        self.monotone = monotone
        self.calibration = calibration
        self.validation = validation
        self.random_state = random_state
        self.bands = bands
        self.points = points
        self.refit = refit
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.bagging_freq = bagging_freq
        self.lambda_l1 = lambda_l1
        self.lambda_l2 = lambda_l2
        self.min_split_gain = min_split_gain
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds

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
            The feature catalogue (``FeatureBuilder.catalogue_``); default: the
            ``builder``'s (with any directions declared to it), else read from
            the feature names.
        builder : FeatureBuilder, optional
            The fitted builder that made ``X``; its settings go into the bundle.

        Returns
        -------
        self
        """
        from riskscore.model.dask import is_dask

        if is_dask(X):
            from riskscore.model.dask import fit_dask

            fitted: RiskModel = fit_dask(self, X, y, eval_set=eval_set, catalogue=catalogue, builder=builder)
            return fitted
        settings = settings_of(self)
        frame, names = as_frame(self, X, fitting=True)
        target = conform_labels(self, y, len(frame))
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if weight is not None and weight.shape != (len(frame),):
            raise ValueError(f"sample_weight must have one value per row ({len(frame)}); got shape {weight.shape}")
        self.catalogue_ = feature_catalogue(names, catalogue, builder)
        if eval_set is not None:
            val_frame, _ = as_frame(self, eval_set[0], fitting=False)
            val_labels = conform_labels(self, eval_set[1], len(val_frame), fitting=False)
            train_idx = np.arange(len(frame))
            fit_frame, fit_y, fit_w = frame, target, weight
            hold_frame, hold_y, hold_w = val_frame, val_labels, None
            how = "eval_set"
        else:
            fraction = settings["holdout_fraction"]
            train_idx, hold_idx, how = holdout_split(frame, target, fraction, self.validation, self.random_state)
            fit_frame, fit_y = frame.iloc[train_idx], target[train_idx]
            fit_w = None if weight is None else weight[train_idx]
            hold_frame, hold_y = frame.iloc[hold_idx], target[hold_idx]
            hold_w = None if weight is None else weight[hold_idx]
        # Constraints: the catalogue's directions, each kept only where the training rows agree with it.
        self.monotone_ = monotone_directions(self.monotone, self.catalogue_, frame)
        dropped: dict[str, Any] = {}
        if self.monotone == "catalogue":
            self.monotone_, dropped = agreeing(self.monotone_, fit_frame, fit_y)
        self.booster_ = self._train(fit_frame, fit_y, fit_w, hold_frame, hold_y, hold_w, settings)
        margin = self.booster_.predict(hold_frame, raw_score=True)
        self.calibration_ = fit_calibration(self.calibration, margin, hold_y, hold_w)
        if self.refit and eval_set is None:
            rounds = math.ceil(self.booster_.num_trees() * len(frame) / len(fit_frame))
            self.booster_ = self._train(frame, target, weight, None, None, None, {**settings, "n_estimators": rounds})
        self.manifest_ = bundle.describe_training(self, frame, target, y, train_idx, how, hold_y, margin, builder)
        self.manifest_["training"]["monotone"] = {
            "constrained": int(sum(1 for d in self.monotone_ if d != 0)),
            "dropped": dropped,
        }
        return self

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

        params = booster_params(settings, len(X), self.random_state, list(self.monotone_))
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

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("this RiskModel is not fitted yet; call fit(X, y) first")

    def conform(self, X: Any) -> tuple[pd.DataFrame, list[str]]:
        """The rows of ``X`` as the booster reads them, and the feature names, in the fitted order.

        Numbers as float64, categoricals with the training levels; a
        ``DataValidationError`` names a missing or mistyped feature.
        """
        self._check_fitted()
        return as_frame(self, X, fitting=False)

    def predict_raw(self, X: Any) -> np.ndarray:
        """The booster's raw margin (log-odds, before calibration), one value per row."""
        self._check_fitted()
        frame, _ = as_frame(self, X, fitting=False)
        return np.asarray(self.booster_.predict(frame, raw_score=True), dtype=np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): column 1 is the PD."""
        margin = self.predict_raw(X)  # checks fitted first
        p = apply_calibration(self.calibration_, margin)
        return np.column_stack([1.0 - p, p])

    def calibrate(self, margin: Any) -> np.ndarray:
        """The PD of raw margins (as :meth:`predict_raw` gives them) under the model's calibration."""
        self._check_fitted()
        return np.asarray(apply_calibration(self.calibration_, np.asarray(margin, dtype=np.float64)), dtype=np.float64)

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
        scale = points_scale(self)
        base_points = scale["base_points"] if base_points is None else base_points
        base_odds = scale["base_odds"] if base_odds is None else base_odds
        pdo = scale["pdo"] if pdo is None else pdo
        return points_of(self.predict_proba(X)[:, 1], base_points, base_odds, pdo)

    def band(self, X: Any, bands: Mapping[str, float] | None = None) -> Any:
        """Risk band of each row from PD upper bounds (best band first)."""
        return band_of(self.predict_proba(X)[:, 1], dict(bands) if bands is not None else bands_of(self))

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """``pd``, ``points`` and ``band`` per row, with the index of ``X``: the input of outreach.

        With ``y`` (scikit-learn model selection, pipelines), the ROC AUC of the
        PD against ``y`` instead: higher is better, as scikit-learn expects.
        """
        if y is not None:
            from sklearn.metrics import roc_auc_score

            truth = conform_labels(self, y, len(y), fitting=False)
            return float(roc_auc_score(truth, self.predict_proba(X)[:, 1], sample_weight=sample_weight))
        p = self.predict_proba(X)[:, 1]
        out = self.scale(p, X.index if isinstance(X, pd.DataFrame) else None)
        out.attrs["model_version"] = self.version_
        return out

    def scale(self, p: Any, index: Any = None) -> pd.DataFrame:
        """``pd``, ``points`` and ``band`` of calibrated PDs ``p``: what :meth:`score` gives, without predicting."""
        p = np.asarray(p, dtype=np.float64)
        scale = points_scale(self)
        return pd.DataFrame(
            {
                "pd": p,
                "points": points_of(p, scale["base_points"], scale["base_odds"], scale["pdo"]),
                "band": band_of(p, bands_of(self)),
            },
            index=pd.RangeIndex(len(p)) if index is None else index,
        )

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

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False, key: str | bytes | None = None) -> Path:
        """Write the bundle folder: model text, manifest, catalogue and checksums.

        The folder is written under a temporary name and renamed into place,
        so an interrupted save never leaves a bundle that looks complete. With
        ``key`` (at least 16 bytes, kept secret), the checksums are signed
        (HMAC-SHA256, in ``SIGNATURE``) so that ``load(path, key=key)`` accepts
        only a bundle made by someone holding the key.
        """
        self._check_fitted()
        return bundle.save(self, path, overwrite=overwrite, key=key)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, key: str | bytes | None = None) -> RiskModel:
        """Read a bundle written by :meth:`save`, verifying every file first.

        With ``key``, the bundle must be signed with that key.

        Raises
        ------
        BundleIntegrityError
            If a file is missing, a symbolic link, changed or inconsistent with
            the others (feature names, their number and the tree count of the
            manifest against the model file), the signature does not verify,
            or the bundle's format or version is unknown.
        """
        model: RiskModel = bundle.load(cls, path, key=key)
        return model

    @property
    def version_(self) -> str:
        """Identity of the fitted model: ``sha256:`` and 16 hex digits of everything its bundle holds.

        The trees, the catalogue and the manifest's model record (settings,
        features, calibration, training record, builder): the same for a model
        and the bundle it was saved to and loaded from, different after an
        edit of any of them. ``score`` puts it in ``scores.attrs["model_version"]``
        and outreach records it on every recommendation.
        """
        self._check_fitted()
        return bundle.identity(self)

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
