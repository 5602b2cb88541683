"""Issue #17: the command line, driven with malformed values and corrupted files, always fails closed.

Every case must give exit code 2, exactly one error line on standard error naming
the option or the file (besides the progress lines of the steps begun), no
traceback, and no output that looks complete.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
import shutil
import string
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import riskscore as rs
from riskscore.cli import main

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


PROGRESS = re.compile(r"riskscore \w+ \[ *[0-9.]+ s\]: ")  # a step begun, before the error


def run(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in this process: exit code, stdout, stderr (argparse's exits included)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code) if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def assert_refused(argv: list[str], names: str, out: Path | None = None) -> str:
    code, _, err = run(argv)
    lines = [line for line in err.strip().splitlines() if not PROGRESS.match(line)]
    assert code == 2, (argv, code, err)
    assert len(lines) == 1, (argv, err)
    assert "Traceback" not in err and names in lines[0], (argv, names, err)
    if out is not None:
        assert not (out / "_SUCCESS").exists() and not list(out.glob("part-*.parquet")), argv
    return lines[0]


# ------------------------------------------------------------------------------------- malformed option values

LETTERS = st.text(alphabet=string.ascii_letters + " -_/", min_size=1, max_size=12).filter(
    lambda t: t.strip().lower() not in ("today", "now", "tomorrow", "yesterday")
)
NOT_WHOLE = st.one_of(LETTERS, st.floats(allow_nan=True).map(lambda f: f"{f}x"), st.just("1.5"), st.just(""))
BAD = {
    "--as-of": st.one_of(LETTERS, st.sampled_from(["2024-13-01", "2024-12-01 10:00", "2024-12-01T00:00+01:00", ""])),
    "--start": st.one_of(LETTERS, st.sampled_from(["2024-02-30", "1e9", "2024-06-01 12:00"])),
    "--end": st.one_of(LETTERS, st.sampled_from(["99999-01-01", "2024-06-01T01:00"])),
    "--chunk-size": st.one_of(NOT_WHOLE, st.integers(max_value=0).map(str)),
    "--jobs": st.one_of(NOT_WHOLE, st.integers(max_value=-2).map(str), st.just("0")),
    "--horizon": st.one_of(LETTERS, st.sampled_from(["0D", "-30D", "1.5D", "12h", "90"])),
    "--dpd": st.one_of(NOT_WHOLE, st.integers(max_value=0).map(str)),
    "--now": st.one_of(LETTERS, st.sampled_from(["2024-12-02T09:00", "next tuesday", "2024-12-02"])),
    "--capacity": st.one_of(
        LETTERS.filter(lambda t: "=" not in t),
        st.sampled_from(["call=5,call=7", "call=-1", "call=x", "=5", "call=5,", "call=1.5", "call=５"]),
    ),
    "--control-share": st.one_of(LETTERS, st.sampled_from(["1", "-0.1", "nan", "inf", "1.5"])),
    "--seed": NOT_WHOLE,
}
COMMANDS: dict[str, list[str]] = {
    "score": ["score", "--model", "m", "--data", "d", "--as-of", "2024-12-01", "--out", "o"],
    "train": ["train", "--data", "d", "--start", "2023-06-01", "--end", "2024-06-01", "--out", "b"],
    "recommend": [
        "recommend",
        "--model",
        "m",
        "--data",
        "d",
        "--as-of",
        "2024-12-01",
        "--policy",
        "cn-2026",
        "--now",
        "2024-12-02T09:00+08:00",
        "--out",
        "r.parquet",
    ],
    "explain": ["explain", "--model", "m", "--data", "d", "--account", "1", "--as-of", "2024-12-01"],
    "report": ["report", "--model", "m", "--data", "d", "--out", "r.html"],
}
OPTIONS = [
    (command, option)
    for command, option in [
        ("score", "--as-of"), ("score", "--chunk-size"), ("score", "--jobs"), ("score", "--now"),
        ("score", "--capacity"), ("train", "--start"), ("train", "--end"), ("train", "--horizon"), ("train", "--dpd"),
        ("recommend", "--as-of"), ("recommend", "--now"), ("recommend", "--capacity"),
        ("recommend", "--control-share"), ("recommend", "--seed"), ("explain", "--as-of"), ("report", "--start"),
        ("report", "--end"),
    ]
]  # fmt: skip


def with_option(command: str, option: str, value: str) -> list[str]:
    """The command's arguments with ``option`` given as ``--option=value`` (so a value may start with "-")."""
    argv = list(COMMANDS[command])
    if option in argv:
        i = argv.index(option)
        del argv[i : i + 2]
    return [*argv, f"{option}={value}"]


