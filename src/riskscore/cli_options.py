"""Checked values of the command line's options: each bad value is refused by argparse, naming the option.

Every ``type=`` here raises ``argparse.ArgumentTypeError`` with what must hold
and what was given; :class:`OneLineParser` prints that as one line and exits 2.
:func:`check_as_of` is the one check of a date against the data, made once the
data is found.
"""

from __future__ import annotations

import argparse
import datetime
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

__all__ = [
    "OneLineParser",
    "Progress",
    "add_runner_options",
    "add_verbosity",
    "bundle_key",
    "capacity",
    "check_as_of",
    "check_runner",
    "contact_counts",
    "date",
    "event_span",
    "flat",
    "folder",
    "home_zone",
    "horizon",
    "jobs",
    "load_model",
    "moment",
    "new_file",
    "positive_int",
    "printable",
    "share",
    "text",
    "version",
    "whole",
    "write",
    "zone",
]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on standard error (exit code 2)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse does, but ``--option=--`` is refused (argparse would drop the value silently)."""
        for arg in sys.argv[1:] if args is None else args:
            name, sep, value = str(arg).partition("=")
            if sep and name.startswith("--") and value.strip() == "--":
                self.error(f"argument {name}: must be given a value; got '--'")
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` on one line and exit 2."""
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def _refuse(what: str, text: str) -> NoReturn:
    raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = whole(text)
    if value < 1:
        _refuse("a whole number >= 1", text)
    return value


def whole(text: str) -> int:
    """A whole number (digits, an optional sign)."""
    stripped = text.strip()
    if not stripped.lstrip("+-").isdigit() or not stripped.isascii():
        _refuse("a whole number", text)
    return int(stripped)


def jobs(text: str) -> int:
    """Worker processes: -1 (every core) or a whole number >= 1."""
    try:
        value = whole(text)
    except argparse.ArgumentTypeError:
        _refuse("-1 (every core) or a whole number >= 1", text)
    if value != -1 and value < 1:
        _refuse("-1 (every core) or a whole number >= 1", text)
    return value


def share(text: str) -> float:
    """A share in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        _refuse("a number in [0, 1)", text)
    if not (math.isfinite(value) and 0 <= value < 1):
        _refuse("a number in [0, 1)", text)
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def date(text: str) -> str:
    """A calendar date, ``YYYY-MM-DD`` (returned as given, checked; no month names, no times)."""
    if not _ISO_DATE.fullmatch(text.strip()):
        _refuse("a date YYYY-MM-DD (no time, no zone)", text)
    try:
        pd.Timestamp(datetime.date.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        _refuse("a real date YYYY-MM-DD between 1678 and 2261", text)
    return text.strip()


def moment(text: str) -> pd.Timestamp:
    """A moment with its time zone, ISO 8601 (``2024-12-02T09:00+08:00``)."""
    what = "a time-zone-aware ISO 8601 moment such as 2024-12-02T09:00+08:00"
    if not _ISO_DATE.match(text.strip()):
        _refuse(what, text)
    try:
        value = pd.Timestamp(datetime.datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        _refuse(what, text)
    if value.tzinfo is None:
        _refuse(what, text)
    return value


def horizon(text: str) -> str:
    """A target window of whole days, ``90D``."""
    try:
        value = pd.Timedelta(text)
    except (ValueError, TypeError, OverflowError):
        _refuse("a number of whole days such as 90D", text)
    if pd.isna(value) or value <= pd.Timedelta(0) or value != value.floor("D"):
        _refuse("a positive number of whole days such as 90D", text)
    return text


def capacity(text: str) -> dict[str, int]:
    """``call=500,sms=5000`` as a mapping; each channel once, whole numbers >= 0."""
    out: dict[str, int] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip().isdigit() or not value.strip().isascii():
            _refuse("channel=count pairs such as call=500,sms=5000 (counts whole numbers >= 0)", text)
        if key in out:
            raise argparse.ArgumentTypeError(f"gives channel {key!r} twice; got {text!r}")
        out[key] = int(value)
    return out


def folder(text: str) -> Path:
    """A folder to write into: not an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        _refuse("a folder (new, or one riskscore wrote), not a file", text)
    return path


def zone(text: str) -> str:
    """An IANA time zone name (``America/New_York``)."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        _refuse("an IANA time zone such as America/New_York or Asia/Shanghai", text)
    return text


def text(what: str) -> Callable[[str], str]:
    """Non-empty text (``what`` names it in the error)."""

    def check(value: str) -> str:
        if not value.strip():
            _refuse(f"non-empty text ({what})", value)
        return value.strip()

    return check


def new_file(*suffixes: str) -> Callable[[str], Path]:
    """A file to write with one of ``suffixes``: not a folder, in a folder that exists or can be made."""
    wanted = " or ".join(suffixes) if len(suffixes) < 3 else ", ".join(suffixes[:-1]) + " or " + suffixes[-1]

    def check(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() not in suffixes:
            _refuse(f"a {wanted} file", text)
        if path.is_dir():
            _refuse(f"a {wanted} file, not a folder", text)
        if path.parent.exists() and not path.parent.is_dir():
            _refuse("a file in a folder (its parent is a file)", text)
        return path

    return check


def check_as_of(as_of: str, span: tuple[pd.Timestamp, pd.Timestamp] | None, model: Any, allow_future: bool) -> None:
    """Refuse an ``--as-of`` before the data's first event, or more than one target horizon after its last."""
    day = pd.Timestamp(as_of)
    if span is None:
        raise ValueError("the event tables hold no rows: nothing to score")
    first, last = (pd.Timestamp(t) for t in span)
    if day <= first.normalize():
        raise ValueError(
            f"--as-of {as_of} must be after the data's first event ({first:%Y-%m-%d}): no account has history then"
        )
    horizon = pd.Timedelta(str((model.manifest_.get("target") or {}).get("horizon") or "90D"))
    if day > last + horizon and not allow_future:
        raise ValueError(
            f"--as-of {as_of} must be at most one target horizon ({horizon.days} days) after the data's last event "
            f"({last:%Y-%m-%d}): scores that late would rest on stale history; give --allow-future to score anyway"
        )


