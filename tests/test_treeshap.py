"""Pattern-table TreeSHAP: equal to LightGBM's pred_contrib on every kind of split, or not used at all."""

from __future__ import annotations

import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore.treeshap import MAX_SPLITS, feature_matrix, tables_for


def _train(
    X: np.ndarray, y: np.ndarray, rounds: int = 40, categorical: list[int] | None = None, **params: object
) -> lgb.Booster:
    base = {"objective": "binary", "num_leaves": 7, "max_depth": 3, "learning_rate": 0.2, "verbose": -1,
            "min_data_in_leaf": 5, "seed": 0, "deterministic": True}  # fmt: skip
    base.update(params)
    data = lgb.Dataset(X, y, categorical_feature=categorical or "auto", free_raw_data=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return lgb.train(base, data, num_boost_round=rounds, keep_training_booster=True)


def _book(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 1] = np.round(X[:, 1] * 2)  # ties on the thresholds
    X[rng.random(n) < 0.2, 2] = np.nan  # missing in training: missing_type NaN
    X[:, 3] = np.where(rng.random(n) < 0.3, 0.0, X[:, 3])  # zeros, for zero_as_missing
    logit = X[:, 0] - 0.8 * np.nan_to_num(X[:, 2], nan=1.5) + 0.5 * X[:, 1] * (X[:, 4] > 0) + 0.4 * (X[:, 3] == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _hard_rows(booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
    """Rows with each value a split reads at its threshold; NaN (also where training had none), zeros, +-inf, tiny."""
    thresholds: dict[int, list[float]] = {}

    def walk(node: dict[str, object]) -> None:
        if "leaf_value" in node:
            return
        if node["decision_type"] == "<=":
            thresholds.setdefault(int(node["split_feature"]), []).append(float(node["threshold"]))  # type: ignore[arg-type]
        walk(node["left_child"])  # type: ignore[arg-type]
        walk(node["right_child"])  # type: ignore[arg-type]

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    rows = [X[:200].copy()]
    for f, values in thresholds.items():
        at = np.repeat(X[:1], len(values), axis=0)
        at[:, f] = values
        rows.append(at)
    odd = np.repeat(X[:6], 6, axis=0)
    specials = np.array([np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-40])
    for f in range(X.shape[1]):
        odd[:, f] = np.tile(specials, 6)
        rows.append(odd.copy())
    return np.vstack(rows)


def _check(booster: lgb.Booster, rows: np.ndarray) -> None:
    tables = tables_for(booster)
    assert tables is not None
    expected = booster.predict(rows, pred_contrib=True)
    np.testing.assert_allclose(tables.contributions(rows), expected[:, :-1], rtol=0, atol=1e-12)
    assert tables.base == pytest.approx(expected[0, -1], abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_lightgbm_on_thresholds_missing_values_and_infinities(seed: int) -> None:
    X, y = _book(seed)
    booster = _train(X, y)
    kinds = {n["missing_type"] for t in booster.dump_model()["tree_info"] for n in _nodes(t["tree_structure"])}
    assert {"NaN", "None"} <= kinds  # both ways of reading a missing value are exercised
    _check(booster, _hard_rows(booster, X))


def test_equal_to_lightgbm_with_zero_as_missing() -> None:
    X, y = _book(3)
    booster = _train(X, y, zero_as_missing=True)
    kinds = {n["missing_type"] for t in booster.dump_model()["tree_info"] for n in _nodes(t["tree_structure"])}
    assert "Zero" in kinds
    _check(booster, _hard_rows(booster, X))


def test_equal_to_lightgbm_on_categorical_splits() -> None:
    rng = np.random.default_rng(4)
    n = 4000
    X = np.column_stack([rng.integers(0, 12, n).astype(float), rng.normal(size=n), rng.normal(size=n)])
    effect = np.isin(X[:, 0], [1, 4, 5, 9]) * 1.5 - (X[:, 0] == 7) * 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-(effect + X[:, 1])))).astype(int)
    booster = _train(X, y, categorical=[0], min_data_per_group=5, cat_smooth=1.0)
    kinds = {n["decision_type"] for t in booster.dump_model()["tree_info"] for n in _nodes(t["tree_structure"])}
    assert "==" in kinds
    rows = np.repeat(X[:20], 8, axis=0)
    rows[:, 0] = np.tile([np.nan, -1.0, -0.5, 0.0, 3.0, 5.0, 11.0, 40.0], 20)  # missing, negative, unseen
    _check(booster, np.vstack([X[:500], rows]))


def test_single_leaf_trees_and_early_stopping_follow_what_lightgbm_predicts() -> None:
    X, y = _book(5)
    stumps = _train(X, y, rounds=3, min_gain_to_split=1e9)  # no split is worth making
    assert all("leaf_value" in t["tree_structure"] for t in stumps.dump_model()["tree_info"])
    _check(stumps, X[:50])
    valid = lgb.Dataset(X[2000:], y[2000:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stopped = lgb.train({"objective": "binary", "num_leaves": 7, "learning_rate": 0.5, "verbose": -1},
                            lgb.Dataset(X[:2000], y[:2000]), num_boost_round=200, valid_sets=[valid],
                            callbacks=[lgb.early_stopping(5, verbose=False)], keep_training_booster=True)  # fmt: skip
    assert 0 < stopped.best_iteration < stopped.num_trees()  # trees past the best one are kept, not predicted
    _check(stopped, X[:300])


def test_larger_trees_are_left_to_lightgbm_and_a_booster_trained_further_gets_new_tables() -> None:
    X, y = _book(6)
    assert tables_for(_train(X, y, num_leaves=31, max_depth=-1)) is None  # more than MAX_SPLITS splits
    booster = _train(X, y, rounds=5)
    first = tables_for(booster)
    assert first is not None and tables_for(booster) is first  # built once
    booster.update()
    again = tables_for(booster)
    assert again is not first and again is not None and again.table.shape[0] == 6
    _check(booster, X[:100])
    assert MAX_SPLITS == 8


def test_explain_uses_the_tables_for_the_default_model_and_lightgbm_otherwise(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], sample_xy: dict[str, object]
) -> None:
    model, X = sample_model
    rows = X.head(400)
    assert tables_for(model.booster_) is not None  # the default trees are small enough
    frame, _ = model.conform(rows)
    expected = model.booster_.predict(frame, pred_contrib=True)
    expl = model.explain(rows)
    np.testing.assert_allclose(expl.values.to_numpy(), expected[:, :-1], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(feature_matrix(frame)[:, list(frame.columns).index("acct_product")],
                                  frame["acct_product"].cat.codes.to_numpy().astype(float))  # fmt: skip
    wide = rs.RiskModel(num_leaves=31, max_depth=-1, n_estimators=30, validation="stratified")
    wide.fit(X, sample_xy["y"])
    assert tables_for(wide.booster_) is None
    frame_w, _ = wide.conform(rows)
    expected_w = wide.booster_.predict(frame_w, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(wide.explain(rows).values.to_numpy(), expected_w, rtol=0, atol=1e-12)


def _nodes(node: dict[str, object]) -> list[dict[str, object]]:
    if "leaf_value" in node:
        return []
    return [node, *_nodes(node["left_child"]), *_nodes(node["right_child"])]  # type: ignore[arg-type]
