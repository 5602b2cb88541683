"""Issue #15, item 3: booster settings as RiskModel parameters, and cross-validation over as_of dates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import riskscore as rs


@pytest.fixture(scope="module")
def xy(sample_xy: dict[str, Any]) -> tuple[pd.DataFrame, pd.Series]:
    """A year of the sample's observations: enough dates for three folds, small enough to fit quickly."""
    X, y = sample_xy["X"], sample_xy["y"]
    dates = X.index.get_level_values("as_of")
    keep = np.asarray((dates >= "2023-07-01") & (dates < "2024-07-01"))
    return X[keep], y[keep]


def test_a_setting_as_a_parameter_is_the_setting_in_params(xy: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = xy
    direct = rs.RiskModel(n_estimators=40, num_leaves=7, learning_rate=0.1, feature_fraction=0.5).fit(X, y)
    nested = rs.RiskModel(params={"n_estimators": 40, "num_leaves": 7, "learning_rate": 0.1,
                                  "feature_fraction": 0.5}).fit(X, y)  # fmt: skip
    assert np.array_equal(direct.predict_proba(X), nested.predict_proba(X))
    assert direct.booster_.params["num_leaves"] == 7 and direct.booster_.num_trees() <= 40
    params = direct.get_params()
    assert params["num_leaves"] == 7 and params["max_depth"] is None  # None: the library's default
    assert clone(direct).get_params() == params


def test_grid_search_tunes_risk_model_over_as_of_folds(xy: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = xy
    search = GridSearchCV(
        rs.RiskModel(n_estimators=30, calibration=None),
        {"num_leaves": [3, 7], "learning_rate": [0.1]},
        cv=rs.AsOfSplit(n_splits=3, gap="90D"),
        scoring="roc_auc",
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 2 and search.best_params_["num_leaves"] in (3, 7)
    assert 0.6 < search.best_score_ < 1
    assert search.best_estimator_.get_params()["num_leaves"] == search.best_params_["num_leaves"]


def test_as_of_folds_train_before_and_test_after_a_horizon_apart(xy: tuple[pd.DataFrame, pd.Series]) -> None:
    X, _ = xy
    dates = X.index.get_level_values("as_of")
    folds = list(rs.AsOfSplit(n_splits=3, gap="90D").split(X))
    assert len(folds) == 3 == rs.AsOfSplit(n_splits=3).get_n_splits()
    tested = set()
    for train, test in folds:
        assert dates[train].max() + pd.Timedelta("90D") <= dates[test].min()
        assert not set(train) & set(test)
        tested |= set(dates[test])
    assert min(tested) > dates.min() and max(tested) == dates.max()  # the last dates are tested, the first never
    # The same folds from groups when X has no as_of level.
    plain = X.reset_index(drop=True)
    again = list(rs.AsOfSplit(n_splits=3, gap="90D").split(plain, groups=dates))
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))


def test_bad_settings_and_splits_get_one_clear_error(xy: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = xy
    with pytest.raises(ValueError, match=r"num_leaves is given twice: as a parameter \(7\) and in params \(15\)"):
        rs.RiskModel(num_leaves=7, params={"num_leaves": 15}).fit(X, y)
    with pytest.raises(ValueError, match=r"feature_fraction must be in \(0, 1\]; got 1.5"):
        rs.RiskModel(feature_fraction=1.5).fit(X, y)
    with pytest.raises(ValueError, match=r"n_estimators must be a whole number; got 10\.5"):
        rs.RiskModel(n_estimators=10.5).fit(X, y)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs the as_of of each row"):
        list(rs.AsOfSplit().split(X.reset_index(drop=True)))
    with pytest.raises(ValueError, match=r"needs at least 21 distinct as_of dates; the data has 12"):
        list(rs.AsOfSplit(n_splits=20).split(X))
    with pytest.raises(ValueError, match=r"fold 1 tests from 2023-09-01 and no as_of lies 365 days or more before it"):
        list(rs.AsOfSplit(n_splits=5, gap="365D").split(X))
    for gap in ("ninety days", "-30D"):
        with pytest.raises(ValueError, match=rf"gap must be a duration of zero or more such as '90D'; got '{gap}'"):
            list(rs.AsOfSplit(n_splits=3, gap=gap).split(X))
    # The parameters travel with the bundle.
    model = rs.RiskModel(n_estimators=20, num_leaves=5, lambda_l2=3.0).fit(X, y)
    model.save(tmp_path / "b")
    loaded = rs.RiskModel.load(tmp_path / "b")
    assert (loaded.num_leaves, loaded.lambda_l2, loaded.n_estimators) == (5, 3.0, 20)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
