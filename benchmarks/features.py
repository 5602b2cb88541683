"""Feature-building throughput: riskscore's FeatureBuilder against DuckDB SQL and naive pandas.

Run:  python -m pip install -e '.[bench]'
      python benchmarks/features.py                       # 2,000 and 20,000 accounts
      python benchmarks/features.py --sizes 20000 --repeat 5
      python benchmarks/features.py --featuretools-python /path/to/venv/bin/python

Data: make_portfolio(n, 24 months, seed=0, transactions_per_cycle=36): about 500
transactions per account, so 20,000 accounts give about 10M transactions, plus
statements and instalments. Two as_of dates per account (random month starts in
the second year, after the account opened).

Every method runs in its own process, so its peak memory (ru_maxrss) is its own;
loading the parquet files is not timed. Each reports the median of --repeat runs.

Methods:
* riskscore: FeatureBuilder().fit_transform(events, obs), every family, 4 windows.
* duckdb: one SQL query computing a 44-feature reference subset (DuckDB uses all cores).
* pandas: the naive way for the same 44 features: merge observations with events,
  filter by date, group by observation, once per window.
* featuretools (optional, its own interpreter): DFS with cutoff times per
  observation, one call per training window, the transaction and statement
  aggregations of the reference subset.

The reference subset (44): per window 30/90/180/365 days, transactions count, sum,
mean, max, sample std, cash share (atm + cash_advance); statements max dpd, late
count, mean and max utilisation; plus transaction history count and days since the
last transaction, statement history count and the last dpd. Where riskscore
computes the same feature the script checks that the values agree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
OUT = HERE / ".out"
WINDOWS = (30, 90, 180, 365)
CASH = ("cash_advance", "atm")


# --------------------------------------------------------------------------- data


def prepare(n_accounts: int, per_cycle: float) -> Path:
    folder = OUT / f"features_{n_accounts}_{per_cycle:g}"
    if (folder / "obs.parquet").exists():
        return folder
    from riskscore import datasets

    events, _ = datasets.make_portfolio(n_accounts=n_accounts, months=24, seed=0, transactions_per_cycle=per_cycle)
    events.to_dir(folder, overwrite=True)
    rng = np.random.default_rng(0)
    acc = events.accounts
    months = pd.date_range("2024-01-01", "2024-12-01", freq="MS")
    obs = pd.DataFrame(
        {
            "account_id": np.repeat(acc["account_id"].to_numpy(), 2),
            "as_of": months[rng.integers(0, len(months), 2 * len(acc))],
        }
    )
    obs = obs[obs["as_of"].to_numpy() > np.repeat(acc["open_date"].to_numpy(), 2)]
    obs.drop_duplicates().reset_index(drop=True).to_parquet(folder / "obs.parquet")
    return folder


def load_raw(folder: Path) -> dict[str, pd.DataFrame]:
    tables = {p.stem: pd.read_parquet(p) for p in folder.glob("*.parquet")}
    return tables


# --------------------------------------------------------------------------- methods


def run_riskscore(folder: Path) -> tuple[pd.DataFrame, object]:
    import riskscore as rs

    events = rs.EventData.from_dir(folder)
    obs = pd.read_parquet(folder / "obs.parquet")
    return obs, lambda: rs.FeatureBuilder().fit_transform(events, obs)


def run_duckdb(folder: Path) -> tuple[pd.DataFrame, object]:
    import duckdb

    raw = load_raw(folder)
    obs = raw["obs"].reset_index(drop=True).assign(oid=lambda d: np.arange(len(d)))
    tx, st = raw["transactions"], raw["statements"]
    tx = tx.assign(channel=tx["channel"].astype(str))
    t_cols, s_cols = [], []
    for w in WINDOWS:
        f = f"FILTER (WHERE x.timestamp >= o.as_of - INTERVAL {w} DAY)"
        t_cols += [
            f"count(*) {f} AS txn_count_{w}d",
            f"sum(x.amount) {f} AS txn_amount_sum_{w}d",
            f"avg(x.amount) {f} AS txn_amount_mean_{w}d",
            f"max(x.amount) {f} AS txn_amount_max_{w}d",
            f"stddev_samp(x.amount) {f} AS txn_amount_std_{w}d",
            f"sum(CASE WHEN x.channel IN {CASH} THEN greatest(x.amount, 0) ELSE 0 END) {f}"
            f" / nullif(sum(greatest(x.amount, 0)) {f}, 0) AS txn_cash_share_{w}d",
        ]
        g = f"FILTER (WHERE s.statement_date >= o.as_of - INTERVAL {w} DAY)"
        s_cols += [
            f"max(s.dpd) {g} AS stmt_dpd_max_{w}d",
            f"count(*) FILTER (WHERE s.dpd > 0 AND s.statement_date >= o.as_of - INTERVAL {w} DAY)"
            f" AS stmt_late_count_{w}d",
            f"avg(s.balance / s.credit_limit) {g} AS stmt_util_mean_{w}d",
            f"max(s.balance / s.credit_limit) {g} AS stmt_util_max_{w}d",
        ]
    query = f"""
        WITH t AS (
            SELECT o.oid, count(*) AS txn_history_count,
                   (epoch(any_value(o.as_of)) - epoch(max(x.timestamp))) / 86400.0 AS txn_days_since_last,
                   {", ".join(t_cols)}
            FROM obs o JOIN tx x ON x.account_id = o.account_id AND x.timestamp < o.as_of
            GROUP BY o.oid),
        s AS (
            SELECT o.oid, count(*) AS stmt_history_count, arg_max(s.dpd, s.statement_date) AS stmt_dpd_last,
                   {", ".join(s_cols)}
            FROM obs o JOIN st s ON s.account_id = o.account_id AND s.statement_date < o.as_of
            GROUP BY o.oid)
        SELECT o.account_id, o.as_of, t.* EXCLUDE (oid), s.* EXCLUDE (oid)
        FROM obs o LEFT JOIN t USING (oid) LEFT JOIN s USING (oid) ORDER BY o.oid
    """

    def go() -> pd.DataFrame:
        con = duckdb.connect()
        con.register("obs", obs)
        con.register("tx", tx)
        con.register("st", st)
        out = con.execute(query).df()
        con.close()
        return out

    return obs, go


def run_pandas(folder: Path) -> tuple[pd.DataFrame, object]:
    raw = load_raw(folder)
    obs = raw["obs"].reset_index(drop=True).assign(oid=lambda d: np.arange(len(d)))
    tx, st = raw["transactions"], raw["statements"]

    def go() -> pd.DataFrame:
        parts = [obs.set_index("oid")[["account_id", "as_of"]]]
        m = obs.merge(tx, on="account_id")
        m = m[m["timestamp"] < m["as_of"]]
        m = m.assign(gross=m["amount"].clip(lower=0))
        m["cash"] = m["gross"].where(m["channel"].astype(str).isin(CASH), 0.0)
        g = m.groupby("oid")
        parts.append(g.size().rename("txn_history_count"))
        parts.append(
            ((m["as_of"] - m["timestamp"]).dt.total_seconds() / 86400)
            .groupby(m["oid"])
            .min()
            .rename("txn_days_since_last")
        )
        for w in WINDOWS:
            sub = m[m["timestamp"] >= m["as_of"] - pd.Timedelta(days=w)]
            a = sub.groupby("oid").agg(
                count=("amount", "size"), sum=("amount", "sum"), mean=("amount", "mean"), max=("amount", "max"),
                std=("amount", "std"), cash=("cash", "sum"), gross=("gross", "sum"),
            )  # fmt: skip
            a["cash_share"] = a["cash"] / a["gross"].where(a["gross"] > 0)
            parts.append(
                a[["count", "sum", "mean", "max", "std", "cash_share"]].set_axis(
                    [
                        f"txn_{c}_{w}d"
                        for c in ("count", "amount_sum", "amount_mean", "amount_max", "amount_std", "cash_share")
                    ],
                    axis=1,
                )
            )
        s = obs.merge(st, on="account_id")
        s = s[s["statement_date"] < s["as_of"]].sort_values(["oid", "statement_date"])
        s = s.assign(util=s["balance"] / s["credit_limit"], late=(s["dpd"] > 0).astype(int))
        gs = s.groupby("oid")
        parts.append(gs.size().rename("stmt_history_count"))
        parts.append(gs["dpd"].last().rename("stmt_dpd_last"))
        for w in WINDOWS:
            sub = s[s["statement_date"] >= s["as_of"] - pd.Timedelta(days=w)]
            a = sub.groupby("oid").agg(
                dpd=("dpd", "max"), late=("late", "sum"), um=("util", "mean"), ux=("util", "max")
            )
            parts.append(
                a.set_axis([f"stmt_{c}_{w}d" for c in ("dpd_max", "late_count", "util_mean", "util_max")], axis=1)
            )
        return pd.concat(parts, axis=1)

    return obs, go


def run_featuretools(folder: Path) -> tuple[pd.DataFrame, object]:
    import featuretools as ft

    raw = load_raw(folder)
    obs = raw["obs"].reset_index(drop=True)
    tx = raw["transactions"].reset_index(drop=True).assign(tx_id=lambda d: np.arange(len(d)))
    tx["channel"] = tx["channel"].astype(str)
    tx["cash"] = tx["amount"].clip(lower=0).where(tx["channel"].isin(CASH), 0.0)
    st = raw["statements"].reset_index(drop=True).assign(st_id=lambda d: np.arange(len(d)))
    st["util"] = st["balance"] / st["credit_limit"]
    accounts = raw["accounts"][["account_id", "open_date"]].copy()

    def go() -> pd.DataFrame:
        es = ft.EntitySet("portfolio")
        es.add_dataframe(dataframe_name="accounts", dataframe=accounts, index="account_id")
        es.add_dataframe(dataframe_name="tx", dataframe=tx, index="tx_id", time_index="timestamp")
        es.add_dataframe(dataframe_name="st", dataframe=st, index="st_id", time_index="statement_date")
        es.add_relationship("accounts", "account_id", "tx", "account_id")
        es.add_relationship("accounts", "account_id", "st", "account_id")
        cutoff = obs.rename(columns={"as_of": "time"})
        parts = []
        for w in WINDOWS:
            fm, _ = ft.dfs(
                entityset=es,
                target_dataframe_name="accounts",
                cutoff_time=cutoff,
                training_window=f"{w} days",
                agg_primitives=["count", "sum", "mean", "max", "std"],
                trans_primitives=[],
                include_cutoff_time=False,
                max_depth=1,
            )
            parts.append(fm.add_suffix(f"_{w}d"))
        return pd.concat(parts, axis=1)

    return obs, go


METHODS = {"riskscore": run_riskscore, "duckdb": run_duckdb, "pandas": run_pandas, "featuretools": run_featuretools}


def _status(field: str) -> float:
    """A memory figure of this process from /proc/self/status, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _release_freed_memory() -> None:
    """Hand memory freed while loading back to the OS (glibc keeps it otherwise),
    so that resident memory after loading is the data, for every method alike."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def child(method: str, folder: Path, repeat: int) -> None:
    for module in {"riskscore": ["riskscore"], "duckdb": ["duckdb"], "featuretools": ["featuretools"]}.get(method, []):
        __import__(module)
    baseline = _status("VmRSS")  # interpreter and libraries, no data yet
    _obs, go = METHODS[method](folder)
    _release_freed_memory()
    loaded = _status("VmRSS")
    with contextlib.suppress(OSError):  # reset the peak: measure the computation, not the loading
        Path("/proc/self/clear_refs").write_text("5")
    runs, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = go()  # type: ignore[operator]
        runs.append(time.perf_counter() - start)
    assert isinstance(out, pd.DataFrame)
    if method in ("riskscore", "duckdb", "pandas"):
        out.reset_index(drop=method != "riskscore").to_parquet(folder / f"result_{method}.parquet")
    peak = _status("VmHWM")  # before loading the tables again to measure them
    input_mib = sum(df.memory_usage(deep=True).sum() for k, df in load_raw(folder).items() if k != "obs") / 2**20
    print(
        json.dumps(
            {
                "method": method,
                "median": statistics.median(runs),
                "runs": runs,
                "rows": len(out),
                "features": out.shape[1],
                "peak_rss_mib": peak,
                "rss_after_load_mib": loaded,
                "rss_baseline_mib": baseline,
                "output_mib": out.memory_usage(deep=True).sum() / 2**20,
                "input_mib": input_mib,
            }
        )
    )


# --------------------------------------------------------------------------- driver


def agreement(folder: Path) -> str:
    """Largest relative difference between riskscore and DuckDB on features both compute."""
    rs_out = pd.read_parquet(folder / "result_riskscore.parquet").set_index(["account_id", "as_of"])
    db = pd.read_parquet(folder / "result_duckdb.parquet").set_index(["account_id", "as_of"])
    db = db.loc[rs_out.index]
    for w in WINDOWS:
        rs_out[f"txn_cash_share_{w}d"] = rs_out[f"txn_cash_advance_share_{w}d"] + rs_out[f"txn_atm_share_{w}d"]
    worst, compared = 0.0, 0
    for col in db.columns:
        if col not in rs_out.columns:
            continue
        a = rs_out[col].to_numpy(dtype=float)
        b = db[col].to_numpy(dtype=float)
        both = ~np.isnan(a) & ~np.isnan(b)
        if col.endswith(("_count", "_history_count")) or "_count_" in col:
            b = np.nan_to_num(b)
            both = ~np.isnan(a)
        diff = np.abs(a[both] - b[both]) / np.maximum(1.0, np.abs(b[both]))
        worst = max(worst, float(diff.max(initial=0.0)))
        compared += 1
    return f"{compared} shared features, largest relative difference {worst:.2e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,20000", help="numbers of accounts, comma-separated")
    parser.add_argument("--tx-per-cycle", type=float, default=36.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--methods", default="riskscore,duckdb,pandas")
    parser.add_argument("--featuretools-python", default=None, help="an interpreter that has featuretools")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.repeat)
        return
    sys.path.insert(0, str(HERE))
    from _timing import machine

    print(machine())
    for size in (int(s) for s in args.sizes.split(",")):
        folder = prepare(size, args.tx_per_cycle)
        rows = {p.stem: pq.ParquetFile(p).metadata.num_rows for p in folder.glob("*.parquet")}
        events = sum(rows.get(t, 0) for t in ("statements", "installments", "transactions"))
        print(
            f"\n{size:,} accounts: {events:,} events ({rows['transactions']:,} transactions), "
            f"{rows['obs']:,} observations"
        )
        methods = [(m, sys.executable) for m in args.methods.split(",")]
        if args.featuretools_python:
            methods.append(("featuretools", args.featuretools_python))
        results = {}
        for method, python in methods:
            env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
            done = subprocess.run(
                [python, __file__, "--child", method, "--data", str(folder), "--repeat", str(args.repeat)],
                capture_output=True, text=True, env=env, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                print(f"  {method}: failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            results[method] = r
            peak = r["peak_rss_mib"] - r["rss_baseline_mib"]
            data = r["rss_after_load_mib"] - r["rss_baseline_mib"]
            runs = [round(x, 2) for x in r["runs"]]
            print(
                f"  {method:<12} median {r['median']:7.2f} s  {events / r['median'] / 1e6:5.2f}M events/s  "
                f"{r['features']:4d} features  memory: peak {peak:5.0f} MiB above the bare interpreter, "
                f"data loaded {data:.0f} (input tables {r['input_mib']:.0f}, output {r['output_mib']:.0f})  runs {runs}"
            )
        if "riskscore" in results and "duckdb" in results:
            ratio = results["duckdb"]["median"] / results["riskscore"]["median"]
            print(f"  riskscore vs duckdb: {ratio:.2f}x the events/s; {agreement(folder)}")
        if "riskscore" in results and "pandas" in results:
            print(f"  riskscore vs naive pandas: {results['pandas']['median'] / results['riskscore']['median']:.1f}x")
        if "riskscore" in results and "featuretools" in results:
            print(
                "  riskscore vs featuretools: "
                f"{results['featuretools']['median'] / results['riskscore']['median']:.1f}x"
            )


if __name__ == "__main__":
    main()
