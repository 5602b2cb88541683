"""Recommendation throughput: riskscore.recommend over a large scored book.

Run:  python benchmarks/outreach.py [--accounts 100000] [--copies 10] [--repeat 3] [--no-customers]

make_portfolio(accounts, 14 months from 2025-01) gives the events (with contacts:
collection calls and opt-outs); 2% of accounts are flagged vulnerable and 0.5%
attorney-represented. A default RiskModel trained on the bundled sample scores
every open account at 2026-02-01 and explains those in bands C-F (the ones the
treatment table contacts). The book is then copied ``copies`` times under new
account ids (events, scores and explanations), to reach 1M accounts without
simulating 1M histories. Timed: ``recommend(scores, explanation, events,
"us-regf", now, capacity=...)``, no audit log, median of ``repeat`` runs; the
reference in the same run is the least work any recommender does: joining the
scores to the accounts and counting each account's calls of the last 7 days
with pandas.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def _copy(df: pd.DataFrame, copies: int, step: int) -> pd.DataFrame:
    parts = [df.assign(account_id=df["account_id"] + k * step) for k in range(copies)]
    if "customer_id" in df.columns:  # each copy's customers are its own
        for k, part in enumerate(parts):
            part["customer_id"] = df["customer_id"].to_numpy() + k * step
    return pd.concat(parts, ignore_index=True)


def _copy_index(index: pd.MultiIndex, copies: int, step: int) -> pd.MultiIndex:
    ids = index.get_level_values("account_id").to_numpy()
    as_of = index.get_level_values("as_of")
    return pd.MultiIndex.from_arrays(
        [np.concatenate([ids + k * step for k in range(copies)]), as_of.repeat(1).append([as_of] * (copies - 1))],
        names=["account_id", "as_of"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-customers", action="store_true", help="decide per account: the same book without customer_id"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from _timing import machine, median_seconds, sample_model

    import riskscore as rs
    from riskscore.explain import Explanation

    print(machine())
    start = time.perf_counter()
    model = sample_model()
    builder = model.builder_

    events, _ = rs.datasets.make_portfolio(n_accounts=args.accounts, months=14, seed=0, start="2025-01-01")
    rng = np.random.default_rng(0)
    accounts = events.accounts.assign(
        vulnerable=rng.random(len(events.accounts)) < 0.02, attorney=rng.random(len(events.accounts)) < 0.005
    )
    if args.no_customers:  # the features still see the customers; only the decisions are per account
        accounts = accounts.drop(columns="customer_id")
    as_of = pd.Timestamp("2026-02-01")
    opened = accounts.loc[accounts["open_date"] < as_of, "account_id"]
    obs = pd.DataFrame({"account_id": opened.to_numpy(), "as_of": as_of})
    X = builder.transform(events, obs)
    scores = model.score(X)
    needs = scores["band"].isin(["C", "D", "E", "F"]).to_numpy()
    expl = model.explain(X[needs])
    print(
        f"base book: {len(scores):,} scored accounts, {int(needs.sum()):,} explained (bands C-F); "
        f"prepared in {time.perf_counter() - start:.0f} s"
    )
    largest = max(accounts["account_id"].max(), accounts.get("customer_id", accounts["account_id"]).max())
    step = 10 ** int(np.ceil(np.log10(largest + 1)))
    big_events = rs.EventData(
        accounts=_copy(accounts, args.copies, step),
        statements=_copy(events.statements, args.copies, step),
        installments=_copy(events.installments, args.copies, step),
        contacts=_copy(events.contacts, args.copies, step),
    )
    big_scores = pd.DataFrame(
        np.tile(scores.to_numpy(), (args.copies, 1)),
        columns=scores.columns,
        index=_copy_index(scores.index, args.copies, step),
    ).astype(scores.dtypes.to_dict())
    index = _copy_index(expl.values.index, args.copies, step)
    big_expl = Explanation(
        values=pd.DataFrame(
            np.tile(expl.values.to_numpy(), (args.copies, 1)), index=index, columns=expl.values.columns
        ),
        base_value=expl.base_value,
        margin=pd.Series(np.tile(expl.margin.to_numpy(), args.copies), index=index, name="margin"),
        data=pd.concat([expl.data] * args.copies).set_axis(index, axis=0),
        catalogue=expl.catalogue,
    )
    now = pd.Timestamp("2026-02-03 10:30", tz="America/New_York")
    capacity = {"call": 5_000, "sms": 50_000, "app": 50_000, "email": 50_000, "human_review": 500}
    print(
        f"book: {len(big_scores):,} accounts, {len(big_expl):,} explained, {len(big_events.contacts):,} contacts, "
        f"{len(big_events.statements):,} statements, {len(big_events.installments):,} instalment rows"
    )

    def reference() -> None:
        frame = big_scores.reset_index().merge(big_events.accounts, on="account_id", how="left")
        c = big_events.contacts
        recent = c[(c["channel"] == "call") & (c["timestamp"] >= now.tz_localize(None) - pd.Timedelta(days=7))]
        counts = recent.groupby("account_id").size()
        frame["calls_7d"] = frame["account_id"].map(counts).fillna(0)

    result: dict[str, pd.DataFrame] = {}

    def run() -> None:
        result["out"] = rs.recommend(big_scores, big_expl, big_events, "us-regf", now=now, capacity=capacity)

    ref, ref_runs = median_seconds(reference, args.repeat)
    med, runs = median_seconds(run, args.repeat)
    out = result["out"]
    print(f"reference (pandas join + 7-day call counts): median {ref:.2f} s  runs {[round(r, 2) for r in ref_runs]}")
    print(
        f"recommend: median {med:.2f} s  ({len(out) / med:,.0f} accounts/s, {med / ref:.1f}x the reference)  "
        f"runs {[round(r, 2) for r in runs]}"
    )
    print(out["action"].value_counts().to_string())
    print(out.loc[out["action"] != "none", "channel"].value_counts().to_string())
    print(f"control: {int(out['control'].sum()):,}; blocked lists: {int(out['blocked'].map(bool).sum()):,}")


if __name__ == "__main__":
    main()
