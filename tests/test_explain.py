"""Exact explanations: equal to shap's TreeExplainer, additive on every row, bounded in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap  # a test dependency: the reference implementation

import riskscore as rs
from riskscore import datasets


@pytest.fixture(scope="module")
def fitted() -> tuple[rs.RiskModel, pd.DataFrame]:
    events = datasets.load_sample()
    assert isinstance(events, rs.EventData)
    obs = rs.observation_dates(events, start="2023-06-01", end="2024-09-01")
    y = rs.make_labels(events, obs)
    X = rs.FeatureBuilder().fit_transform(events, obs)
    known = y.notna().to_numpy()
    X, y = X[known], y[known].astype(int)
    y.index = X.index
    return rs.RiskModel().fit(X, y), X


def test_contributions_equal_shap_tree_explainer(fitted: tuple[rs.RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    rows = X.sample(1500, random_state=0)
    assert isinstance(rows["acct_product"].dtype, pd.CategoricalDtype)  # a categorical feature
    assert rows.isna().any().sum() > 20  # and many features with NaN
    expl = model.explain(rows)
    explainer = shap.TreeExplainer(model.booster_, feature_perturbation="tree_path_dependent")
    expected = explainer.shap_values(rows)
    np.testing.assert_allclose(expl.values.to_numpy(), expected, rtol=0, atol=1e-6)
    assert expl.base_value == pytest.approx(float(np.ravel(explainer.expected_value)[0]), abs=1e-9)


def test_additive_on_every_row_and_chunk_independent(fitted: tuple[rs.RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    rows = X.head(700)
    expl = model.explain(rows)
    np.testing.assert_allclose(expl.values.sum(axis=1) + expl.base_value, model.predict_raw(rows), atol=1e-6)
    np.testing.assert_array_equal(expl.margin.to_numpy(), model.predict_raw(rows))
    small = model.explain(rows, chunk_size=37)
    np.testing.assert_array_equal(small.values.to_numpy(), expl.values.to_numpy())
    assert expl.values.index.equals(rows.index) and list(expl.values.columns) == list(rows.columns)
    pd.testing.assert_frame_equal(expl.data, model._as_frame(rows, fitting=False)[0])
    with pytest.raises(ValueError, match="chunk_size must be a positive number of rows; got 0"):
        model.explain(rows, chunk_size=0)


def test_a_broken_sum_raises(fitted: tuple[rs.RiskModel, pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    model, X = fitted
    real = model.booster_.predict

    def shifted(data: object, **kw: object) -> np.ndarray:
        out = real(data, **kw)
        return out + 0.01 if kw.get("raw_score") else out

    monkeypatch.setattr(model.booster_, "predict", shifted)
    with pytest.raises(rs.AdditivityError, match=r"must equal the margin within 1e-06; got a gap of 0\.01 on row 0"):
        model.explain(X.head(3))


def test_views(fitted: tuple[rs.RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    rows = X.head(4)
    expl = model.explain(rows)
    assert len(expl) == 4 and "4 rows" in repr(expl)
    long = expl.to_frame()
    assert list(long.columns) == ["account_id", "as_of", "feature", "value", "contribution"]
    assert len(long) == 4 * rows.shape[1]
    first = long[(long["account_id"] == rows.index[1][0]) & (long["as_of"] == rows.index[1][1])]
    np.testing.assert_array_equal(first["contribution"].to_numpy(), expl.values.iloc[1].to_numpy())
    account, as_of = rows.index[2]
    one = expl.for_account(account, as_of)
    assert one["contribution"].is_monotonic_decreasing
    assert one.loc["stmt_dpd_max_90d", "group"] == "recent_delinquency"
    assert one["contribution"].sum() == pytest.approx(expl.margin.iloc[2] - expl.base_value)
    with pytest.raises(KeyError, match="matches 0 explained rows; explain it first"):
        expl.for_account(-1)
    sx = expl.to_shap()
    assert isinstance(sx, shap.Explanation)
    assert sx.values.shape == (4, rows.shape[1]) and sx.feature_names == list(rows.columns)
    np.testing.assert_array_equal(sx.base_values, np.full(4, expl.base_value))
