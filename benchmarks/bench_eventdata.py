"""Constructing EventData on 1M statement rows (validation + normalisation).

Run: python benchmarks/bench_eventdata.py [--rows 1000000] [--repeat 5]

Reference, timed in the same run on the same frame: a plain pandas sort of the
statements by (account_id, statement_date), the least any normaliser must do.
Two inputs: columns already typed (datetime64), and dates as ISO text as read
from CSV (parsing included).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _timing import machine, median_seconds

import riskscore as rs


def make_tables(rows: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    months = 24
    n_accounts = rows // months
    ids = np.arange(n_accounts) + 1
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "open_date": pd.Timestamp("2020-01-01"),
            "credit_limit": rng.uniform(500, 20000, n_accounts),
        }
    )
    acc = np.repeat(ids, months)
    month = np.tile(np.arange(months), n_accounts)
    order = rng.permutation(len(acc))  # arrive unsorted, as a warehouse extract does
    statements = pd.DataFrame(
        {
            "account_id": acc[order],
            "statement_date": (pd.Timestamp("2022-01-01") + pd.to_timedelta(month * 30, unit="D"))[order],
            "balance": rng.normal(2000, 1500, len(acc)),
            "payment": rng.uniform(0, 1000, len(acc)),
            "dpd": rng.choice([0, 0, 0, 0, 5, 35], len(acc)),
        }
    )
    return {"accounts": accounts, "statements": statements}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tables = make_tables(args.rows)
    text = {
        k: v.assign(**{c: v[c].dt.strftime("%Y-%m-%d") for c in v.columns if c.endswith("date")})
        for k, v in tables.items()
    }
    st = tables["statements"]
    print(machine())
    print(f"statements: {len(st):,} rows, accounts: {len(tables['accounts']):,}")
    ref, _ = median_seconds(lambda: st.sort_values(["account_id", "statement_date"], kind="stable"), args.repeat)
    typed, runs_typed = median_seconds(lambda: rs.EventData(**tables), args.repeat)
    parsed, runs_text = median_seconds(lambda: rs.EventData(**text), args.repeat)
    print(f"reference pandas sort_values:     median {ref:.3f} s")
    for label, median, runs in (("typed columns", typed, runs_typed), ("ISO text dates", parsed, runs_text)):
        shown = [round(r, 3) for r in runs]
        print(f"EventData, {label:<15}        median {median:.3f} s  ({median / ref:.1f}x reference)  runs {shown}")


if __name__ == "__main__":
    main()
