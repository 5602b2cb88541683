"""The command line: version, demo, exit codes and error messages."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import riskscore as rs
from riskscore.cli import EXIT_INVALID, EXIT_OK, main
from tests.conftest import tiny_tables


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"riskscore {rs.__version__}"


def test_demo_summarises_the_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "bundled sample, 2,000 accounts, all tables valid" in out
    summary = pd.read_csv(tmp_path / "summary.csv", index_col="table")
    expected = rs.datasets.load_sample().summary()  # type: ignore[union-attr]
    assert summary["rows"].to_dict() == expected["rows"].to_dict()
    assert list(summary.index) == ["accounts", "statements", "installments", "transactions", "contacts"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.jsonl",
        "evaluation.csv",
        "features.parquet",
        "model",
        "recommendations.parquet",
        "scores.parquet",
        "summary.csv",
    ]
    model = rs.RiskModel.load(tmp_path / "model")
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert list(scores.columns) == ["pd", "points", "band"] and len(scores) > 1000
    evaluation = pd.read_csv(tmp_path / "evaluation.csv", index_col=0)
    auc = evaluation.loc["all", "auc"]
    assert 0.7 < auc < 0.95 and f"AUC {auc:.3f}" in out
    assert model.builder_ is not None
    table = pd.read_parquet(tmp_path / "features.parquet")
    assert table.index.names == ["account_id", "as_of"]
    assert "dpd30_90d" in table.columns and "stmt_dpd_max_90d" in table.columns
    rate = table["dpd30_90d"].mean()
    assert f"({rate:.1%}); " in out
    # Outreach under us-regf, the profile of the sample's (US) zones: within the demo's capacity, English messages.
    recs = pd.read_parquet(tmp_path / "recommendations.parquet")
    assert len(recs) == len(scores) and set(recs["policy_version"]) == {"us-regf.1"}
    contacts = recs[recs["contact_id"] != ""].drop_duplicates("contact_id")  # capacity counts contacts
    assert (contacts["channel"] == "call").sum() <= 25 and (contacts["channel"] == "sms").sum() <= 250
    contacted = recs[recs["action"] != "none"]
    electronic = contacted["channel"].isin(["sms", "app", "email"])
    assert len(contacted) > 100 and contacted.loc[electronic, "message"].str.contains("Reply STOP").all()
    assert contacted.loc[contacted["channel"] == "call", "message"].str.startswith("Call script").all()
    assert not recs["message"].str.contains("¥").any() and recs["message"].str.contains(r"\$").any()
    assert recs["model_version"].iat[0] == model.version_
    assert "outreach under us-regf" in out and " EST" in out
    # The summary counts contacts, as capacity does, beside the accounts they concern.
    assert "contacts  accounts" in out
    audit = list(rs.outreach.read_audit(tmp_path / "audit.jsonl"))
    assert len(audit) == len(recs)


def test_demo_on_invalid_data_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tables = tiny_tables()
    tables["statements"].loc[0, "dpd"] = -4
    data = tmp_path / "events"
    data.mkdir()
    for name, df in tables.items():
        df.to_csv(data / f"{name}.csv", index=False)
    code = main(["demo", "--data", str(data), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == EXIT_INVALID
    assert "statements.dpd: must be >= 0; got -4" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        main(["--debug", "demo", "--data", str(tmp_path / "missing")])


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_INVALID
    assert "demo" in capsys.readouterr().out


def test_console_script_is_installed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "riskscore.cli", "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "summary.csv").exists()


def problems(stderr: str) -> list[str]:
    """The lines of standard error that are not progress lines (``riskscore <command> [  1.2 s]: ...``)."""
    return [line for line in stderr.strip().splitlines() if not re.match(r"riskscore \w+ \[ *[0-9.]+ s\]: ", line)]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "riskscore", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample as an event folder, and a bundle trained on it by `riskscore train`."""
    root = tmp_path_factory.mktemp("cli")
    rs.datasets.load_sample().to_dir(root / "events")  # type: ignore[union-attr]
    done = run("train", "--data", str(root / "events"), "--start", "2023-06-01", "--end", "2024-06-01",
               "--out", str(root / "bundle"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    (root / "train.out").write_text(done.stdout)
    (root / "train.err").write_text(done.stderr)
    return root


def test_train_score_and_explain_from_the_command_line(folder: Path) -> None:
    events, bundle, out = folder / "events", folder / "bundle", folder / "scores"
    trained = (folder / "train.out").read_text()
    assert "trained on" in trained and "hold-out AUC" in trained
    model = rs.RiskModel.load(bundle)
    assert model.builder_ is not None and model.version_ in trained
    again = run("train", "--data", str(events), "--start", "2023-06-01", "--end", "2024-06-01", "--out", str(bundle))
    assert again.returncode == 2 and "give --overwrite" in again.stderr and "Traceback" not in again.stderr

    done = run("score", "--model", str(bundle), "--data", str(events), "--as-of", "2024-12-01", "--out", str(out),
               "--chunk-size", "700", "--jobs", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2,000 accounts:" in done.stdout and "not open or not current (_excluded.parquet), 0 invalid" in done.stdout
    assert (out / "_SUCCESS").exists() and len(pd.read_parquet(out)) > 1000
    # Invalid accounts above --max-error-share: the output is complete, the command fails with one line.
    broken = folder / "broken"
    shutil.copytree(events, broken)
    statements = pd.read_parquet(broken / "statements.parquet")
    few = statements["account_id"].drop_duplicates().head(30)
    statements.loc[statements["account_id"].isin(few), "dpd"] = -1
    statements.to_parquet(broken / "statements.parquet", index=False)
    (broken / "_eventdata.json").unlink(missing_ok=True)
    failed = run("score", "--model", str(bundle), "--data", str(broken), "--as-of", "2024-12-01", "--out",
                 str(folder / "scores-broken"), "--jobs", "1")  # fmt: skip
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "more than --max-error-share 1.0%: see _errors.parquet" in failed.stderr
    assert (folder / "scores-broken" / "_SUCCESS").exists()
    tolerant = run("score", "--model", str(bundle), "--data", str(broken), "--as-of", "2024-12-01", "--out",
                   str(folder / "scores-tolerant"), "--jobs", "1", "--max-error-share", "0.05")  # fmt: skip
    assert tolerant.returncode == 0, tolerant.stderr

    done = run("score", "--model", str(bundle), "--data", str(events), "--as-of", "2024-12-01", "--out",
               str(folder / "outreach"), "--jobs", "1", "--policy", "cn-2026", "--capacity", "call=10,sms=100",
               "--now", "2024-12-03T10:00-05:00")  # fmt: skip
    assert done.returncode == 0, done.stderr
    recs = pd.read_parquet(folder / "outreach")
    contacts = recs[recs["contact_id"] != ""].drop_duplicates("contact_id")  # capacity counts contacts
    assert set(recs["policy_version"]) == {"cn-2026.1"} and (contacts["channel"] == "call").sum() == 10
    assert (contacts["channel"] == "sms").sum() <= 100 and (recs["action"] != "none").sum() > 100
    bad = run("score", "--model", str(bundle), "--data", str(events), "--as-of", "2024-12-01", "--out",
              str(folder / "x"), "--policy", "cn-2026", "--capacity", "call:10")  # fmt: skip
    assert bad.returncode == 2 and "argument --capacity: must be channel=count pairs" in bad.stderr

    recs_file, audit = folder / "recs.parquet", folder / "audit.jsonl"
    done = run("recommend", "--model", str(bundle), "--data", str(events), "--as-of", "2024-12-01", "--policy",
               "uk-conc", "--now", "2024-12-02T10:00-05:00", "--out", str(recs_file), "--capacity", "call=5",
               "--audit", str(audit))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "under uk-conc (uk-conc.1):" in done.stdout and "held out as control" in done.stdout
    recs = pd.read_parquet(recs_file)
    calls = recs.loc[recs["channel"] == "call", "contact_id"].nunique()  # capacity counts contacts
    assert calls == 5 and recs["message"].str.contains("moneyhelper", case=False).any()
    records = list(rs.outreach.read_audit(audit))
    assert len(records) == len(recs) and all(rs.outreach.replay(r) == r["recommendation"] for r in records[:50])
    no_now = run("recommend", "--model", str(bundle), "--data", str(events), "--as-of", "2024-12-01", "--policy",
                 "uk-conc", "--now", "2024-12-02T10:00", "--out", str(recs_file))  # fmt: skip
    assert no_now.returncode == 2 and "argument --now: must be a time-zone-aware ISO 8601 moment" in no_now.stderr

    done = run("explain", "--model", str(bundle), "--data", str(events), "--account", "100001", "--as-of",
               "2024-12-01", "--plot", str(folder / "waterfall.png"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "account 100001 at 2024-12-01: PD" in done.stdout and "segment:" in done.stdout
    assert " 1. [" in done.stdout
    assert (folder / "waterfall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    zh = run("explain", "--model", str(bundle), "--data", str(events), "--account", "100001", "--as-of",
             "2024-12-01", "--lang", "zh")  # fmt: skip
    assert zh.returncode == 0 and any("\u4e00" <= ch <= "\u9fff" for ch in zh.stdout)


def test_bad_arguments_and_bad_data_exit_2_with_one_line(folder: Path, tmp_path: Path) -> None:
    events = folder / "events"
    missing = run("score", "--model", "m", "--data", str(events), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "the following arguments are required: --as-of" in missing.stderr
    no_bundle = run("score", "--model", str(tmp_path / "nope"), "--data", str(events), "--as-of", "2024-12-01",
                    "--out", str(tmp_path / "o"))  # fmt: skip
    assert no_bundle.returncode == 2 and "Traceback" not in no_bundle.stderr
    assert len(problems(no_bundle.stderr)) == 1
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("statements", "transactions", "installments", "contacts"):
        (broken / f"{name}.parquet").write_bytes((events / f"{name}.parquet").read_bytes())
    pd.read_parquet(events / "accounts.parquet").drop(columns=["open_date"]).to_parquet(broken / "accounts.parquet")
    bad = run("score", "--model", str(folder / "bundle"), "--data", str(broken), "--as-of", "2024-12-01",
              "--out", str(tmp_path / "o2"))  # fmt: skip
    assert bad.returncode == 2 and "accounts.open_date: required column is missing" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "o2").exists()
    unknown = run("explain", "--model", str(folder / "bundle"), "--data", str(events), "--account", "999",
                  "--as-of", "2024-12-01")  # fmt: skip
    assert unknown.returncode == 2 and "account '999' is not in the accounts table" in unknown.stderr
    bad_date = run("score", "--model", str(folder / "bundle"), "--data", str(events), "--as-of", "2024-12-01 10:00",
                   "--out", str(tmp_path / "o3"))  # fmt: skip
    assert bad_date.returncode == 2 and "argument --as-of: must be a date YYYY-MM-DD" in bad_date.stderr
    for command in ("train", "score", "recommend", "explain", "report", "demo"):
        shown = run(command, "--help")
        assert shown.returncode == 0 and "usage: riskscore " + command in shown.stdout


def test_report_writes_one_html_file_whose_images_are_png(folder: Path) -> None:
    import base64
    import re

    bundle = folder / "bundle"
    out = folder / "report" / "report.html"
    done = run("report", "--model", str(bundle), "--data", str(folder / "events"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "report written to" in done.stdout
    text = out.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) >= 7
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in ("Data and target", "Samples", "Stability against the training population", "Fairness by "
                    "protected attribute", "Outreach policy in force"):  # fmt: skip
        assert heading in text
    assert "US.TIME.CONVENIENT" in text and "<b>age</b>" in text  # the sample's zones are American: us-regf
    assert "http://" not in text and "https://" not in text  # self-contained: nothing fetched


def test_lender_zone_plot_formats_and_a_swapped_model_folder(folder: Path, tmp_path: Path) -> None:
    """Issue #16, command line: flags for the lender and the events' zone, plot formats, a clear wrong-folder error."""
    events, bundle = folder / "events", folder / "bundle"
    recs_file = tmp_path / "recs.parquet"
    done = run("recommend", "--model", str(bundle), "--data", str(events), "--as-of", "2024-12-01", "--policy",
               "us-regf", "--now", "2024-12-02T10:00-05:00", "--out", str(recs_file), "--lender-name", "Acme Bank",
               "--lender-contact", "555-0100", "--events-timezone", "America/Chicago")  # fmt: skip
    assert done.returncode == 0, done.stderr
    messages = pd.read_parquet(recs_file)["message"]
    sent = messages[messages != ""]
    assert len(sent) and sent.str.contains("Acme Bank").all()
    threat = run("recommend", "--model", str(bundle), "--data", str(events), "--as-of", "2024-12-01", "--policy",
                 "us-regf", "--now", "2024-12-02T10:00-05:00", "--out", str(tmp_path / "r2.parquet"),
                 "--lender-contact", "pay or we call the police")  # fmt: skip
    assert threat.returncode == 2 and "lender contact" in threat.stderr and "US.BAN.THREAT" in threat.stderr
    assert len(problems(threat.stderr)) == 1 and not (tmp_path / "r2.parquet").exists()
    svg = tmp_path / "why.svg"
    done = run("explain", "--model", str(bundle), "--data", str(events), "--account", "100001", "--as-of",
               "2024-12-01", "--plot", str(svg))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "<svg" in svg.read_text()[:2000]
    swapped = run("score", "--model", str(events), "--data", str(bundle), "--as-of", "2024-12-01", "--out",
                  str(tmp_path / "o"))  # fmt: skip
    assert swapped.returncode == 2 and "is not a model bundle" in swapped.stderr and "swapped" in swapped.stderr


def test_an_as_of_outside_the_data_is_refused_unless_asked_for(folder: Path, tmp_path: Path) -> None:
    """Issue #16: --as-of years past the data scored the whole book silently."""
    events, bundle = folder / "events", folder / "bundle"
    late = run("score", "--model", str(bundle), "--data", str(events), "--as-of", "2030-01-01", "--out",
               str(tmp_path / "late"))  # fmt: skip
    assert late.returncode == 2 and "--as-of 2030-01-01 must be at most one target horizon (90 days)" in late.stderr
    assert "--allow-future" in late.stderr and not (tmp_path / "late").exists()
    early = run("explain", "--model", str(bundle), "--data", str(events), "--account", "100001", "--as-of",
                "2001-01-01")  # fmt: skip
    assert early.returncode == 2 and "--as-of 2001-01-01 must be after the data's first event" in early.stderr
    asked = run("score", "--model", str(bundle), "--data", str(events), "--as-of", "2030-01-01", "--out",
                str(tmp_path / "asked"), "--allow-future", "--jobs", "1")  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    recent = run("recommend", "--model", str(bundle), "--data", str(events), "--as-of", "2030-01-01", "--policy",
                 "us-regf", "--now", "2030-01-02T10:00-05:00", "--out", str(tmp_path / "r.parquet"))  # fmt: skip
    assert recent.returncode == 2 and "must be at most one target horizon" in recent.stderr


def test_the_demo_policy_follows_the_accounts_zones() -> None:
    """Issue #16: the demo wrote Chinese ¥ messages with EST times for a sample that lives in US zones."""
    import riskscore.cli_options as opt

    def accounts(*zones: str | None) -> pd.DataFrame:
        return pd.DataFrame({"account_id": range(len(zones)), "timezone": list(zones)})

    assert opt.home_zone(accounts("America/Chicago", "America/New_York", "America/New_York")) == (
        "America/New_York",
        "us-regf",
    )
    assert opt.home_zone(accounts("Asia/Shanghai", None))[1] == "cn-2026"
    assert opt.home_zone(accounts("Europe/London"))[1] == "uk-conc"
    with pytest.raises(ValueError, match=r"Asia/Tokyo, which no shipped profile covers .* give --policy"):
        opt.home_zone(accounts("Asia/Tokyo", "Asia/Tokyo", "Asia/Shanghai"))
    with pytest.raises(ValueError, match=r"needs accounts\.timezone"):
        opt.home_zone(accounts(None, None))


def test_evaluate_reports_each_sample_as_evaluate_does_on_its_rows(folder: Path, tmp_path: Path) -> None:
    """Issue #16: `evaluate` labels the training months and its out-of-time figures are those of evaluate()."""
    from riskscore.model.samples import sample_of

    events_dir, bundle = folder / "events", folder / "bundle"
    out = tmp_path / "months.csv"
    done = run("evaluate", "--model", str(bundle), "--data", str(events_dir), "--out", str(out))
    assert done.returncode == 0, done.stderr
    model = rs.RiskModel.load(bundle)
    events = rs.EventData.from_dir(events_dir)
    obs = rs.observation_dates(events)
    y = rs.make_labels(events, obs)
    known = y.notna().to_numpy()
    X = model.builder_.transform(events, obs.loc[known])
    sample = sample_of(model, X.index.get_level_values("as_of"))
    oot = sample == "out of time"
    assert oot.any() and (sample == "development").any() and (sample == "hold-out").any()
    expected = rs.evaluate(y[known][oot].astype(int), model.predict_proba(X[oot])[:, 1]).summary
    line = next(row for row in done.stdout.splitlines() if row.startswith("out of time"))
    assert f"{int(expected['n']):,}" in line and f"{expected['auc']:.3f}" in line and f"{expected['ks']:.3f}" in line
    months = pd.read_csv(out, index_col=0, parse_dates=True)
    assert set(months["sample"]) == {"before training", "development", "hold-out", "out of time"}
    assert (months.loc[months.index <= "2024-06-01", "sample"] != "out of time").all()
    assert (months.loc[months.index > "2024-06-01", "sample"] == "out of time").all()
    month = months.index[months["sample"] == "out of time"][0]
    rows = X.index.get_level_values("as_of") == month
    alone = rs.evaluate(y[known][rows].astype(int), model.predict_proba(X[rows])[:, 1]).summary
    assert months.loc[month, "auc"] == pytest.approx(alone["auc"], rel=1e-12)
    # Progress goes to standard error, line by line; --quiet silences it, the result stays on standard output.
    assert "building point-in-time features" in (folder / "train.err").read_text()
    assert "building features and scoring" in done.stderr and "building" not in done.stdout
    quiet = run("evaluate", "--model", str(bundle), "--data", str(events_dir), "--quiet")
    assert (
        quiet.returncode == 0
        and quiet.stderr == ""
        and quiet.stdout == done.stdout.replace(f"per-month table written to {out}\n", "")
    )
    both = run("evaluate", "--model", str(bundle), "--data", str(events_dir), "--quiet", "--verbose")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_monitor_compares_the_book_with_the_training_population(folder: Path) -> None:
    """Issue #16: the PSI of the PD is against the bundle's training months, rebuilt from the data."""
    events_dir, bundle = folder / "events", folder / "bundle"
    done = run("monitor", "--model", str(bundle), "--data", str(events_dir), "--as-of", "2024-10-01", "--top", "5")
    assert done.returncode == 0, done.stderr
    model = rs.RiskModel.load(bundle)
    events = rs.EventData.from_dir(events_dir)
    training = model.manifest_["training"]
    base = rs.observation_dates(events, start=training["first_as_of"], end=training["last_as_of"])
    now = rs.observation_dates(events, freq="D", start="2024-10-01", end="2024-10-01")
    value = rs.monitor.psi(model.score(model.builder_.transform(events, base))["pd"],
                           model.score(model.builder_.transform(events, now))["pd"])  # fmt: skip
    assert f"PSI of the PD: {value:.3f}" in done.stdout
    assert f"({len(base):,} observations, 2023-06-01 to 2024-06-01)" in done.stdout
    assert "the 5 features the model uses most" in done.stdout and "roll rates from 2024-09-01" in done.stdout
    early = run("monitor", "--model", str(bundle), "--data", str(events_dir), "--as-of", "2001-01-01")
    assert early.returncode == 2 and "--as-of 2001-01-01 must be after the data's first event" in early.stderr


def test_day_first_dates_in_a_batch_fail_as_the_event_data_would(folder: Path, tmp_path: Path) -> None:
    """Issue #16: a batch whose input had day-first dates exited 0 with most of the book in _errors.parquet."""
    events = rs.EventData.from_dir(folder / "events")
    keep = set(events.accounts["account_id"].head(150))
    data = tmp_path / "dayfirst"
    data.mkdir()
    for name, table in events.tables.items():
        part = table[table["account_id"].isin(keep)].copy()
        if name == "statements":
            part["statement_date"] = part["statement_date"].dt.strftime("%d/%m/%Y")
        part.to_csv(data / f"{name}.csv", index=False)
    with pytest.raises(rs.DataValidationError) as direct:
        rs.EventData.from_dir(data)
    assert "statements.statement_date: must be a date in ISO 8601 form" in str(direct.value)
    done = run("score", "--model", str(folder / "bundle"), "--data", str(data), "--as-of", "2024-12-01", "--out",
               str(tmp_path / "out"), "--jobs", "1")  # fmt: skip
    assert done.returncode == 2 and "more than --max-error-share 1.0%" in done.stderr
    assert len(problems(done.stderr)) == 1 + done.stderr.count("INFO ")  # one error line beside the chunk log
    errors = rs.read_scores(tmp_path / "out", errors=True)
    assert len(errors) and errors["reason"].str.contains("statements.statement_date: must be a date in ISO 8601").all()
