"""Input conformance: features as the booster reads them, labels as 0/1.

Fitting learns the feature names, their order and the categories of each
categorical column; predicting conforms new rows to them (numbers as float64,
categoricals with the training levels, unseen levels scored as missing with a
warning) or raises a ``DataValidationError`` naming the column.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from riskscore.errors import DataValidationError, Problem

__all__ = ["as_frame", "conform", "feature_names", "labels", "plain"]


def as_frame(model: Any, X: Any, *, fitting: bool) -> tuple[pd.DataFrame, list[str]]:
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
                model.feature_names_in_ = np.asarray(names, dtype=object)
            elif hasattr(model, "feature_names_in_"):
                del model.feature_names_in_
        else:
            names = feature_names(model)
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
            model,
            X,
            reset=fitting,
            dtype=np.float64,
            ensure_all_finite="allow-nan",
            ensure_min_samples=1,
            skip_check_array=False,
        )
        names = [f"x{i}" for i in range(arr.shape[1])] if fitting else feature_names(model)
        frame = pd.DataFrame(arr, columns=names)
    if fitting:
        model.n_features_in_ = len(names)
        model._names_ = names
    if len(frame) == 0:
        raise ValueError("Found array with 0 sample(s) (shape=(0, ...)) while a minimum of 1 is required.")
    return conform(model, frame, fitting=fitting), names


def feature_names(model: Any) -> list[str]:
    """The feature names the model was fitted on, in order."""
    return list(model._names_)


def conform(model: Any, frame: pd.DataFrame, *, fitting: bool) -> pd.DataFrame:
    """Numbers as float64 and categoricals with the training levels (unseen: empty, warned)."""
    out: dict[str, Any] = {}
    if fitting:
        model.categories_ = {}
    for col in frame.columns:
        series = frame[col]
        if isinstance(series.dtype, pd.CategoricalDtype) or (
            fitting and (pd.api.types.is_string_dtype(series.dtype) or series.dtype == object)
        ):
            if fitting:
                seen = [str(v) for v in pd.unique(series.dropna().astype(str))]
                model.categories_[str(col)] = sorted(seen)
            known = model.categories_.get(str(col))
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
            if str(col) in getattr(model, "categories_", {}) and not fitting:
                raise DataValidationError(
                    [Problem("features", str(col), "dtype", f"must be categorical as in training; got {series.dtype}")]
                )
            try:
                out[col] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise DataValidationError(
                    [Problem("features", str(col), "numeric", f"must be numeric; got dtype {series.dtype}")]
                ) from exc
    return pd.DataFrame(out, index=frame.index)


def labels(model: Any, y: Any, n: int, *, fitting: bool = True) -> np.ndarray:
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
            raise ValueError(f"y must contain two classes; got one class: {plain(classes[0])!r}")
        if len(classes) > 2:
            raise ValueError(
                f"Only binary classification is supported. y has {len(classes)} classes: {list(classes)[:5]}"
            )
        model.classes_ = classes
    return (series.to_numpy() == model.classes_[1]).astype(np.float64)


def _data_conversion_warning() -> type[Warning]:
    from sklearn.exceptions import DataConversionWarning

    return DataConversionWarning


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for JSON and messages)."""
    return value.item() if isinstance(value, np.generic) else value
