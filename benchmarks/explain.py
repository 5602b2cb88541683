"""Explanation throughput: RiskModel.explain against predict_proba and shap.TreeExplainer.

Run:  python benchmarks/explain.py [--accounts 8000] [--rows 100000] [--repeat 3]

A default RiskModel is trained on make_portfolio data (8,000 accounts x 24 months,
seed 1, every complete observation); then, on the same 100,000 observations
(sampled with replacement when fewer exist), three timings in one run: the PD
(`predict_proba`), exact contributions (`explain`: pattern tables for the default
small trees, in chunks, with the additivity check against LightGBM's margin), and `shap.TreeExplainer(booster,
feature_perturbation="tree_path_dependent").shap_values`. Median of --repeat runs.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=8_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import shap
    from _timing import machine, median_seconds, portfolio_matrix

    import riskscore as rs

    warnings.simplefilter("ignore", UserWarning)
    print(machine(), f"shap {shap.__version__}")
    _events, X, y = portfolio_matrix(args.accounts, seed=1)
    model = rs.RiskModel().fit(X, y)
    rows = X.sample(args.rows, replace=len(X) < args.rows, random_state=0)
    booster = model.booster_
    print(
        f"{len(X):,} observations, {X.shape[1]} features; model: {booster.num_trees()} trees, "
        f"max_depth {model.booster_.params.get('max_depth')}; explaining {len(rows):,} rows"
    )
    predict, p_runs = median_seconds(lambda: model.predict_proba(rows), args.repeat)
    explain, e_runs = median_seconds(lambda: model.explain(rows), args.repeat)
    explainer = shap.TreeExplainer(booster, feature_perturbation="tree_path_dependent")
    frame = model.conform(rows)[0]
    reference, s_runs = median_seconds(lambda: explainer.shap_values(frame), args.repeat)
    values = model.explain(rows.head(2000)).values.to_numpy()
    gap = np.abs(values - explainer.shap_values(frame.head(2000))).max()
    for name, t, runs in (
        ("predict_proba", predict, p_runs),
        ("explain", explain, e_runs),
        ("shap", reference, s_runs),
    ):
        print(f"  {name:<14} median {t:7.2f} s  {len(rows) / t:>10,.0f} rows/s  runs {[round(r, 2) for r in runs]}")
    print(f"  explain / predict_proba: {explain / predict:.1f}x the time per row (target: at most 20x)")
    print(f"  explain / shap TreeExplainer: {explain / reference:.2f}x; largest difference {gap:.2e}")


if __name__ == "__main__":
    main()
