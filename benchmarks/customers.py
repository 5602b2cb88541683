"""What the customer features add: out-of-time AUC on a multi-account portfolio, with and without them.

Run:  python benchmarks/customers.py [--accounts 10000] [--seeds 1,2,3] [--cut 2024-04-01]

make_portfolio(n, 24 months, seed) with its default customers (a third hold two or
three accounts) -> observation_dates (current accounts, month starts) ->
make_labels (30+ DPD within 90 days; incomplete windows dropped) -> FeatureBuilder
with every family, or without the ``customer`` family -> the default RiskModel
trained on as_of before ``--cut`` and tested on as_of from it on. Prints the AUC
of both per seed, overall and on the accounts whose customer holds another
account, and the median gain over the seeds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--cut", default="2024-04-01")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from _timing import machine

    import riskscore as rs

    print(machine())
    gains, gains_multi = [], []
    for seed in [int(s) for s in args.seeds.split(",")]:
        start = time.perf_counter()
        events, _ = rs.datasets.make_portfolio(n_accounts=args.accounts, months=24, seed=seed)
        obs = rs.observation_dates(events)
        y = rs.make_labels(events, obs)
        builder = rs.FeatureBuilder().fit(events)
        X = builder.transform(events, obs)
        known = y.notna().to_numpy()
        X, y = X[known], y[known].astype(int)
        y.index = X.index
        as_of = X.index.get_level_values("as_of")
        train = np.asarray(as_of < pd.Timestamp(args.cut))
        customers = events.customers
        multi = customers.map(customers.value_counts()) > 1
        in_multi = multi.reindex(X.index.get_level_values("account_id")).to_numpy()
        own = [c for c in X.columns if not c.startswith("cust_")]
        line = [f"seed {seed}: {len(X):,} observations ({int(in_multi.sum()):,} of multi-account customers), "
                f"rate {y.mean():.2%}, {X.shape[1]} features ({X.shape[1] - len(own)} customer)"]  # fmt: skip
        auc = {}
        for name, columns in (("with", list(X.columns)), ("without", own)):
            model = rs.RiskModel().fit(X.loc[train, columns], y[train])
            p = model.predict_proba(X.loc[~train, columns])[:, 1]
            test_multi = in_multi[~train]
            overall = rs.evaluate(y[~train], p).summary["auc"]
            sub = rs.evaluate(y[~train][test_multi], p[test_multi]).summary["auc"]
            auc[name] = (overall, sub)
            line.append(f"  {name:<8} customer features: out-of-time AUC {overall:.4f}, multi-account {sub:.4f}")
        gains.append(auc["with"][0] - auc["without"][0])
        gains_multi.append(auc["with"][1] - auc["without"][1])
        line.append(
            f"  gain {gains[-1]:+.4f} (multi-account {gains_multi[-1]:+.4f}); {time.perf_counter() - start:.0f} s"
        )
        print("\n".join(line), flush=True)
    print(f"median gain over seeds: {statistics.median(gains):+.4f} overall, {statistics.median(gains_multi):+.4f} "
          "on multi-account customers")  # fmt: skip


if __name__ == "__main__":
    main()
