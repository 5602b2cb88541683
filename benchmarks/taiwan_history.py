"""Taiwan by history length: the default pipeline against tuned LightGBM on the raw columns visible at each date.

Run:  python benchmarks/taiwan_history.py [--csv PATH] [--seeds 0,1,2]

For each month start from 2005-06-01 to 2005-10-01 (two to six monthly
statements of history), the accounts current at that date (as
``observation_dates`` finds them) and a target of 30+ days past due within the
following three months where the data allow: 90 days from 2005-06-01 and
2005-07-01; up to the data's end (the September statement) from 2005-08-01
(61 days) and 2005-09-01 (30 days); the file's own "default payment next month"
(October) at 2005-10-01.

* riskscore: ``FeatureBuilder()`` (defaults: the lender's ``pay_status`` used,
  demographics never) + ``RiskModel(validation="stratified")``;
* LightGBM tuned (the parameters of ``benchmarks/taiwan.py``) on the raw columns
  of the months before the date (PAY_k, BILL_AMTk, PAY_AMTk of the statements
  dated before it) and LIMIT_BAL, without the four demographic columns, and with
  them.

5-fold stratified cross-validation per seed, the same folds for every method;
mean ROC AUC.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from taiwan import DEFAULT_CSV, DEMOGRAPHICS, TUNED  # noqa: E402  (the baselines' settings, one place)

# Statement month of each raw column suffix: 1 = September 2005 ... 6 = April 2005 (PAY_0 is September's status).
MONTH = {1: "2005-09-30", 2: "2005-08-31", 3: "2005-07-31", 4: "2005-06-30", 5: "2005-05-31", 6: "2005-04-30"}
DATES = ["2005-06-01", "2005-07-01", "2005-08-01", "2005-09-01", "2005-10-01"]


def visible_columns(as_of: pd.Timestamp, demographics: bool) -> list[str]:
    """The raw columns of the statements dated before ``as_of``, the credit limit, and optionally demographics."""
    cols = ["LIMIT_BAL"] + (DEMOGRAPHICS if demographics else [])
    for k, day in MONTH.items():
        if pd.Timestamp(day) < as_of:
            cols += [("PAY_0" if k == 1 else f"PAY_{k}"), f"BILL_AMT{k}", f"PAY_AMT{k}"]
    return cols


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=Path(os.environ.get("RISKSCORE_TAIWAN_CSV", DEFAULT_CSV)))
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    import lightgbm as lgb
    from _timing import machine

    import riskscore as rs

    warnings.simplefilter("ignore", UserWarning)
    print(machine())
    events, target = rs.datasets.load_taiwan(args.csv)
    raw = pd.read_csv(args.csv).set_index("ID")
    data_end = events.statements["statement_date"].max()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"seeds {seeds}, 5 folds each\n")
    print("| as_of | statements of history | target | accounts | default rate | riskscore | LightGBM raw, tuned "
          "(no demographics) | LightGBM raw, tuned (with demographics) | riskscore - best raw |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for day in DATES:
        as_of = pd.Timestamp(day)
        t0 = time.perf_counter()
        obs = rs.observation_dates(events, start=as_of, end=as_of)
        if as_of > data_end:
            y = target.reindex(obs["account_id"]).to_numpy()
            what = "default payment next month (October)"
        else:
            days = min(90, (data_end - as_of).days + 1)
            y = rs.make_labels(events, obs, horizon=f"{days}D").to_numpy(dtype=float)
            what = f"30+ DPD within {days} days"
        known = ~np.isnan(np.asarray(y, dtype=float))
        obs, y = obs[known].reset_index(drop=True), np.asarray(y, dtype=float)[known].astype(int)
        X = rs.FeatureBuilder().fit_transform(events, obs)
        raws = {name: raw.loc[obs["account_id"], visible_columns(as_of, name == "demographics")]
                for name in ("no demographics", "demographics")}  # fmt: skip
        scores: dict[str, list[float]] = {"riskscore": [], "no demographics": [], "demographics": []}
        for seed in seeds:
            for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
                model = rs.RiskModel(validation="stratified", random_state=seed).fit(X.iloc[tr], y[tr])
                scores["riskscore"].append(roc_auc_score(y[te], model.predict_proba(X.iloc[te])[:, 1]))
                for name, frame in raws.items():
                    plain = lgb.LGBMClassifier(random_state=seed, verbose=-1, **TUNED).fit(frame.iloc[tr], y[tr])
                    scores[name].append(roc_auc_score(y[te], plain.predict_proba(frame.iloc[te])[:, 1]))
        history = int((events.statements["statement_date"].drop_duplicates() < as_of).sum())
        mine, no_demo, demo = (float(np.mean(scores[k])) for k in ("riskscore", "no demographics", "demographics"))
        print(f"| {day} | {history} | {what} | {len(y):,} | {y.mean():.1%} | {mine:.4f} | {no_demo:.4f} | "
              f"{demo:.4f} | {mine - max(no_demo, demo):+.4f} |", flush=True)  # fmt: skip
        print(f"  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
