"""Which outreach strategy averts most delinquencies for the same capacity: none, dunning, riskscore (assumed
effects), riskscore after a test-and-learn phase, and the oracle that knows the true effects.

Run:  python benchmarks/strategy.py [--accounts 20000] [--months 18] [--seed 7] [--train-accounts 20000]
                                    [--model FOLDER]
                                    [--world default|calls-fail|plans-fail|reminders-fail]
                                    [--strategies dunning,assumed,learned,...]

``--world`` picks how the simulated borrowers respond: ``default`` is
riskscore.datasets.Response(); ``calls-fail``, ``plans-fail`` and
``reminders-fail`` are the same world where calls, repayment plans or
reminders achieve nothing for anyone (the shipped assumption, that a call cuts
the chance of falling behind by 20%, a plan by 30% and a reminder by 10%, is
then wrong, and a strategy must find it out). ``--strategies`` runs a subset
(``none`` and ``oracle`` always run: the shares are measured against them).

1. A default RiskModel is trained on make_portfolio(train_accounts, 18 months,
   seed 101): current accounts at month starts 2023-04-01 .. 2024-03-01, 30+ DPD
   within 90 days.
2. One book (simulate, the same seed for every strategy, so the same
   borrowers) lives ``--months`` months; decisions at each month start from
   month 4 while the 90-day horizon fits, under us-regf and the same capacity
   per monthly run (calls 150, SMS 1,200, app and e-mail 0, human review 0):
   - ``none``: no contact;
   - ``dunning``: a call, else an SMS, to every customer past due;
   - ``assumed``: riskscore.outreach.Strategy with the shipped effects;
   - ``learned``: the same with a 30% control group for the first six
     decision months, then effects learned with estimate_effects from every
     decision whose horizon is in the data (again at each month start) and a
     5% control group;
   - ``learned + uplift``: the same pilot, then the learned table and, for
     each action with at least 300 randomised rows in each arm, a two-model
     UpliftModel on the features at each decision, passed as ``uplift=``;
   - ``oracle``: the same with the true effect per action and segment
     (sum of true_effect / sum of reached_without over a pilot book of another
     seed with a 50% control group).
3. Per strategy, over the accounts open at the first decision and the period
   from it to the end of the data: accounts reaching 30+ DPD, expected loss
   (LGD 0.65 x exposure at the first decision: card balance, or the loan
   instalments still due), contacts made, opt-outs, delinquencies averted
   against ``none`` per 1,000 contacts, the share of the oracle's cut in
   expected loss; the same for the months after learning alone. Policy
   violations are counted by an evaluation of every outbound contact written
   here apart from riskscore's rules: local hours, the call caps per 7 days,
   the week after a conversation, one electronic message per channel and day,
   opt-outs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CAPACITY = {"call": 150, "sms": 1200, "app": 0, "email": 0, "human_review": 0}
LGD = 0.65
WARMUP = 4
PILOT_MONTHS = 6
STRATEGIES = ("none", "dunning", "assumed", "learned", "learned + uplift", "oracle")


def train(rs: Any, n: int, folder: Path | None = None) -> Any:
    """The default model (kept in ``folder`` when given, and read back from there on the next run)."""
    if folder is not None and (folder / "manifest.json").exists():
        return rs.RiskModel.load(folder)
    events, _ = rs.datasets.make_portfolio(n_accounts=n, months=18, seed=101)
    obs = rs.observation_dates(events, start="2023-04-01", end="2024-03-01")
    builder = rs.FeatureBuilder()
    X = builder.fit_transform(events, obs)
    y = rs.make_labels(events, obs)
    known = y.notna().to_numpy()
    X, y = X[known], y[known].astype(int)
    y.index = X.index
    model = rs.RiskModel(random_state=0).fit(X, y, builder=builder)
    if folder is not None:
        model.save(folder)
    return model


class TestAndLearn:
    """A large control group first; from ``learn_at`` on, the effects it measured and a small control group."""

    def __init__(self, rs: Any, model: Any, learn_at: pd.Timestamp) -> None:
        self.rs, self.model, self.learn_at = rs, model, learn_at
        self.pilot = rs.outreach.Strategy(model, "us-regf", capacity=CAPACITY, control_share=0.3, seed=1)
        self.decided: list[pd.DataFrame] = []
        self.effects: Any = None
        self.first: Any = None
        self.pilot_readout: Any = None

    def __call__(self, events: Any, now: pd.Timestamp) -> pd.DataFrame:
        day = now.tz_localize(None)
        if day < self.learn_at:
            out = self.pilot(events, now)
            self.decided.append(out.assign(as_of=day))
            return out
        # Learn again every month from every decision whose horizon is now in the data.
        past = pd.concat(self.decided, ignore_index=True)
        complete = past["as_of"] + pd.Timedelta("90D") - pd.Timedelta("1D") <= events.data_end
        self.effects = self.rs.outreach.estimate_effects(past.loc[complete], events)
        if self.first is None:  # what the pilot alone measured, with the read-out it came from
            self.first = self.effects
            self.pilot_readout = self.rs.outreach.readout(past.loc[complete], events, by=("action",))
        self.after = self.rs.outreach.Strategy(self.model, "us-regf", capacity=CAPACITY, control_share=0.05,
                                               costs=self.effects.costs(), seed=2,
                                               uplift=self.uplift(past.loc[complete], events))  # fmt: skip
        out = self.after(events, now)
        self.decided.append(out.assign(as_of=day))
        return out

    def uplift(self, past: pd.DataFrame, events: Any) -> dict[str, Any] | None:
        """Per-account uplift for ``recommend``: none here, the learned table alone."""
        return None


class TestAndLearnUplift(TestAndLearn):
    """The same pilot; from ``learn_at`` on, the learned table and per-account uplift models (two LightGBM each).

    At each month start, for every action with enough randomised rows (treated
    and held out, both outcomes), an UpliftModel is fitted on the features at
    each past decision whose horizon is in the data and the outcome (30+ DPD
    within 90 days); recommend then weighs each account by its predicted drop.
    """

    MIN_ARM = 300

    def uplift(self, past: pd.DataFrame, events: Any) -> dict[str, Any] | None:
        rows = past.loc[past["treatment"].isin(["reminder", "call", "repayment_plan"])]
        obs = rows[["account_id", "as_of"]].drop_duplicates()
        X = self.model.builder_.transform(events, obs)
        y = self.rs.make_labels(events, obs, horizon="90D")
        y.index = pd.MultiIndex.from_frame(obs)
        keyed = rows.set_index(["account_id", "as_of"])
        models = {}
        for action in ("reminder", "call", "repayment_plan"):
            mine = keyed[keyed["treatment"] == action]
            idx = mine.index[~mine.index.duplicated()]
            outcome = y.reindex(idx)
            known = outcome.notna().to_numpy()
            treated = ~mine.loc[idx, "control"].to_numpy(dtype=bool)[known]
            out_k = outcome.to_numpy()[known].astype(int)
            arms = [out_k[treated], out_k[~treated]]
            if min(len(a) for a in arms) < self.MIN_ARM or any(len(np.unique(a)) < 2 for a in arms):
                continue
            models[action] = self.rs.outreach.UpliftModel().fit(X.loc[idx[known]], out_k, treated)
        self.uplift_actions = sorted(models)
        return models


def world(rs: Any, name: str) -> Any:
    """The simulated borrowers' response: the default one, or the same where one action achieves nothing."""
    failing = {"calls-fail": "call", "plans-fail": "repayment_plan", "reminders-fail": "reminder"}
    if name in failing:
        action = failing[name]
        return rs.datasets.Response(effects={(b, action): 0.0 for b in rs.datasets.BEHAVIOURS})
    return rs.datasets.Response()