@pytest.mark.parametrize(("command", "option"), OPTIONS, ids=[f"{c}{o}" for c, o in OPTIONS])
@FAST
@given(data=st.data())
def test_a_malformed_option_value_is_refused_naming_the_option(command: str, option: str, data: Any) -> None:
    assert_refused(with_option(command, option, data.draw(BAD[option])), f"argument {option}")


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["recommend", *COMMANDS["recommend"][1:-1], "r.csv"], "argument --out: must be a .parquet file"),
        (["report", "--model", "m", "--data", "d", "--out", "."], "argument --out"),
        (
            ["explain", *COMMANDS["explain"][1:], "--plot", "why.jpg"],
            "argument --plot: must be a .png, .svg or .pdf file",
        ),
        (["recommend", *COMMANDS["recommend"][1:], "--events-timezone", "Mars/Olympus"], "argument --events-timezone"),
        (["recommend", *COMMANDS["recommend"][1:], "--lender-name", " "], "argument --lender-name: must be non-empty"),
        (["score", *COMMANDS["score"][1:], "--lender-name", "Acme"], "--lender-name set the outreach of --policy"),
        (["score", *COMMANDS["score"][1:], "--explain", "some"], "argument --explain: invalid choice"),
        (["score", *COMMANDS["score"][1:], "--lang", "fr"], "argument --lang: invalid choice"),
        (["score", *COMMANDS["score"][1:], "--backend", "spark"], "argument --backend: invalid choice"),
        (["score", "--model", "m"], "the following arguments are required"),
        (["score", *COMMANDS["score"][1:-1], "README.md"], "argument --out: must be a folder"),
        (["score", *COMMANDS["score"][1:], "--scheduler", "tcp://x:8786"], "--scheduler tcp://x:8786 needs --backend"),
        (["score", *COMMANDS["score"][1:], "--capacity", "call=5"], "give --policy too"),
        (
            [
                "recommend",
                *COMMANDS["recommend"][1:5],
                "--as-of",
                "2024-12-01",
                "--policy",
                "no-such-policy",
                "--now",
                "2024-12-02T09:00+08:00",
                "--out",
                "r.parquet",
            ],
            "m",
        ),
        (["demo", "--out", "README.md"], "argument --out: must be a folder"),
        (["train", *COMMANDS["train"][1:-1], "pyproject.toml"], "argument --out: must be a folder"),
        (["score", *COMMANDS["score"][1:], "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_other_bad_options_are_refused_on_one_line(argv: list[str], names: str) -> None:
    assert_refused(argv, names)


# ----------------------------------------------------------------------------------------- corrupted input files


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, sample_model: tuple[rs.RiskModel, pd.DataFrame]) -> dict[str, Path]:
    """A bundle with its builder (trained on the sample) and the sample as a folder."""
    root = tmp_path_factory.mktemp("cli-props")
    events = rs.datasets.load_sample()
    events.to_dir(root / "events")
    obs = rs.observation_dates(events, start="2023-06-01", end="2024-06-01")
    y = rs.make_labels(events, obs)
    builder = rs.FeatureBuilder()
    X = builder.fit_transform(events, obs)
    known = y.notna().to_numpy()
    rs.RiskModel().fit(X[known], y[known].astype(int).set_axis(X[known].index), builder=builder).save(root / "bundle")
    return {"root": root, "events": root / "events", "bundle": root / "bundle"}


def _copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def _score(setup: dict[str, Path], data: Path, out: Path, bundle: Path | None = None) -> list[str]:
    return ["score", "--model", str(bundle or setup["bundle"]), "--data", str(data), "--as-of", "2024-12-01",
            "--out", str(out), "--jobs", "1"]  # fmt: skip


TABLE = st.sampled_from(["accounts", "statements", "installments", "transactions", "contacts"])


@FAST
@given(table=TABLE, cut=st.floats(min_value=0.0, max_value=0.99), noise=st.binary(min_size=0, max_size=64))
def test_a_truncated_or_garbled_parquet_table_is_refused_naming_the_file(
    setup: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, table: str, cut: float, noise: bytes
) -> None:
    folder = _copy(setup["events"], tmp_path_factory.mktemp("bad") / "events")
    (folder / "_eventdata.json").unlink()  # as tables written by another tool: nothing records their sizes
    path = folder / f"{table}.parquet"
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * cut)] + noise)
    out = folder.parent / "out"
    assert_refused(_score(setup, folder, out), f"{table}.parquet", out)
    assert_refused(["demo", "--data", str(folder), "--out", str(folder.parent / "demo")], f"{table}.parquet")


