"""Generating a synthetic portfolio: make_portfolio(100_000 accounts, 24 months).

Run: python benchmarks/bench_portfolio.py [--accounts 100000] [--months 24] [--repeat 3]

Reference, timed in the same run: a plain pandas sort of the generated
transactions table by (account_id, timestamp), one standard operation on the
largest table, so the ratio travels between machines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import machine, median_seconds

from riskscore import datasets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    result = {}

    def run() -> None:
        result["events"] = datasets.make_portfolio(n_accounts=args.accounts, months=args.months, seed=0)[0]

    gen, runs = median_seconds(run, args.repeat)
    events = result["events"]
    tx = events.transactions.sample(frac=1.0, random_state=0)
    ref, _ = median_seconds(lambda: tx.sort_values(["account_id", "timestamp"], kind="stable"), args.repeat)
    print(events)
    print(f"reference pandas sort of transactions: median {ref:.3f} s")
    print(f"make_portfolio: median {gen:.2f} s ({gen / ref:.1f}x reference)  runs {[round(r, 2) for r in runs]}")


if __name__ == "__main__":
    main()