def true_effects(rs: Any, model: Any, n: int, months: int, response: Any) -> dict[str, dict[str, float]]:
    """The true relative effect per action and segment on a pilot book of another seed."""
    job = rs.outreach.Strategy(model, "us-regf", control_share=0.5, seed=3)
    _, _, d = rs.datasets.simulate(job, n_accounts=n, months=months, seed=991, response=response)
    d = d[d["reached_without"].notna()].copy()
    d["segment"] = d["segment"].astype(object).fillna("unknown")
    d["acting"] = np.where(d["control"], d["treatment"], d["action"])
    table: dict[str, dict[str, float]] = {}
    for action, part in d.groupby("acting"):
        risk = part.groupby("segment")[["true_effect", "reached_without"]].sum()
        cells = (risk["true_effect"] / risk["reached_without"]).where(risk["reached_without"] >= 20)
        pooled = part["true_effect"].sum() / max(part["reached_without"].sum(), 1.0)
        table[str(action)] = {"default": float(pooled), **{str(s): float(v) for s, v in cells.dropna().items()}}
    return table


def exposure(events: Any, at: pd.Timestamp) -> pd.Series:
    """Per account open at ``at``: the card balance of the last statement before it, or the loan instalments due."""
    ids = events.accounts.loc[events.accounts["open_date"] < at, "account_id"]
    out = pd.Series(0.0, index=pd.Index(ids, name="account_id"))
    st = events.statements
    last = st.loc[st["statement_date"] < at].sort_values("statement_date").groupby("account_id")["balance"].last()
    out.loc[last.index.intersection(out.index)] = last.clip(lower=0).reindex(last.index.intersection(out.index))
    inst = events.installments
    per = inst.drop_duplicates(["account_id", "due_date"])
    due = per.loc[per["due_date"] >= at].groupby("account_id")["amount_due"].sum()
    out.loc[due.index.intersection(out.index)] += due.reindex(due.index.intersection(out.index))
    return out


