"""The ``riskscore`` command line.

Each command is a thin layer over the public API: it parses arguments, calls the
library, prints a short result and returns an exit code. Errors print one clear
line (no traceback unless ``--debug``).

Exit codes: 0 success, 1 unexpected error, 2 bad usage or invalid input data.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import riskscore.cli_demo as demo_command
import riskscore.cli_evaluate as evaluate_command
import riskscore.cli_features as features_command
import riskscore.cli_options as opt
import riskscore.cli_readout as readout_command

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2


def _parser() -> argparse.ArgumentParser:
    parser = opt.OneLineParser(
        prog="riskscore",
        description="Early-warning credit risk: features, calibrated PD, reason codes, compliant outreach.",
        epilog="Set RISKSCORE_BUNDLE_KEY (a secret of at least 16 bytes) to sign the bundles train and demo write "
        "and to load only bundles signed with it.",
    )
    parser.add_argument("--version", action="version", version=f"riskscore {opt.version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run the job on the bundled sample portfolio",
        description=(
            "The whole job on the bundled sample (or --data): validate the events, build the scoring grid, target "
            "and features, train and test a model out of time, score the latest month, explain the accounts the "
            "treatment table contacts, and recommend outreach under a compliance policy. Writes everything to --out."
        ),
    )
    demo.add_argument(
        "--out", type=opt.folder, default=Path("riskscore-demo"), help="output folder (default: %(default)s)"
    )
    demo.add_argument("--data", type=Path, default=None, help="event-data folder to use instead of the bundled sample")
    demo.add_argument(
        "--policy",
        default="auto",
        help="outreach policy: cn-2026, us-regf, uk-conc or a file; auto (the default) takes the profile of the "
        "jurisdiction where most accounts' time zones are (us-regf for the sample)",
    )
    demo.set_defaults(run=demo_command.run)

    train = commands.add_parser(
        "train",
        help="train a model bundle on monthly observations",
        description="Build the scoring grid of current accounts at month starts from --start to --end, the target "
        "(30+ days past due within --horizon) and the features; train a calibrated model; save the bundle.",
    )
    train.add_argument("--data", type=Path, required=True, help="event-data folder (one file per table)")
    train.add_argument("--start", type=opt.date, required=True, help="first monthly as_of date of the training grid")
    train.add_argument("--end", type=opt.date, required=True, help="last monthly as_of date of the training grid")
    train.add_argument("--horizon", type=opt.horizon, default="90D", help="target window (default: %(default)s)")
    train.add_argument(
        "--dpd", type=opt.positive_int, default=30, help="days past due that count as default (default: 30)"
    )
    train.add_argument("--out", type=opt.folder, required=True, help="bundle folder to write")
    train.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    train.set_defaults(run=_train)

    score = commands.add_parser(
        "score",
        help="score every account at one date, in chunks, resumably",
        description="Score every account of --data at --as-of with --model, chunk by chunk, into the output folder "
        "(part-*.parquet, _excluded.parquet, _errors.parquet, _manifest.json, _SUCCESS). Rerunning the same "
        "command after a crash finishes the run. Exits with 2 when more than --max-error-share of the accounts "
        "break the data contract (the output is complete all the same).",
    )
    score.add_argument("--model", type=Path, required=True, help="model bundle folder")
    score.add_argument("--data", type=Path, required=True, help="event-data folder")
    score.add_argument("--as-of", type=opt.date, required=True, help="scoring date (YYYY-MM-DD)")
    score.add_argument(
        "--allow-future", action="store_true", help="score an --as-of more than one horizon after the last event"
    )
    score.add_argument("--out", type=opt.folder, required=True, help="output folder")
    score.add_argument("--explain", choices=["recommended", "all", "none"], default="recommended")
    opt.add_runner_options(score)
    score.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the reasons")
    score.add_argument("--no-resume", action="store_true", help="refuse to continue a run found in --out")
    score.add_argument(
        "--max-error-share",
        type=opt.share,
        default=0.01,
        help="largest share of accounts with invalid rows before the command fails (default: 0.01)",
    )
    score.add_argument("--policy", default=None, help="recommend outreach under this policy (name or file)")
    score.add_argument(
        "--capacity", type=opt.capacity, default=None, help="daily capacity per channel, e.g. call=500,sms=5000"
    )
    score.add_argument(
        "--now", type=opt.moment, default=None, help="moment of the decisions, tz-aware ISO (default: as-of, UTC)"
    )
    _outreach_options(score)
    score.set_defaults(run=_score)

    rec = commands.add_parser(
        "recommend",
        help="recommend outreach for every account at one date, under a policy",
        description="Score every current account at --as-of, explain those the treatment table contacts, and "
        "recommend outreach under --policy within --capacity, in memory (for a book that does not fit in memory: "
        "riskscore score --policy). Writes the recommendations (parquet) and, with --audit, an audit log.",
    )
    rec.add_argument("--model", type=Path, required=True, help="model bundle folder")
    rec.add_argument("--data", type=Path, required=True, help="event-data folder")
    rec.add_argument("--as-of", type=opt.date, required=True, help="scoring date (YYYY-MM-DD)")
    rec.add_argument(
        "--allow-future", action="store_true", help="score an --as-of more than one horizon after the last event"
    )
    rec.add_argument("--policy", required=True, help="cn-2026, us-regf, uk-conc or a policy file")
    rec.add_argument(
        "--now",
        type=opt.moment,
        required=True,
        help="moment of the decisions, tz-aware ISO, e.g. 2024-12-02T09:00+08:00",
    )
    rec.add_argument("--out", type=opt.new_file(".parquet"), required=True, help="recommendations file (.parquet)")
    rec.add_argument(
        "--capacity", type=opt.capacity, default=None, help="daily capacity per channel, e.g. call=500,sms=5000"
    )
    rec.add_argument("--lang", choices=["en", "zh"], default=None, help="message language (default: the policy's)")
    rec.add_argument("--seed", type=opt.whole, default=0, help="seed of the control group (default: 0)")
    rec.add_argument("--control-share", type=opt.share, default=0.05, help="share held out (default: 0.05)")
    rec.add_argument(
        "--control-capacity", choices=["reuse", "hold"], default="reuse",
        help="a held-out customer's contact goes to the next in line (reuse, default) or stays unused (hold)",
    )  # fmt: skip
    rec.add_argument(
        "--audit", type=opt.new_file(".jsonl"), default=None, help="append the decisions to this JSON-lines audit log"
    )
    _outreach_options(rec)
    rec.set_defaults(run=_recommend)

    rep = commands.add_parser(
        "report",
        help="write the HTML model report",
        description="One self-contained HTML file (charts embedded) for model review: out-of-time headline, "
        "development / hold-out / out-of-time samples with intervals and a WOE scorecard challenger, metrics per "
        "month, bands, stability against the training population, the excluded population, fairness by protected "
        "attribute, settings, the reason catalogue, the outreach policy and the limitations.",
    )
    rep.add_argument("--model", type=Path, required=True, help="model bundle folder")
    rep.add_argument("--data", type=Path, required=True, help="event-data folder")
    rep.add_argument("--out", type=opt.new_file(".html"), required=True, help="HTML file to write")
    rep.add_argument("--start", type=opt.date, default=None, help="first monthly as_of evaluated (default: all)")
    rep.add_argument("--end", type=opt.date, default=None, help="last monthly as_of evaluated (default: all)")
    rep.add_argument(
        "--policy",
        default="auto",
        help="outreach policy shown: a profile name or file; auto (the default) takes the profile of the accounts' "
        "time zones",
    )
    rep.add_argument("--lang", choices=["en", "zh"], default="en")
    rep.add_argument("--decisions", type=Path, default=None, help="outreach decisions to read out (as for readout)")
    rep.set_defaults(run=_report)

    readout_command.add_command(commands)
    explain = commands.add_parser(
        "explain",
        help="explain one account's score",
        description="The score of one account at one date, its top reasons, its segment and evidence.",
    )
    explain.add_argument("--model", type=Path, required=True, help="model bundle folder")
    explain.add_argument("--data", type=Path, required=True, help="event-data folder")
    explain.add_argument("--account", required=True, help="account_id")
    explain.add_argument("--as-of", type=opt.date, required=True, help="date (YYYY-MM-DD)")
    explain.add_argument(
        "--allow-future", action="store_true", help="score an --as-of more than one horizon after the last event"
    )
    explain.add_argument("--lang", choices=["en", "zh"], default="en")
    explain.add_argument(
        "--plot",
        type=opt.new_file(".png", ".svg", ".pdf"),
        default=None,
        help="write a waterfall chart to this file (.png, .svg or .pdf)",
    )
    explain.set_defaults(run=_explain)
    evaluate_command.add_commands(commands)
    features_command.add_command(commands)
    for sub in commands.choices.values():
        opt.add_verbosity(sub)
    return parser


def _outreach_options(parser: argparse.ArgumentParser) -> None:
    """The options every command that recommends outreach shares."""
    parser.add_argument(
        "--events-timezone",
        type=opt.zone,
        default=None,
        help="IANA zone of the events' naive timestamps (default: the zone of --now)",
    )
    parser.add_argument("--lender-name", type=opt.text("the lender's name"), default=None, help="quoted in messages")
    parser.add_argument(
        "--lender-contact", type=opt.text("how to reach the lender"), default=None, help="quoted in messages"
    )


def _lender(args: argparse.Namespace) -> dict[str, str] | None:
    given = {"name": args.lender_name, "contact": args.lender_contact}
    return {k: v for k, v in given.items() if v is not None} or None


def _events(path: Path) -> Any:
    from riskscore.data import EventData

    return EventData.from_dir(path)


def _train(args: argparse.Namespace) -> int:
    from riskscore.features import FeatureBuilder
    from riskscore.labels import make_labels, observation_dates
    from riskscore.model import RiskModel
    from riskscore.model.bundle import check_replaceable

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        if not args.overwrite:
            raise FileExistsError(f"--out {args.out} exists: give --overwrite to replace the bundle")
        if not args.out.is_dir() or args.out.is_symlink():
            raise FileExistsError(f"--out {args.out} is not a model bundle folder; choose another path")
        check_replaceable(args.out)  # before training: a folder that is not a bundle is never replaced
    args.progress(f"reading and validating the event tables in {args.data}")
    events = _events(args.data)
    obs = observation_dates(events, start=args.start, end=args.end)
    if obs.empty:
        raise ValueError(f"no current accounts at month starts from {args.start} to {args.end}")
    labels = make_labels(events, obs, horizon=args.horizon, dpd_threshold=args.dpd)
    complete = labels.notna().to_numpy()
    if not complete.any():
        raise ValueError(f"no observation from {args.start} to {args.end} has a complete {args.horizon} window")
    args.progress(f"building point-in-time features for {len(obs):,} observations")
    builder = FeatureBuilder()
    X = builder.fit_transform(events, obs)[complete]
    y = labels[complete].astype(int).set_axis(X.index)
    args.progress(f"training the calibrated LightGBM model on {len(X):,} observations with a complete target")
    model = RiskModel(random_state=0).fit(X, y, builder=builder)
    args.progress(f"saving the bundle to {args.out}")
    model.save(args.out, overwrite=args.overwrite, key=opt.bundle_key())
    holdout = model.manifest_.get("holdout_metrics", {})
    auc = holdout.get("auc")
    print(
        f"trained on {len(X):,} observations ({int(y.sum()):,} reach {args.dpd}+ days past due within "
        f"{args.horizon}), {X.shape[1]} features, {model.booster_.num_trees()} trees"
        + (f"; hold-out AUC {auc:.3f}" if isinstance(auc, float) else "")
        + f"; bundle {args.out} ({model.version_})"
    )
    return EXIT_OK


def _score(args: argparse.Namespace) -> int:
    from riskscore.batch import score_batch

    opt.check_runner(args)
    outreach = ("capacity", "now", "events_timezone", "lender_name", "lender_contact")
    if args.policy is None and any(getattr(args, o) is not None for o in outreach):
        given = [f"--{o.replace('_', '-')}" for o in outreach if getattr(args, o) is not None]
        raise ValueError(f"{', '.join(given)} set the outreach of --policy; give --policy too")
    from riskscore.data.files import find_tables, time_span

    if not args.data.is_dir():
        raise FileNotFoundError(f"event data folder does not exist: {args.data}")
    model = _load_model(args.model)
    opt.check_as_of(args.as_of, time_span(find_tables(args.data)[0]), model, args.allow_future)
    args.progress(f"scoring {args.data} at {args.as_of} in chunks of {args.chunk_size:,} accounts into {args.out}")
    result = score_batch(
        model,
        args.data,
        args.as_of,
        args.out,
        explain=args.explain,
        chunk_size=args.chunk_size,
        n_jobs=args.jobs,
        backend=args.backend,
        resume=not args.no_resume,
        lang=args.lang,
        policy=args.policy,
        capacity=args.capacity,
        now=args.now,
        lender=_lender(args),
        events_timezone=args.events_timezone,
        client=args.scheduler,
    )
    print(result)
    if result.error_share > args.max_error_share:
        raise ValueError(
            f"{result.errors:,} of {result.accounts:,} accounts ({result.error_share:.1%}) have rows that break the "
            f"data contract, more than --max-error-share {args.max_error_share:.1%}: see _errors.parquet in "
            f"{result.output} (the other accounts' scores are complete)"
        )
    return EXIT_OK


def _recommend(args: argparse.Namespace) -> int:
    from riskscore.labels import observation_dates
    from riskscore.outreach import OutreachPolicy, Treatments, recommend

    model = _load_model(args.model)
    if model.builder_ is None:
        raise ValueError("the bundle carries no FeatureBuilder: train it with riskscore train or fit(..., builder=)")
    now = args.now
    policy = OutreachPolicy.load(args.policy)
    args.progress(f"reading and validating the event tables in {args.data}")
    events = _events(args.data)
    opt.check_as_of(args.as_of, opt.event_span(events), model, args.allow_future)
    obs = observation_dates(events, freq="D", start=args.as_of, end=args.as_of)
    if obs.empty:
        raise ValueError(f"no account is open and current at {args.as_of}")
    args.progress(f"building features and scoring {len(obs):,} accounts")
    X = model.builder_.transform(events, obs)
    scores = model.score(X)
    treatments = Treatments.load()
    need = scores["band"].isin(treatments.contacted_bands(scores["band"].unique())).to_numpy()
    args.progress(f"explaining {int(need.sum()):,} accounts in the contacted bands and recommending under {policy.id}")
    recs = recommend(
        scores,
        model.explain(X[need]),
        events,
        policy,
        now=now,
        capacity=args.capacity,
        control_share=args.control_share,
        control_capacity=args.control_capacity,
        seed=args.seed,
        lang=args.lang,
        lender=_lender(args),
        events_timezone=args.events_timezone,
        audit=args.audit,
    )
    opt.write(args.out, lambda p: opt.flat(recs).to_parquet(p))
    acted = recs.loc[recs["action"] != "none"]
    print(
        f"{len(recs):,} accounts scored at {args.as_of}, {int(need.sum()):,} explained; under {policy.id} "
        f"({policy.version}): {len(acted):,} to contact or review, {int(recs['control'].sum()):,} held out as control"
    )
    print(opt.contact_counts(recs).to_string(index=False))
    print(f"recommendations written to {args.out}" + (f"; audit log {args.audit}" if args.audit else ""))
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    import warnings

    from riskscore.report import report

    args.progress(f"building the report on {args.data}: grid, features, scores, explanations and charts")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")  # Chinese text without a CJK font
        path = report(
            _load_model(args.model),
            args.data,
            args.out,
            start=args.start,
            end=args.end,
            policy=args.policy,
            lang=args.lang,
            decisions=None if args.decisions is None else readout_command.read_decisions(args.decisions),
        )
    print(f"report written to {path} ({path.stat().st_size / 1024:,.0f} KiB, charts embedded)")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:

    model = _load_model(args.model)
    if model.builder_ is None:
        raise ValueError("the bundle carries no FeatureBuilder: train it with riskscore train or fit(..., builder=)")
    events = _events(args.data)
    opt.check_as_of(args.as_of, opt.event_span(events), model, args.allow_future)
    ids = events.accounts["account_id"]
    account: Any = args.account
    if pd.api.types.is_integer_dtype(ids.dtype):
        try:
            account = int(args.account)
        except ValueError:
            raise ValueError(f"account {args.account!r} is not in the data (account ids are whole numbers)") from None
    if not (ids == account).any():
        raise ValueError(f"account {args.account!r} is not in the accounts table of {args.data}")
    as_of = pd.Timestamp(args.as_of)
    obs = pd.DataFrame({"account_id": [account], "as_of": [as_of]})
    X = model.builder_.transform(events, obs)
    score = model.score(X).iloc[0]
    expl = model.explain(X)
    seg = expl.segment(evidence=True).iloc[0]
    print(
        f"account {account} at {as_of:%Y-%m-%d}: PD {score['pd']:.2%}, "
        f"{score['points']:.0f} points, band {score['band']}"
    )
    print(f"segment: {seg['segment']} ({', '.join(seg['evidence']) or 'no evidence'})")
    reasons = expl.reason_codes(top=4, lang=args.lang)
    for _, r in reasons.iterrows():
        print(f"  {r['rank']}. [{r['reason_code']}] {r['text']} (+{r['contribution']:.3f} log-odds)")
    if reasons.empty:
        print("  no reason raises this account's risk above the average")
    if args.plot is not None:
        from riskscore.plots import waterfall

        fig = waterfall(expl, account, as_of, lang=args.lang)
        kind = args.plot.suffix.lower()[1:]
        opt.write(args.plot, lambda p: fig.savefig(p, format=kind, dpi=120, bbox_inches="tight"))
        print(f"waterfall written to {args.plot}")
    return EXIT_OK


def _load_model(path: Path) -> Any:
    """The bundle at ``path``, verified against the signing key when ``RISKSCORE_BUNDLE_KEY`` is set."""
    return opt.load_model(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from riskscore.errors import RiskscoreError

    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.command is None:
        parser.print_help()
        return EXIT_INVALID
    quiet = bool(getattr(args, "quiet", False))
    if getattr(args, "verbose", False) and not args.debug:
        logging.getLogger("riskscore").setLevel(logging.INFO)
    elif not quiet and not args.debug:
        logging.getLogger("riskscore.batch").setLevel(logging.INFO)  # a line per chunk: the batch's progress
    args.progress = opt.Progress(args.command, quiet=quiet)
    try:
        code: int = args.run(args)
        return code
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return EXIT_OK
    except (RiskscoreError, FileNotFoundError, FileExistsError, ValueError, ImportError) as exc:
        if args.debug:
            raise
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = "; ".join(line[2:] if line.startswith("- ") else line for line in lines)
        print(f"riskscore {args.command}: error: {text}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # an unexpected failure: say so plainly
        if args.debug:
            raise
        print(
            f"riskscore {args.command}: unexpected error: {type(exc).__name__}: "
            + " ".join(str(exc).split())
            + " (rerun with --debug)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
