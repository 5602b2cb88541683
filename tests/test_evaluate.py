"""evaluate: credit metrics against hand-computed values and scikit-learn's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

import riskscore as rs


def test_hand_computed_metrics() -> None:
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.8, 0.9])
    r = rs.evaluate(y, p, bins=5)
    s = r.summary
    # 4 positives x 6 negatives = 24 pairs; the positive at 0.35 beats 4 negatives and
    # loses to 0.4 and 0.8; 0.6 and 0.7 lose to 0.8; 0.9 wins all: 4 + 5 + 5 + 6 = 20.
    assert s["auc"] == pytest.approx(20 / 24)
    assert s["gini"] == pytest.approx(2 * 20 / 24 - 1)
    assert s["brier"] == pytest.approx(np.mean((p - y) ** 2))
    # KS: down to 0.35 (six rows) every bad and 2 of 6 goods are caught: 1 - 1/3.
    assert s["ks"] == pytest.approx(1 - 2 / 6)
    assert (s["n"], s["positives"], s["rate"], s["excluded"]) == (10, 4, 0.4, 0)
    cal = r.calibration
    assert cal["n"].tolist() == [2, 2, 2, 2, 2]
    assert cal["observed_rate"].tolist() == [0.0, 0.0, 0.5, 1.0, 0.5]
    assert cal["mean_pd"].tolist() == pytest.approx([0.15, 0.25, 0.375, 0.65, 0.85])
    assert s["ece"] == pytest.approx(np.mean([0.15, 0.25, 0.125, 0.35, 0.35]))
    # Top 10% = 1 row (0.9, a positive): capture 1/4, lift (1/1) / 0.4.
    assert r.lift.loc[0.10, "capture_rate"] == pytest.approx(0.25)
    assert s["lift_10"] == pytest.approx(2.5)
    assert s["capture_20"] == pytest.approx(0.25)  # top 2 rows: 0.9 (bad) and 0.8 (good)


def test_agrees_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=3000)
    y = (rng.uniform(size=3000) < p * 0.3).astype(int)
    s = rs.evaluate(y, p).summary
    assert s["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert s["brier"] == pytest.approx(brier_score_loss(y, p))
    assert s["log_loss"] == pytest.approx(log_loss(y, p))


def test_missing_labels_are_left_out_and_counted_and_periods() -> None:
    y = pd.Series(
        pd.array([1, 0, None, 0, 1, 0], dtype="Int8"),
        index=pd.MultiIndex.from_arrays(
            [[1, 2, 3, 1, 2, 3], pd.to_datetime(["2024-01-01"] * 3 + ["2024-02-01"] * 3)], names=["account_id", "as_of"]
        ),
    )
    p = [0.9, 0.1, 0.5, 0.2, 0.8, 0.3]
    r = rs.evaluate(y, p, by="as_of")
    assert r.summary["excluded"] == 1 and r.summary["n"] == 5 and r.summary["auc"] == 1.0
    assert list(r.by_period.index) == list(pd.to_datetime(["2024-01-01", "2024-02-01"]))
    assert r.by_period["n"].tolist() == [2, 3]
    frame = r.to_frame()
    assert list(frame.index) == ["all", "2024-01-01 00:00:00", "2024-02-01 00:00:00"]
    assert {"auc", "gini", "ks", "brier", "log_loss", "ece", "capture_5", "lift_20"} <= set(frame.columns)
    assert "AUC=1.0000" in repr(r)


def test_one_class_period_has_no_auc() -> None:
    r = rs.evaluate([0, 0, 1, 0], [0.1, 0.2, 0.9, 0.3], by=["a", "a", "b", "b"])
    assert np.isnan(r.by_period.loc["a", "auc"]) and r.by_period.loc["b", "auc"] == 1.0


@pytest.mark.parametrize(
    ("y", "p", "kw", "message"),
    [
        ([0, 1], [0.5], {}, "y and p must have the same length; got 2 and 1"),
        ([0, 1], [0.5, 1.5], {}, r"p must be probabilities in \[0, 1\]"),
        ([0, 2], [0.5, 0.5], {}, "y must be 0/1 outcomes"),
        ([0, 1], [0.5, 0.5], {"by": "as_of"}, "by='as_of' must name an index level of y"),
        ([0, 1], [0.5, 0.5], {"by": [1]}, r"by must have one value per row \(2\); got 1"),
    ],
)
def test_errors(y: list, p: list, kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rs.evaluate(y, p, **kw)
