"""``riskscore features``: the features and labels of a training grid as a parquet dataset, chunk by chunk."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import riskscore.cli_options as opt

__all__ = ["add_command", "run"]


def add_command(commands: Any) -> None:
    """Add the ``features`` command to the sub-command parsers ``commands``."""
    cmd = commands.add_parser(
        "features",
        help="write the features and labels of a training grid as a parquet dataset, in chunks",
        description="Build the grid of current accounts at month starts from --start to --end, and write its "
        "features (the bundle's FeatureBuilder) and labels to --out chunk by chunk (part-*.parquet, _errors.parquet, "
        "_excluded.parquet, _SUCCESS), resumably, in bounded memory; dask.dataframe.read_parquet(--out) feeds "
        "RiskModel.fit. The grid (accounts current at each month start) is found chunk by chunk, so the book is never "
        "read whole.",
    )
    cmd.add_argument("--model", type=Path, required=True, help="model bundle folder whose FeatureBuilder to use")
    cmd.add_argument("--data", type=Path, required=True, help="event-data folder")
    cmd.add_argument("--start", type=opt.date, required=True, help="first monthly as_of of the grid")
    cmd.add_argument("--end", type=opt.date, required=True, help="last monthly as_of of the grid")
    cmd.add_argument("--horizon", type=opt.horizon, default="90D", help="label window (default: 90D)")
    cmd.add_argument("--dpd", type=opt.positive_int, default=30, help="days past due that count (default: 30)")
    cmd.add_argument("--out", type=opt.folder, required=True, help="output folder")
    opt.add_runner_options(cmd)
    cmd.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``features`` command."""
    from riskscore.batch.features import build_features

    opt.check_runner(args)
    model = opt.load_model(args.model, builder=True)
    args.progress(f"writing the features of the grid from {args.start} to {args.end} in chunks of "
                  f"{args.chunk_size:,} accounts")  # fmt: skip
    result = build_features(model, args.data, (args.start, args.end), args.out, horizon=args.horizon,
                            dpd_threshold=args.dpd, chunk_size=args.chunk_size, n_jobs=args.jobs,
                            backend=args.backend, client=args.scheduler)  # fmt: skip
    if result.observations == 0:
        raise ValueError(f"no current accounts at month starts from {args.start} to {args.end}")
    print(result)
    return 0
