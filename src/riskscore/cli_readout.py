"""``riskscore readout``: what the outreach achieved against its control group, on the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

import riskscore.cli_options as opt

__all__ = ["add_command", "one_run", "read_decisions", "table_for_people"]


def add_command(commands: Any) -> None:
    """Add the ``readout`` command to the sub-command parsers ``commands``."""
    readout = commands.add_parser(
        "readout",
        help="measure what outreach achieved against the held-out control group",
        description=(
            "Compare the accounts contacted with those held out as control, per treatment and segment: the share "
            "reaching 30+ days past due within the horizon after each decision, the uplift with a 95% interval, "
            "contacts per delinquency averted. Decisions: the parquet file of riskscore recommend, the output "
            "folder of riskscore score --policy, or an audit log (.jsonl)."
        ),
    )
    readout.add_argument("--decisions", type=Path, required=True, help="recommend output, score output or audit log")
    readout.add_argument("--data", type=Path, required=True, help="event data folder covering the horizon")
    readout.add_argument("--horizon", type=opt.horizon, default="90D", help="performance window (default: 90D)")
    readout.add_argument(
        "--by", default="action,segment", help="grouping columns, comma-separated (default: %(default)s)"
    )
    readout.add_argument(
        "--run-id", default=None, help="from an audit log holding several runs, read out this run's decisions only"
    )
    readout.add_argument("--out", type=opt.new_file(".csv"), default=None, help="also write the table as CSV")
    readout.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The ``readout`` command: read the decisions and the events, print (and write) the read-out."""
    from riskscore.data import EventData
    from riskscore.outreach import readout

    events = EventData.from_dir(args.data)
    by = tuple(b.strip() for b in str(args.by).split(",") if b.strip())
    decisions = read_decisions(args.decisions)
    if args.run_id is not None:
        decisions = one_run(decisions, args.decisions, str(args.run_id))
    out = readout(decisions, events, horizon=args.horizon, by=by)
    if args.out is not None:
        from riskscore._io import atomic_write

        atomic_write(args.out, lambda p: out.to_csv(p))
    total = int(out.iloc[-1]["treated"] + out.iloc[-1]["control"])
    print(f"read-out over {args.horizon} after each decision ({total:,} accounts; "
          "uplift = control rate - treated rate, 95% interval):")  # fmt: skip
    print(table_for_people(out).to_string())
    if args.out is not None:
        print(f"read-out written to {args.out}")
    return 0


def read_decisions(path: Path) -> Any:
    """Decisions from a recommend parquet file, a score_batch output folder or an audit log path."""
    if path.is_dir():
        from riskscore.batch.read import read_scores

        return read_scores(path)
    if path.suffix == ".parquet" and path.is_file():
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"--decisions {path}: must be the parquet file riskscore recommend writes ({exc})"
            ) from exc
    if path.suffix == ".jsonl" or not path.exists():
        if not path.exists():
            raise FileNotFoundError(f"--decisions {path}: no such file or folder")
        return path
    raise ValueError(f"--decisions {path}: must be a .parquet file, a score output folder or an audit log (.jsonl)")


def one_run(decisions: Any, path: Path, run_id: str) -> pd.DataFrame:
    """The decisions of one run of an audit log (``--run-id``); a run the log does not hold is refused."""
    from riskscore.outreach import decisions_frame

    if isinstance(decisions, pd.DataFrame):
        raise ValueError(f"--run-id: {path} is not an audit log (.jsonl); only an audit log records its runs")
    frame = decisions_frame(decisions)
    mine = frame[frame["run_id"].astype(str) == run_id]
    if mine.empty:
        known = frame["run_id"].astype(str).drop_duplicates().tolist()
        raise ValueError(f"--run-id {run_id}: not a run of {path}; its runs are {known[:10]}")
    return mine


def table_for_people(out: pd.DataFrame) -> pd.DataFrame:
    """The read-out with counts, rates in percent and the uplift in points with its interval, as text."""

    def pct(v: float) -> str:
        return "-" if pd.isna(v) else f"{v:.1%}"

    def points(row: pd.Series) -> str:
        if not row["enough"]:
            return f"too few (detectable: {row['mde'] * 100:.1f} pts)" if pd.notna(row["mde"]) else "no control"
        return f"{row['uplift'] * 100:+.1f} pts [{row['ci_low'] * 100:+.1f}, {row['ci_high'] * 100:+.1f}]"

    return pd.DataFrame(
        {
            "treated": out["treated"].map("{:,}".format),
            "control": out["control"].map("{:,}".format),
            "contacts": out["contacts"].map("{:,}".format),
            "rate treated": out["rate_treated"].map(pct),
            "rate control": out["rate_control"].map(pct),
            "uplift": out.apply(points, axis=1),
            "p": out["p_value"].map(lambda v: "-" if pd.isna(v) else f"{v:.3f}"),
            "contacts per averted": out["contacts_per_averted"].map(lambda v: "-" if pd.isna(v) else f"{v:,.0f}"),
        },
        index=out.index,
    )
