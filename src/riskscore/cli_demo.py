"""``riskscore demo``: train, test, score, explain and recommend on the sample, and write every output."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import riskscore.cli_options as opt

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """``riskscore demo``: the whole job on the sample (or a data folder), with every output written."""
    from riskscore.data import EventData
    from riskscore.datasets import load_sample
    from riskscore.features import FeatureBuilder
    from riskscore.labels import make_labels, observation_dates

    args.progress("reading and validating the event tables")
    events = EventData.from_dir(args.data) if args.data is not None else load_sample()
    assert isinstance(events, EventData)
    source = str(args.data) if args.data is not None else "bundled sample"
    summary = events.summary()
    print(f"riskscore {opt.version()} demo: {source}, {len(events.accounts):,} accounts, all tables valid")
    print()
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(opt.printable(summary).to_string())

    obs = observation_dates(events)
    labels = make_labels(events, obs)
    args.progress(f"building point-in-time features for {len(obs):,} observations")
    builder = FeatureBuilder()
    features = builder.fit_transform(events, obs)
    known = labels.dropna()
    print()
    print(
        f"scoring grid: {len(obs):,} observations of accounts current at month starts "
        f"{obs['as_of'].min():%Y-%m-%d} to {obs['as_of'].max():%Y-%m-%d}"
    )
    print(
        f"target {labels.name}: {int(known.sum()):,} of {len(known):,} complete windows reach 30+ days past due "
        f"({known.mean():.1%}); {labels.isna().sum():,} windows not complete yet"
    )
    print(f"features: {features.shape[1]} point-in-time features from families {', '.join(builder.families_)}")

    # Train on the earlier complete windows, test on the latest six months of them.
    from riskscore.evaluate import evaluate
    from riskscore.model import RiskModel

    complete = labels.notna().to_numpy()
    X, y = features[complete], labels[complete].astype(int)
    y.index = X.index
    dates = np.sort(X.index.get_level_values("as_of").unique())
    cut = dates[max(1, len(dates) - 6)]
    train = X.index.get_level_values("as_of") < cut
    args.progress(f"training the calibrated LightGBM model on {int(train.sum()):,} observations")
    model = RiskModel(random_state=0).fit(X[train], y[train], builder=builder)
    report = evaluate(y[~train], model.predict_proba(X[~train])[:, 1])
    s = report.summary
    print(
        f"model: {model.booster_.num_trees()} trees, trained on as_of before {pd.Timestamp(cut):%Y-%m-%d}; "
        f"out of time ({int((~train).sum()):,} observations): AUC {s['auc']:.3f}, KS {s['ks']:.3f}, "
        f"Brier {s['brier']:.4f}, calibration error {s['ece']:.4f}, lift at top 10% {s['lift_10']:.1f}x"
    )
    latest = obs[obs["as_of"] == obs["as_of"].max()]
    scores = model.score(features.loc[pd.MultiIndex.from_frame(latest)])
    bands = scores["band"].value_counts().sort_index()
    print(f"scores at {latest['as_of'].max():%Y-%m-%d}: " + ", ".join(f"band {b} {n:,}" for b, n in bands.items()))

    # Explain the accounts the treatment table would contact; recommend under the policy.
    from riskscore.outreach import OutreachPolicy, Treatments, recommend

    zone, profile = opt.home_zone(events.accounts)
    policy = OutreachPolicy.load(profile if args.policy == "auto" else args.policy)
    treatments = Treatments.load()
    contact = scores["band"].isin(treatments.contacted_bands(scores["band"].unique())).to_numpy()
    latest_x = features.loc[scores.index]
    args.progress(f"explaining {int(contact.sum()):,} accounts and recommending outreach")
    explanation = model.explain(latest_x[contact])
    now = (pd.Timestamp(latest["as_of"].max()) + pd.Timedelta(days=2, hours=10)).tz_localize(zone)
    capacity = {"call": 25, "sms": 250, "human_review": 10}
    args.out.mkdir(parents=True, exist_ok=True)
    audit = args.out / ".audit.jsonl.tmp"
    audit.unlink(missing_ok=True)
    recs = recommend(scores, explanation, events, policy, now=now, capacity=capacity, audit=audit)
    audit.replace(args.out / "audit.jsonl")
    counts = opt.contact_counts(recs)
    print(
        f"outreach under {policy.id} ({policy.version}) at {now:%Y-%m-%d %H:%M %Z}, capacity "
        + ", ".join(f"{k} {v}" for k, v in capacity.items())
        + f": {int(contact.sum()):,} accounts explained, {int(recs['control'].sum())} held out as control"
    )
    print(counts.to_string(index=False))
    sample = recs.loc[recs["action"] == "repayment_plan"].head(1)
    if len(sample):
        print(f"  e.g. account {sample['account_id'].iat[0]}: {sample['message'].iat[0]}")

    opt.write(args.out / "summary.csv", lambda p: summary.to_csv(p))
    table = features.assign(**{str(labels.name): labels.to_numpy()})
    opt.write(args.out / "features.parquet", lambda p: table.to_parquet(p))
    opt.write(args.out / "scores.parquet", lambda p: scores.to_parquet(p))
    opt.write(args.out / "evaluation.csv", lambda p: report.to_frame().to_csv(p))
    opt.write(args.out / "recommendations.parquet", lambda p: opt.flat(recs).to_parquet(p))
    model.save(args.out / "model", overwrite=True, key=opt.bundle_key())
    print()
    print(
        f"summary.csv, features.parquet (features and target), evaluation.csv, scores.parquet, "
        f"recommendations.parquet, audit.jsonl and the model bundle model/ written to {args.out}"
    )
    return 0