def violations(rs: Any, events: Any, policy_name: str = "us-regf") -> dict[str, int]:
    """Outbound contacts breaking the policy, checked contact by contact (not with riskscore's rule engine)."""
    policy = rs.OutreachPolicy.load(policy_name)
    rules = {r.kind: [] for r in policy.rules}
    for r in policy.rules:
        rules[r.kind].append(r)
    c = events.contacts.copy()
    if c.empty:
        return {"contacts": 0}
    acc = events.accounts.set_index("account_id")
    c["customer"] = events.customers.reindex(c["account_id"]).to_numpy()
    c["zone"] = acc["timezone"].reindex(c["account_id"]).to_numpy()
    c["utc"] = c["timestamp"].dt.tz_localize("America/New_York").dt.tz_convert("UTC").dt.tz_localize(None)
    out = c[c["direction"] == "outbound"].drop_duplicates(["customer", "contact_id", "channel"])
    found = {"contacts": len(out), "no_zone": int(out["zone"].isna().sum())}
    hours = rules["contact_hours"][0].params
    start, end = (int(h[:2]) * 60 + int(h[3:]) for h in (hours["start"], hours["end"]))
    local = [t.tz_localize("UTC").tz_convert(z) for t, z in zip(out["utc"], out["zone"].fillna("UTC"), strict=True)]
    minutes = np.array([t.hour * 60 + t.minute for t in local])
    found["outside_hours"] = int(((minutes < start) | (minutes >= end)).sum())
    opted = c[c["outcome"] == "opt_out"].groupby(["customer", "channel"])["utc"].min()
    joined = out.join(opted.rename("opted"), on=["customer", "channel"])
    found["after_opt_out"] = int((joined["utc"] > joined["opted"]).sum())
    calls = c[(c["channel"] == "call") & (c["direction"] == "outbound")].sort_values("utc")
    over = 0
    for _, times in calls.groupby("account_id")["utc"]:
        t = times.to_numpy()
        over += int((np.searchsorted(t, t - np.timedelta64(168, "h"), side="left") < np.arange(len(t)) - 6).sum())
    found["calls_over_7_in_7"] = over
    talks = c[(c["channel"] == "call") & (c["outcome"] == "connected")]
    quiet = 0
    for account, times in calls.groupby("account_id")["utc"]:
        talked = np.sort(talks.loc[talks["account_id"] == account, "utc"].to_numpy())
        for t in times.to_numpy():
            before = talked[talked < t]
            quiet += int(len(before) > 0 and t - before[-1] < np.timedelta64(168, "h"))
    found["call_within_week_of_conversation"] = quiet
    electronic = out[out["channel"].isin(policy.electronic)].copy()
    zones = electronic["zone"].fillna("UTC")
    electronic["day"] = [
        t.tz_localize("UTC").tz_convert(z).date() for t, z in zip(electronic["utc"], zones, strict=True)
    ]
    found["electronic_twice_a_day"] = int(electronic.duplicated(["customer", "channel", "day"]).sum())
    return found


