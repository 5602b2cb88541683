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

import pandas as pd

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2


def _version() -> str:
    from riskscore import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riskscore",
        description="Early-warning credit risk: features, calibrated PD, reason codes, compliant outreach.",
    )
    parser.add_argument("--version", action="version", version=f"riskscore {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run the job on the bundled sample portfolio",
        description="Load the bundled sample portfolio, validate it and summarise it. Writes summary.csv to --out.",
    )
    demo.add_argument("--out", type=Path, default=Path("riskscore-demo"), help="output folder (default: %(default)s)")
    demo.add_argument("--data", type=Path, default=None, help="event-data folder to use instead of the bundled sample")
    demo.set_defaults(run=_demo)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from riskscore import datasets
    from riskscore.data import EventData

    events = EventData.from_dir(args.data) if args.data is not None else datasets.load_sample()
    assert isinstance(events, EventData)
    source = str(args.data) if args.data is not None else "bundled sample"
    summary = events.summary()
    print(f"riskscore {_version()} demo: {source}, {len(events.accounts):,} accounts, all tables valid")
    print()
    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(_printable(summary).to_string())
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "summary.csv"
    tmp = target.with_name(f".{target.name}.tmp")
    summary.to_csv(tmp)
    tmp.replace(target)
    print()
    print(f"summary written to {target}")
    return EXIT_OK


def _printable(summary: pd.DataFrame) -> pd.DataFrame:
    out = summary.copy()
    for col in ("first", "last"):
        out[col] = out[col].dt.strftime("%Y-%m-%d")
    return out


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
    try:
        code: int = args.run(args)
        return code
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return EXIT_OK
    except (RiskscoreError, FileNotFoundError, FileExistsError, ValueError) as exc:
        if args.debug:
            raise
        print(f"riskscore {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # an unexpected failure: say so plainly
        if args.debug:
            raise
        print(
            f"riskscore {args.command}: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