@pytest.mark.parametrize(
    ("corrupt", "names"),
    [
        ("empty_csv", "accounts.csv"),
        ("fake_gzip", "accounts.csv.gz"),
        ("bad_metadata", "_eventdata.json"),
        ("nested_metadata", "_eventdata.json"),
        ("text_ids_in_one_table", "account_id"),
        ("huge_dpd", "statements.dpd"),
        ("dict_column", "statements.balance"),
    ],
)
def test_a_corrupted_input_folder_is_refused_naming_the_file(
    setup: dict[str, Path], tmp_path: Path, corrupt: str, names: str
) -> None:
    folder = _copy(setup["events"], tmp_path / "events")
    meta = folder / "_eventdata.json"
    if corrupt in ("empty_csv", "fake_gzip", "text_ids_in_one_table", "huge_dpd", "dict_column"):
        meta.unlink()
    if corrupt == "empty_csv":
        (folder / "accounts.parquet").unlink()
        (folder / "accounts.csv").write_bytes(b"")
    elif corrupt == "fake_gzip":
        (folder / "accounts.parquet").unlink()
        (folder / "accounts.csv.gz").write_bytes(b"account_id,open_date\n1,2024-01-01\n")
    elif corrupt == "bad_metadata":
        meta.write_text("{not json")
    elif corrupt == "nested_metadata":
        meta.write_text("[" * 100_000 + "]" * 100_000)
    elif corrupt == "text_ids_in_one_table":
        st_ = pd.read_parquet(folder / "statements.parquet")
        st_.assign(account_id=st_["account_id"].astype(str)).to_parquet(folder / "statements.parquet")
    elif corrupt == "huge_dpd":
        st_ = pd.read_parquet(folder / "statements.parquet")
        st_.assign(dpd=st_["dpd"].astype(float).where(st_.index != 3, 1e20)).to_parquet(folder / "statements.parquet")
    elif corrupt == "dict_column":
        st_ = pd.read_parquet(folder / "statements.parquet")
        st_.assign(balance=[{"amount": 1.0}] * len(st_)).to_parquet(folder / "statements.parquet")
    out = tmp_path / "out"
    if corrupt in ("huge_dpd", "dict_column"):
        # A batch run sets the accounts whose rows break the contract aside, with the reason, and scores the
        # others; loading the folder as a whole refuses it.
        argv = ["demo", "--data", str(folder), "--out", str(out)]
    else:
        argv = _score(setup, folder, out)
    line = assert_refused(argv, names, out)
    assert "unexpected error" not in line and not (out / "model").exists()


def test_a_garbled_bundle_is_refused_naming_it(setup: dict[str, Path], tmp_path: Path) -> None:
    bundle = _copy(setup["bundle"], tmp_path / "bundle")
    manifest = bundle / "manifest.json"
    manifest.write_text(json.dumps({"format": "riskscore-bundle"}))
    assert_refused(_score(setup, setup["events"], tmp_path / "out", bundle), "manifest.json")
    bundle = _copy(setup["bundle"], tmp_path / "bundle")
    (bundle / "model.txt").write_bytes(gzip.compress(b"not a model"))
    assert_refused(_score(setup, setup["events"], tmp_path / "out", bundle), "model.txt")
    assert not (tmp_path / "out").exists()