def event_span(events: Any) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last event time of an EventData."""
    from riskscore.data.schema import EVENT_TABLES, NOT_BEFORE_OPEN

    times = [
        df[col].dropna()
        for name in EVENT_TABLES
        if (df := getattr(events, name)) is not None
        for col in NOT_BEFORE_OPEN[name]
    ]
    times = [t for t in times if len(t)]
    if not times:
        return None
    return min(t.min() for t in times), max(t.max() for t in times)


def home_zone(accounts: pd.DataFrame) -> tuple[str, str]:
    """(the accounts' most frequent time zone, the shipped profile of its jurisdiction), for ``demo --policy auto``.

    Refused when no account has a zone, or the most frequent one is in no
    jurisdiction a profile covers: the policy must then be given.
    """
    zones = accounts["timezone"].dropna().astype(str) if "timezone" in accounts.columns else pd.Series([], dtype=str)
    if zones.empty:
        raise ValueError("--policy auto needs accounts.timezone to choose a jurisdiction: give --policy")
    from riskscore.outreach.policy import profile_for_zone

    zone = str(zones.value_counts().index[0])
    profile = profile_for_zone(zone)
    if profile is not None:
        return zone, profile
    raise ValueError(
        f"--policy auto: most accounts are in {zone}, which no shipped profile covers (US, UK, China): give --policy"
    )


def write(target: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file renamed into place: never a half-written output."""
    from riskscore._io import atomic_write

    atomic_write(target, write)


def flat(recs: pd.DataFrame) -> pd.DataFrame:
    """Recommendations for a parquet file: nested columns (offer, reasons, blocked) as JSON text."""
    import json

    out = recs.copy()
    for col in ("offer", "reasons", "blocked"):
        out[col] = [json.dumps(v, ensure_ascii=False) for v in out[col]]
    return out


def contact_counts(recs: pd.DataFrame) -> pd.DataFrame:
    """Contacts (what capacity counts: one per customer) and the accounts they concern, per action and channel."""
    acted = recs.loc[recs["action"] != "none"]
    table = acted.groupby(["action", "channel"]).agg(
        contacts=("contact_id", "nunique"), accounts=("account_id", "size")
    )
    return table.reset_index().assign(channel=lambda t: t["channel"].replace("", "-"))


def printable(summary: pd.DataFrame) -> pd.DataFrame:
    """``EventData.summary()`` with its dates as text, for the terminal."""
    out = summary.copy()
    for col in ("first", "last"):
        out[col] = out[col].dt.strftime("%Y-%m-%d")
    return out


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--verbose``, one or the other, on a sub-command."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", "-q", action="store_true", help="print only the result and errors: no progress lines")
    group.add_argument("--verbose", "-v", action="store_true", help="also print the library's own progress log (INFO)")


class Progress:
    """One line on standard error as each long step starts, with the time since the command began.

    Silent under ``--quiet``. Standard output keeps only the command's result,
    so it can be piped or parsed.
    """

    def __init__(self, command: str, quiet: bool = False) -> None:
        import time

        self.command, self.quiet, self._clock, self._start = command, quiet, time.perf_counter, time.perf_counter()

    def __call__(self, message: str) -> None:
        """Say that ``message`` (a step, such as "building features for 11,185 observations") starts now."""
        if not self.quiet:
            print(f"riskscore {self.command} [{self._clock() - self._start:5.1f} s]: {message}", file=sys.stderr,
                  flush=True)  # fmt: skip


def add_runner_options(parser: argparse.ArgumentParser) -> None:
    """``--chunk-size``, ``--jobs``, ``--backend``, ``--scheduler``: how a chunked command runs."""
    parser.add_argument(
        "--chunk-size", type=positive_int, default=50_000, help="accounts per chunk (default: %(default)s)"
    )
    parser.add_argument("--jobs", type=jobs, default=-1, help="worker processes (default: -1, all cores)")
    parser.add_argument(
        "--backend", choices=["local", "dask"], default="local", help="joblib workers or a Dask cluster"
    )
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a local cluster)")


def check_runner(args: argparse.Namespace) -> None:
    """``--scheduler`` only with ``--backend dask``."""
    if args.scheduler is not None and args.backend != "dask":
        raise ValueError(f"--scheduler {args.scheduler} needs --backend dask; got --backend {args.backend}")


def load_model(path: Path, builder: bool = False) -> Any:
    """The bundle at ``path``, verified against ``RISKSCORE_BUNDLE_KEY`` when set; with ``builder``, one that has it."""
    from riskscore.model import RiskModel

    model = RiskModel.load(path, key=bundle_key())
    if builder and model.builder_ is None:
        raise ValueError("the bundle carries no FeatureBuilder: train it with riskscore train or fit(..., builder=)")
    return model


def bundle_key() -> str | None:
    """The bundle signing key from the environment (``RISKSCORE_BUNDLE_KEY``), if set."""
    import os

    from riskscore.model.bundle import KEY_ENV

    return os.environ.get(KEY_ENV) or None


def version() -> str:
    """The installed riskscore version."""
    from riskscore._version import __version__

    return __version__
