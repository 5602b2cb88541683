"""The real-data yardstick: the UCI Taiwan credit-card default data.

Run:  python benchmarks/taiwan.py [--csv PATH] [--seeds 0,1,2]

Every method is scored by 5-fold stratified cross-validation repeated with each
seed (the same folds for every method), on the predicted probability of default
of ``default payment next month``:

* riskscore: load_taiwan + FeatureBuilder (as_of 2005-10-01, all six statements
  visible; protected columns sex, education, marriage, age excluded) + RiskModel
  (stratified hold-out: one as_of date): the default (which uses the lender's
  own repayment-status column ``pay_status``, as every usable statement column
  outside the contract), the contract fields alone (``statement_columns=()``),
  with ``refit=True``, and with other monotone settings (their effect);
* plain LightGBM on the raw 23 columns, default parameters and lightly tuned,
  and the same on the raw columns without the four demographic ones;
* a WOE + logistic-regression scorecard on the raw 23 columns (10 quantile bins
  per column, smoothed weights of evidence).

Reports mean ROC AUC (and its standard deviation over the folds), Brier score
and expected calibration error (10 equal-count bins).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

HERE = Path(__file__).resolve().parent
DEFAULT_CSV = HERE.parent.parent / "shared" / "data" / "taiwan_credit_default" / "default_of_credit_card_clients.csv"
DEMOGRAPHICS = ["SEX", "EDUCATION", "MARRIAGE", "AGE"]

TUNED: dict[str, object] = {
    "n_estimators": 400,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}
"""The lightly tuned LightGBM settings of the raw-column baselines (here and in taiwan_history.py)."""
Method = Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # (train rows, test rows, seed) -> PD of test rows


def lightgbm_raw(raw: pd.DataFrame, y: np.ndarray, columns: list[str], tuned: bool) -> Method:
    import lightgbm as lgb

    params: dict[str, object] = {"verbose": -1, **(TUNED if tuned else {})}
    X = raw[columns]

    def run(tr: np.ndarray, te: np.ndarray, seed: int) -> np.ndarray:
        model = lgb.LGBMClassifier(random_state=seed, **params).fit(X.iloc[tr], y[tr])
        return model.predict_proba(X.iloc[te])[:, 1]

    return run


def woe_scorecard(raw: pd.DataFrame, y: np.ndarray, columns: list[str]) -> Method:
    X = raw[columns]

    def run(tr: np.ndarray, te: np.ndarray, seed: int) -> np.ndarray:
        train_cols, test_cols = [], []
        for col in columns:
            values = X[col].to_numpy(dtype=float)
            edges = np.unique(np.quantile(values[tr], np.linspace(0, 1, 11)[1:-1]))
            bins = np.searchsorted(edges, values, side="right")
            goods = np.bincount(bins[tr], weights=1 - y[tr], minlength=len(edges) + 1) + 0.5
            bads = np.bincount(bins[tr], weights=y[tr], minlength=len(edges) + 1) + 0.5
            woe = np.log((bads / bads.sum()) / (goods / goods.sum()))
            train_cols.append(woe[bins[tr]])
            test_cols.append(woe[bins[te]])
        model = LogisticRegression(max_iter=2000, C=1.0).fit(np.column_stack(train_cols), y[tr])
        return model.predict_proba(np.column_stack(test_cols))[:, 1]

    return run


def riskscore_method(X: pd.DataFrame, y: np.ndarray, **model_kw: object) -> Method:
    import riskscore as rs

    def run(tr: np.ndarray, te: np.ndarray, seed: int) -> np.ndarray:
        model = rs.RiskModel(validation="stratified", random_state=seed, **model_kw).fit(X.iloc[tr], y[tr])  # type: ignore[arg-type]
        return model.predict_proba(X.iloc[te])[:, 1]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=Path(os.environ.get("RISKSCORE_TAIWAN_CSV", DEFAULT_CSV)))
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from _timing import machine

    import riskscore as rs

    warnings.simplefilter("ignore", UserWarning)
    print(machine())
    events, target = rs.datasets.load_taiwan(args.csv)
    y = target.to_numpy()
    raw = pd.read_csv(args.csv).set_index("ID").loc[target.index]
    raw_columns = [c for c in raw.columns if c != "default payment next month"]
    obs = pd.DataFrame({"account_id": events.accounts["account_id"], "as_of": pd.Timestamp("2005-10-01")})
    start = time.perf_counter()
    X = rs.FeatureBuilder().fit_transform(events, obs)
    X_contract = rs.FeatureBuilder(statement_columns=()).fit_transform(events, obs)
    print(
        f"features: {X.shape[1]} (default, with the lender's pay_status), {X_contract.shape[1]} (contract fields "
        f"only) in {time.perf_counter() - start:.1f} s"
    )
    no_demo = [c for c in raw_columns if c not in DEMOGRAPHICS]
    methods: dict[str, Method] = {
        "riskscore, default": riskscore_method(X, y),
        "riskscore, contract fields only": riskscore_method(X_contract, y),
        "riskscore, default, refit": riskscore_method(X, y, refit=True),
        "riskscore, default, no monotone": riskscore_method(X, y, monotone=None),
        "riskscore, default, every catalogue constraint": riskscore_method(X, y, monotone="catalogue_strict"),
        "LightGBM raw 23, default": lightgbm_raw(raw, y, raw_columns, tuned=False),
        "LightGBM raw 23, tuned": lightgbm_raw(raw, y, raw_columns, tuned=True),
        "LightGBM raw 19 (no demographics), default": lightgbm_raw(raw, y, no_demo, tuned=False),
        "LightGBM raw 19 (no demographics), tuned": lightgbm_raw(raw, y, no_demo, tuned=True),
        "WOE + logistic regression, raw 23": woe_scorecard(raw, y, raw_columns),
    }
    seeds = [int(s) for s in args.seeds.split(",")]
    folds = [
        (seed, tr, te)
        for seed in seeds
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    ]
    print(f"{len(folds)} folds (5-fold stratified x seeds {seeds}), {len(y):,} accounts, {int(y.sum()):,} defaults\n")
    print(f"{'method':<46} {'AUC':>7} {'sd':>6} {'Brier':>7} {'ECE':>7} {'time':>7}")
    for name, method in methods.items():
        aucs, briers, eces = [], [], []
        start = time.perf_counter()
        for seed, tr, te in folds:
            p = method(tr, te, seed)
            s = rs.evaluate(y[te], p).summary
            aucs.append(s["auc"])
            briers.append(s["brier"])
            eces.append(s["ece"])
        took = time.perf_counter() - start
        print(
            f"{name:<46} {np.mean(aucs):7.4f} {np.std(aucs):6.4f} {np.mean(briers):7.4f} {np.mean(eces):7.4f} "
            f"{took:6.0f}s"
        )


if __name__ == "__main__":
    main()
