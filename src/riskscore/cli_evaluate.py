"""``riskscore evaluate`` and ``riskscore monitor``: the figures a risk team asks for most, on the command line.

``evaluate`` measures a bundle on the data per sample (development, hold-out,
out of time, read from the bundle's manifest) and per month; ``monitor`` says
how the book at one date compares with the population the model was trained
on (the PSI of the score, of the bands and of the most used features) and how
it is paying (days-past-due buckets, last month's roll rates).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

import riskscore.cli_options as opt

__all__ = ["add_commands", "run_evaluate", "run_monitor"]

_METRICS = {"n": "observations", "positives": "defaults", "rate": "default rate", "auc": "AUC", "ks": "KS",
            "brier": "Brier", "ece": "calibration error", "lift_10": "lift at 10%"}  # fmt: skip


def add_commands(commands: Any) -> None:
    """Add ``evaluate`` and ``monitor`` to the sub-command parsers ``commands``."""
    ev = commands.add_parser(
        "evaluate",
        help="measure a model per sample (development, hold-out, out of time) and per month",
        description="Rebuild the scoring grid of current accounts at month starts, the model's target and its "
        "features on --data, and measure the bundle's PD: AUC, KS, Brier, calibration error, lift, per sample "
        "(development and hold-out months from the bundle's manifest, out of time after them) and per month. "
        "Only out-of-time figures say how the model does on new data.",
    )
    ev.add_argument("--model", type=Path, required=True, help="model bundle folder")
    ev.add_argument("--data", type=Path, required=True, help="event-data folder")
    ev.add_argument("--start", type=opt.date, default=None, help="first monthly as_of (default: the data's first)")
    ev.add_argument("--end", type=opt.date, default=None, help="last monthly as_of (default: the data's last)")
    ev.add_argument("--out", type=opt.new_file(".csv"), default=None, help="also write the per-month table as CSV")
    ev.set_defaults(run=run_evaluate)

    mon = commands.add_parser(
        "monitor",
        help="compare the book at one date with the model's training population",
        description="Score the accounts current at --as-of and compare them with the accounts of the bundle's "
        "training months (rebuilt from --data): the PSI of the PD, of the bands and of the most used features "
        "(< 0.10 stable, < 0.25 watch, else shift), the days-past-due buckets at --as-of and the roll rates of "
        "the month before.",
    )
    mon.add_argument("--model", type=Path, required=True, help="model bundle folder")
    mon.add_argument("--data", type=Path, required=True, help="event-data folder holding the training months too")
    mon.add_argument("--as-of", type=opt.date, required=True, help="date of the book to monitor (YYYY-MM-DD)")
    mon.add_argument(
        "--top", type=opt.positive_int, default=10, help="features shown, by gain in the model (default: 10)"
    )
    mon.add_argument("--out", type=opt.new_file(".csv"), default=None, help="also write the feature PSI as CSV")
    mon.set_defaults(run=run_monitor)


def run_evaluate(args: argparse.Namespace) -> int:
    """The ``evaluate`` command."""
    from riskscore.evaluate import evaluate
    from riskscore.labels import make_labels, observation_dates
    from riskscore.model.samples import SAMPLES, sample_of

    model, events = _inputs(args)
    target = model.manifest_.get("target", {})
    horizon, threshold = str(target.get("horizon", "90D")), int(target.get("dpd_threshold", 30))
    obs = observation_dates(events, start=args.start, end=args.end)
    if obs.empty:
        raise ValueError("no account is open and current at any month start of the range: nothing to evaluate")
    y = make_labels(events, obs, horizon=horizon, dpd_threshold=threshold)
    known = y.notna().to_numpy()
    if not known.any():
        raise ValueError(f"no observation of the range has a complete {horizon} target window in --data")
    args.progress(f"building features and scoring {int(known.sum()):,} observations with a complete target")
    X = model.builder_.transform(events, obs.loc[known])
    yk = y[known].astype(int).set_axis(X.index)
    p = model.predict_proba(X)[:, 1]
    dates = X.index.get_level_values("as_of")
    sample = sample_of(model, dates)
    rows = {}
    for name in [s for s in SAMPLES if (sample == s).any()]:
        mask = sample == name
        if yk[mask].nunique() == 2:
            rows[name] = evaluate(yk[mask], p[mask]).summary
    per_month = evaluate(yk, p, by="as_of").by_period
    assert per_month is not None
    month_sample = pd.Series(sample_of(model, per_month.index), index=per_month.index)
    print(f"{model.version_} on {args.data}: target {threshold}+ days past due within {horizon}")
    print()
    print(_people(pd.DataFrame.from_dict(rows, orient="index")).rename_axis("sample").to_string())
    print()
    table = per_month.assign(sample=month_sample)
    shown = _people(table).assign(sample=month_sample.to_numpy())
    shown.index = [f"{d:%Y-%m-%d}" for d in per_month.index]
    print(shown[["sample", *[v for v in _METRICS.values() if v in shown.columns]]].rename_axis("as_of").to_string())
    if "out of time" not in rows:
        print("\nno out-of-time month with both outcomes in --data: every figure above is in sample")
    if args.out is not None:
        opt.write(args.out, lambda path: table.to_csv(path))
        print(f"per-month table written to {args.out}")
    return 0


def run_monitor(args: argparse.Namespace) -> int:
    """The ``monitor`` command."""
    from riskscore.labels import observation_dates
    from riskscore.monitor import psi, psi_level, roll_rates, stability

    model, events = _inputs(args)
    opt.check_as_of(args.as_of, opt.event_span(events), model, False)
    training = model.manifest_.get("training", {})
    if "first_as_of" not in training:
        raise ValueError("the bundle's manifest records no training months: nothing to compare with")
    first, last = training["first_as_of"], training["last_as_of"]
    base_obs = observation_dates(events, start=first, end=last)
    if base_obs.empty:
        raise ValueError(
            f"--data {args.data} holds no current account at the training month starts {first} to {last}: "
            "give the event data the model was trained on (with the new months added)"
        )
    now_obs = observation_dates(events, freq="D", start=args.as_of, end=args.as_of)
    if now_obs.empty:
        raise ValueError(f"no account is open and current at --as-of {args.as_of}")
    args.progress(f"rebuilding the training population ({len(base_obs):,} observations, {first} to {last})")
    base_x = model.builder_.transform(events, base_obs)
    args.progress(f"scoring the {len(now_obs):,} accounts current at {args.as_of}")
    now_x = model.builder_.transform(events, now_obs)
    base_s, now_s = model.score(base_x), model.score(now_x)
    score_psi = float(psi(base_s["pd"], now_s["pd"]))  # type: ignore[arg-type]
    band_table = psi(base_s["band"].astype(str), now_s["band"].astype(str), return_table=True)
    assert isinstance(band_table, pd.DataFrame)
    gain = pd.Series(model.booster_.feature_importance("gain"), index=model.booster_.feature_name())
    top = [f for f in gain.sort_values(ascending=False).index if f in base_x.columns][: args.top]
    numeric = [f for f in top if pd.api.types.is_numeric_dtype(base_x[f].dtype)]
    features = stability(base_x[numeric], now_x[numeric])
    print(f"{model.version_}: {len(now_obs):,} accounts current at {args.as_of} against the training population "
          f"({len(base_obs):,} observations, {first} to {last})")  # fmt: skip
    print(f"PSI of the PD: {score_psi:.3f} ({psi_level(score_psi)})")
    print()
    print(_shares(band_table).to_string())
    print()
    print(f"the {len(numeric)} features the model uses most (by gain), PSI against training:")
    shown = features.assign(psi=features["psi"].map("{:.3f}".format))
    for col in ("expected_missing", "actual_missing"):
        shown[col] = features[col].map("{:.1%}".format)
    print(shown.rename(columns={"expected_missing": "missing (training)", "actual_missing": "missing (now)"})
          .to_string())  # fmt: skip
    day = pd.Timestamp(args.as_of)
    month_start = day.to_period("M").to_timestamp()
    span = opt.event_span(events)
    if span is not None and month_start - pd.DateOffset(months=1) >= span[0]:
        rates = roll_rates(events, month_start - pd.DateOffset(months=1), month_start)
        counts = rates.attrs["counts"]
        print()
        print(f"roll rates from {month_start - pd.DateOffset(months=1):%Y-%m-%d} to {month_start:%Y-%m-%d} "
              "(share of each bucket's accounts one month later):")  # fmt: skip
        table = rates.map(lambda v: "" if pd.isna(v) else f"{v:.1%}").assign(accounts=counts.sum(axis=1))
        print(table.rename_axis(index="bucket", columns="a month later").to_string())
    if args.out is not None:
        opt.write(args.out, lambda path: features.to_csv(path))
        print(f"feature PSI written to {args.out}")
    return 0


def _inputs(args: argparse.Namespace) -> tuple[Any, Any]:
    from riskscore.data import EventData

    model = opt.load_model(args.model, builder=True)
    args.progress(f"reading and validating the event tables in {args.data}")
    return model, EventData.from_dir(args.data)


def _people(frame: pd.DataFrame) -> pd.DataFrame:
    """Metrics as people read them (the report's formatting): counts, rates in percent, scores to three places."""
    from riskscore.report.format import count, number, pct

    shown = {"n": count, "positives": count, "rate": lambda v: pct(v, 2), "ece": lambda v: pct(v, 2),
             "lift_10": lambda v: f"{number(v, 1)}x"}  # fmt: skip
    out = pd.DataFrame(index=frame.index)
    for key, name in _METRICS.items():
        if key in frame.columns:
            out[name] = frame[key].map(shown.get(key, number))
    return out


def _shares(table: pd.DataFrame) -> pd.DataFrame:
    """The band table of :func:`psi` with shares in percent."""
    out = table.copy()
    for col in ("expected_share", "actual_share"):
        out[col] = out[col].map("{:.1%}".format)
    out["psi"] = out["psi"].map("{:.3f}".format)
    names = {"expected": "training", "actual": "now", "expected_share": "training share", "actual_share": "now share"}
    return out.rename(columns=names).rename_axis("band")