def measure(rs: Any, events: Any, start: pd.Timestamp, base: dict[str, Any] | None) -> dict[str, Any]:
    end = events.data_end + pd.Timedelta("1D")
    at_risk = exposure(events, start)
    obs = pd.DataFrame({"account_id": at_risk.index, "as_of": start})
    days = (end - start).days
    reached = rs.make_labels(events, obs, horizon=f"{days}D").fillna(0).to_numpy(dtype=float)
    c = events.contacts
    window = c[(c["timestamp"] >= start) & (c["direction"] == "outbound")]
    out = {
        "accounts": len(obs),
        "reached_30": int(reached.sum()),
        "expected_loss": float((reached * at_risk.to_numpy()).sum() * LGD),
        "contacts": int(window.drop_duplicates("contact_id").shape[0]),
        "opt_outs": int(((c["timestamp"] >= start) & (c["outcome"] == "opt_out")).sum()),
    }
    if base is not None:
        averted = base["reached_30"] - out["reached_30"]
        out["averted_per_1000"] = 1000 * averted / out["contacts"] if out["contacts"] else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-accounts", type=int, default=20_000)
    parser.add_argument("--model", type=Path, help="keep the trained model here and reuse it on later runs")
    parser.add_argument("--world", choices=("default", "calls-fail", "plans-fail", "reminders-fail"), default="default")
    parser.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="a comma-separated subset of: " + ", ".join(STRATEGIES)
    )
    args = parser.parse_args()
    chosen = {"none", "oracle", *(s.strip() for s in args.strategies.split(",") if s.strip())}
    unknown = chosen - set(STRATEGIES)
    if unknown:
        parser.error(f"--strategies: unknown {sorted(unknown)}; choose from {', '.join(STRATEGIES)}")
    sys.path.insert(0, str(HERE))
    from _timing import machine

    import riskscore as rs

    print(machine())
    print(f"world: {args.world}")
    response = world(rs, args.world)
    t0 = time.perf_counter()
    model = train(rs, args.train_accounts, args.model)
    print(f"model: {model.booster_.num_trees()} trees, ready in {time.perf_counter() - t0:.0f} s (trained or read)")
    t0 = time.perf_counter()
    oracle_table = true_effects(rs, model, args.accounts, args.months, response)
    print(f"true effects from a pilot book (seed 991) in {time.perf_counter() - t0:.0f} s:")
    for action, cells in oracle_table.items():
        print(f"  {action}: " + ", ".join(f"{s} {v:.3f}" for s, v in cells.items()))
    start = pd.Timestamp("2023-01-01") + pd.DateOffset(months=WARMUP)
    learn_at = start + pd.DateOffset(months=PILOT_MONTHS)
    learner = TestAndLearn(rs, model, learn_at)
    strategies: dict[str, Any] = {
        "none": "none",
        "dunning": "dunning",
        "assumed": rs.outreach.Strategy(model, "us-regf", capacity=CAPACITY, control_share=0.05, seed=2),
        "learned": learner,
        "learned + uplift": (uplifted := TestAndLearnUplift(rs, model, learn_at)),
        "oracle": rs.outreach.Strategy(
            model, "us-regf", capacity=CAPACITY, control_share=0.05, seed=2, costs={"effect": oracle_table}
        ),
    }
    strategies = {k: v for k, v in strategies.items() if k in chosen}
    results: dict[str, dict[str, Any]] = {}
    for name, strategy in strategies.items():
        t0 = time.perf_counter()
        events, _, decisions = rs.datasets.simulate(
            strategy, n_accounts=args.accounts, months=args.months, seed=args.seed, warmup=WARMUP, response=response,
            capacity={"call": CAPACITY["call"], "sms": CAPACITY["sms"]},
        )  # fmt: skip
        took = time.perf_counter() - t0
        whole = measure(rs, events, start, results.get("none", {}).get("whole"))
        after = measure(rs, events, learn_at, results.get("none", {}).get("after"))
        results[name] = {"whole": whole, "after": after, "seconds": took, "violations": violations(rs, events),
                         "decisions": len(decisions)}  # fmt: skip
        print(f"{name}: simulated in {took:.0f} s, {len(decisions):,} decision rows")
    if learner.first is not None:
        print("pilot read-out (decisions whose horizon was in the data at the end of the pilot):")
        cols = ["treated", "control", "rate_treated", "rate_control", "uplift", "ci_low", "ci_high"]
        print(learner.pilot_readout[cols].to_string(float_format=lambda v: f"{v:.4f}"))
        print("effects learned from the pilot:")
        for action, cells in learner.first.table.items():
            print(f"  {action}: " + ", ".join(f"{s} {v:.3f}" for s, v in cells.items()))
    if learner.effects is not None:
        print("learned effects (at the last decision):")
        for action, cells in learner.effects.table.items():
            print(f"  {action}: " + ", ".join(f"{s} {v:.3f}" for s, v in cells.items()))
    if "learned + uplift" in strategies:
        print(f"uplift models at the last decision: {getattr(uplifted, 'uplift_actions', [])}")
    for period in ("whole", "after"):
        since = start if period == "whole" else learn_at
        el_none = results["none"][period]["expected_loss"]
        el_oracle = results["oracle"][period]["expected_loss"]
        print(f"\nfrom {since:%Y-%m-%d} to the end of the data ({period}):")
        print(
            "| strategy | accounts 30+ DPD | rate | expected loss | contacts | opt-outs | averted per 1,000 contacts "
            "| share of oracle's benefit |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            m = r[period]
            share = (el_none - m["expected_loss"]) / (el_none - el_oracle) if el_none != el_oracle else float("nan")
            print(f"| {name} | {m['reached_30']:,} | {m['reached_30'] / m['accounts']:.2%} | "
                  f"{m['expected_loss']:,.0f} | {m['contacts']:,} | {m['opt_outs']:,} | "
                  f"{m.get('averted_per_1000', float('nan')):.1f} | {share:.0%} |")  # fmt: skip
    if {"dunning", "assumed", "learned"} <= set(results):
        for period in ("whole", "after"):
            el = {name: r[period]["expected_loss"] for name, r in results.items()}
            share = (el["none"] - el["learned"]) / (el["none"] - el["oracle"]) if el["none"] != el["oracle"] else 0.0
            beats = {name: el["learned"] < el[name] for name in ("dunning", "assumed")}
            print(f"\nacceptance ({period}): learned beats dunning {beats['dunning']}, beats assumed "
                  f"{beats['assumed']}, reaches 70% of the oracle {share >= 0.7} ({share:.0%})")  # fmt: skip
    print("\npolicy violations (independent check of every outbound contact):")
    for name, r in results.items():
        print(f"  {name}: {r['violations']}")


if __name__ == "__main__":
    main()
