"""score_batch: chunked, parallel, resumable scoring that never leaves a half-written output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore.errors import DataValidationError

AS_OF = "2024-12-01"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, sample_xy: dict[str, Any]) -> dict[str, Any]:
    """A model (with its builder) trained on the sample, saved; the sample written as a folder."""
    X, y, builder = sample_xy["X"], sample_xy["y"], sample_xy["builder"]
    model = rs.RiskModel().fit(X, y, builder=builder)
    root = tmp_path_factory.mktemp("batch")
    model.save(root / "bundle")
    events = sample_xy["events"]
    events.to_dir(root / "events")
    return {"model": model, "events": events, "bundle": root / "bundle", "folder": root / "events", "root": root}


def read(output: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    scores = rs.read_scores(output)
    assert scores["account_id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(scores, pd.read_parquet(output).sort_values("account_id").reset_index(drop=True))
    errors = rs.read_scores(output, errors=True).sort_values("account_id").reset_index(drop=True)
    return scores, errors


def test_output_is_the_same_whatever_the_chunks_and_workers(bundle: dict[str, Any], tmp_path: Path) -> None:
    one = rs.score_batch(bundle["bundle"], bundle["folder"], AS_OF, tmp_path / "a", chunk_size=2000, n_jobs=1)
    many = rs.score_batch(bundle["model"], bundle["events"], AS_OF, tmp_path / "b", chunk_size=333, n_jobs=2)
    assert (one.accounts, one.scored, one.errors, one.excluded) == (many.accounts, many.scored, many.errors,
                                                                    many.excluded)  # fmt: skip
    assert one.accounts == 2000 and one.scored + one.excluded == 2000 and one.scored > 1000 and one.errors == 0
    # Accounts not open or past due at as_of are excluded, with the reason: not errors.
    excluded = rs.read_scores(tmp_path / "a", excluded=True)
    assert len(excluded) == one.excluded > 0 and rs.read_scores(tmp_path / "a", errors=True).empty
    assert excluded["reason"].str.contains("past due at as_of|not open at as_of").all()
    pd.testing.assert_frame_equal(excluded, rs.read_scores(tmp_path / "b", excluded=True))
    with pytest.raises(ValueError, match="not both"):
        rs.read_scores(tmp_path / "a", errors=True, excluded=True)
    a, a_err = read(tmp_path / "a")
    b, b_err = read(tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a_err, b_err)
    # Chunks of at least 333 accounts that never split a customer.
    assert len(list((tmp_path / "b").glob("part-*.parquet"))) == many.chunks and 5 <= many.chunks <= 6
    # The same numbers as scoring in a notebook.
    model, events = bundle["model"], bundle["events"]
    obs = rs.observation_dates(events, freq="D", start=AS_OF, end=AS_OF)
    X = model.builder_.transform(events, obs)
    expected = model.score(X).reset_index()
    expected["band"] = expected["band"].astype(str)  # a text column in the parquet parts
    pd.testing.assert_frame_equal(a[["account_id", "as_of", "pd", "points", "band"]], expected, check_dtype=False)
    # Every account is scored or listed with its reason; none twice.
    everyone = set(events.accounts["account_id"])
    a_out = rs.read_scores(tmp_path / "a", excluded=True)
    assert set(a["account_id"]) | set(a_out["account_id"]) | set(a_err["account_id"]) == everyone
    assert not set(a["account_id"]) & set(a_out["account_id"]) and a_err.empty
    assert a_out["reason"].str.contains("past due at as_of|not open at as_of").all()
    done = json.loads((tmp_path / "a" / "_SUCCESS").read_text())
    assert done["accounts"] == 2000 and done["scored"] == len(a)


def test_explanations_for_the_rows_that_need_them(bundle: dict[str, Any], tmp_path: Path) -> None:
    rs.score_batch(bundle["model"], bundle["events"], AS_OF, tmp_path / "rec", n_jobs=1, lang="zh")
    rs.score_batch(bundle["model"], bundle["events"], AS_OF, tmp_path / "none", n_jobs=1, explain="none")
    rs.score_batch(bundle["model"], bundle["events"], AS_OF, tmp_path / "all", n_jobs=1, explain="all")
    rec, _ = read(tmp_path / "rec")
    contact = rec["band"].isin(["C", "D", "E", "F"])
    assert rec.loc[contact, "segment"].notna().all() and rec.loc[~contact, "segment"].isna().all()
    reasons = rec.loc[contact, "reasons"]
    assert (reasons.map(len) >= 1).mean() > 0.95 and (reasons.map(len) <= 4).all()
    first = reasons.iloc[0][0]
    assert set(first) == {"code", "text", "contribution"} and any("\u4e00" <= ch <= "\u9fff" for ch in first["text"])
    none, _ = read(tmp_path / "none")
    assert none["segment"].isna().all() and (none["reasons"].map(len) == 0).all()
    every, _ = read(tmp_path / "all")
    assert every["segment"].notna().all()
    pd.testing.assert_frame_equal(every[["pd", "band"]], none[["pd", "band"]])


def test_a_bad_account_goes_to_errors_and_a_bad_table_stops_at_once(bundle: dict[str, Any], tmp_path: Path) -> None:
    events = bundle["events"]
    statements = events.statements.copy()
    bad = int(statements["account_id"].iloc[100])
    statements.loc[statements["account_id"] == bad, "dpd"] = -5
    folder = tmp_path / "events"
    folder.mkdir()
    for name, df in {**events.tables, "statements": statements}.items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    result = rs.score_batch(bundle["bundle"], folder, AS_OF, tmp_path / "out", chunk_size=500, n_jobs=1)
    scores, errors = read(tmp_path / "out")
    assert bad not in set(scores["account_id"])
    reason = errors.loc[errors["account_id"] == bad, "reason"].iloc[0]
    assert "statements.dpd" in reason and "must be >= 0" in reason
    assert result.scored + result.errors + result.excluded == 2000
    # The customer's other accounts are set aside with it (their features read it), with the same reason.
    customer = events.customers
    kin = set(customer.index[customer == customer[bad]].tolist())
    assert len(kin) > 1 and kin <= set(errors["account_id"])
    assert (errors.loc[errors["account_id"].isin(kin), "reason"] == reason).all()
    # The other accounts of that chunk are scored as if nothing happened.
    clean, _ = read(_clean_run(bundle, tmp_path))
    pd.testing.assert_frame_equal(scores, clean[~clean["account_id"].isin(kin)].reset_index(drop=True))
    # A missing column stops the run before any work, naming table and column.
    events.accounts.drop(columns=["credit_limit"]).to_parquet(folder / "accounts.parquet", index=False)
    with pytest.raises(DataValidationError, match=r"accounts.credit_limit: required column is missing"):
        rs.score_batch(bundle["bundle"], folder, AS_OF, tmp_path / "never", n_jobs=1)
    assert not (tmp_path / "never").exists()


def _clean_run(bundle: dict[str, Any], tmp_path: Path) -> Path:
    out = tmp_path / "clean"
    if not (out / "_SUCCESS").exists():
        rs.score_batch(bundle["bundle"], bundle["folder"], AS_OF, out, chunk_size=500, n_jobs=1)
    return out


def test_resume_rules(bundle: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, chunk_size=700, n_jobs=1)
    again = rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, chunk_size=700, n_jobs=1)
    assert again.scored == first.scored  # a finished run: nothing redone, same result
    with pytest.raises(FileExistsError, match="chunk_size differ"):
        rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, chunk_size=500, n_jobs=1)
    with pytest.raises(FileExistsError, match="holds a run already"):
        rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, chunk_size=700, resume=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match="holds other files"):
        rs.score_batch(bundle["model"], bundle["events"], AS_OF, tmp_path / "other")
    with pytest.raises(ValueError, match="explain must be one of"):
        rs.score_batch(bundle["model"], bundle["events"], AS_OF, tmp_path / "x", explain="some")
    with pytest.raises(ValueError, match="chunk_size must be a whole number"):
        rs.score_batch(bundle["model"], bundle["events"], AS_OF, tmp_path / "x", chunk_size=0)


def _score_command(bundle: dict[str, Any], out: Path, chunk_size: int, jobs: int) -> list[str]:
    """``riskscore score`` of the test bundle on the sample folder, as a subprocess command."""
    return [
        sys.executable, "-m", "riskscore", "score", "--model", str(bundle["bundle"]), "--data", str(bundle["folder"]),
        "--as-of", AS_OF, "--out", str(out), "--chunk-size", str(chunk_size), "--jobs", str(jobs),
    ]  # fmt: skip


def test_killed_run_resumes_to_the_uninterrupted_result(bundle: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "killed"
    command = _score_command(bundle, out, chunk_size=50, jobs=1)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "_manifest.json"
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists():
            try:
                done = len(json.loads(manifest.read_text())["done"])
            except (json.JSONDecodeError, KeyError):  # replaced while reading: read again
                done = 0
            if done >= 3:
                break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= done < 40 and not (out / "_SUCCESS").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "_SUCCESS").exists()
    scores, errors = read(out)
    clean, clean_errors = read(_clean_run(bundle, tmp_path))
    pd.testing.assert_frame_equal(scores, clean)
    pd.testing.assert_frame_equal(errors, clean_errors)
    assert not list(out.rglob("*.tmp"))
    assert scores["account_id"].is_unique and len(list(out.glob("part-*.parquet"))) == 40
    assert np.isfinite(scores["pd"]).all()


def test_relative_output_after_a_change_of_directory(
    bundle: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes started earlier keep their own working directory: paths must not depend on it."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    rs.score_batch(bundle["bundle"], bundle["folder"], AS_OF, "scores", chunk_size=500, n_jobs=2)
    monkeypatch.chdir(tmp_path / "two")
    result = rs.score_batch(bundle["bundle"], bundle["folder"], AS_OF, "scores", chunk_size=500, n_jobs=2)
    assert (
        result.output == (tmp_path / "two" / "scores").resolve() and (tmp_path / "two" / "scores" / "_SUCCESS").exists()
    )
    assert len(list((tmp_path / "two" / "scores").glob("part-*.parquet"))) == 4


NOW = pd.Timestamp("2024-12-03 10:00", tz="America/New_York")
CAPACITY = {"call": 20, "sms": 150, "human_review": 5}


def test_outreach_in_batch_equals_recommend_for_the_whole_book(bundle: dict[str, Any], tmp_path: Path) -> None:
    kw: dict[str, Any] = {"policy": "us-regf", "capacity": CAPACITY, "now": NOW}
    rs.score_batch(bundle["model"], bundle["events"], AS_OF, tmp_path / "one", chunk_size=2000, n_jobs=1, **kw)
    rs.score_batch(bundle["bundle"], bundle["folder"], AS_OF, tmp_path / "many", chunk_size=300, n_jobs=2, **kw)
    one, _ = read(tmp_path / "one")
    many, _ = read(tmp_path / "many")
    pd.testing.assert_frame_equal(one, many)
    # The same decisions recommend() makes in memory for the whole book.
    model, events = bundle["model"], bundle["events"]
    obs = rs.observation_dates(events, freq="D", start=AS_OF, end=AS_OF)
    X = model.builder_.transform(events, obs)
    scores = model.score(X)
    need = scores["band"].isin(["C", "D", "E", "F"]).to_numpy()
    recs = rs.recommend(scores, model.explain(X[need]), events, "us-regf", now=NOW, capacity=CAPACITY)
    recs = recs.sort_values("account_id").reset_index(drop=True)
    for col in ("account_id", "action", "channel", "message", "control", "expected_benefit", "model_version"):
        assert recs[col].tolist() == one[col].tolist(), col
    pd.testing.assert_series_equal(recs["send_after"], one["send_after"], check_names=False)
    offers = one["offer"].map(lambda o: None if o is None else dict(o))
    assert offers.tolist() == recs["offer"].tolist()
    # Capacity counts contacts: one per customer, whatever its number of accounts.
    contacts = one[one["contact_id"] != ""].drop_duplicates("contact_id")
    assert len(contacts) < (one["contact_id"] != "").sum()  # some contacts concern several accounts
    for key, cap in CAPACITY.items():
        used = (
            (contacts["action"] == "human_review").sum()
            if key == "human_review"
            else (contacts["channel"] == key).sum()
        )
        assert used <= cap
    assert (contacts["channel"] == "call").sum() == CAPACITY["call"]


def test_a_book_wide_allocation_holds_or_reuses_a_held_out_contact_as_recommend_does(
    bundle: dict[str, Any], tmp_path: Path
) -> None:
    model, events = bundle["model"], bundle["events"]
    obs = rs.observation_dates(events, freq="D", start=AS_OF, end=AS_OF)
    X = model.builder_.transform(events, obs)
    scores = model.score(X)
    expl = model.explain(X[scores["band"].isin(["C", "D", "E", "F"]).to_numpy()])
    calls = {}
    for how in ("hold", "reuse"):
        kw: dict[str, Any] = {"policy": "us-regf", "capacity": CAPACITY, "now": NOW, "control_share": 0.3}
        rs.score_batch(model, events, AS_OF, tmp_path / how, chunk_size=700, n_jobs=1, control_capacity=how, **kw)
        out, _ = read(tmp_path / how)
        recs = rs.recommend(scores, expl, events, "us-regf", now=NOW, capacity=CAPACITY, control_share=0.3,
                            control_capacity=how).sort_values("account_id").reset_index(drop=True)  # fmt: skip
        for col in ("account_id", "action", "channel", "control", "treatment"):
            assert recs[col].tolist() == out[col].tolist(), (how, col)
        calls[how] = out.loc[out["contact_id"] != ""].drop_duplicates("contact_id")["channel"].eq("call").sum()
    assert calls["hold"] < calls["reuse"] == CAPACITY["call"]


def test_outreach_second_pass_resumes(bundle: dict[str, Any], tmp_path: Path) -> None:
    kw: dict[str, Any] = {"policy": "cn-2026", "capacity": CAPACITY, "now": NOW, "n_jobs": 1, "chunk_size": 400}
    out = tmp_path / "out"
    rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, **kw)
    before, _ = read(out)
    # As if killed during the second pass: two parts gone, not recorded as final, no _SUCCESS.
    manifest = json.loads((out / "_manifest.json").read_text())
    for k in ("1", "3"):
        (out / f"part-0000{k}.parquet").unlink()
        manifest["done"][k].pop("final")
    (out / "_manifest.json").write_text(json.dumps(manifest))
    (out / "_SUCCESS").unlink()
    rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, **kw)
    after, _ = read(out)
    pd.testing.assert_frame_equal(before, after)
    assert (out / "_SUCCESS").exists()
    with pytest.raises(ValueError, match="explain='none' cannot go with a policy"):
        rs.score_batch(bundle["model"], bundle["events"], AS_OF, tmp_path / "x", explain="none", policy="cn-2026")


def test_customers_straddling_every_chunk_boundary_score_the_same_on_every_backend(
    bundle: dict[str, Any], tmp_path: Path
) -> None:
    """Issue #13 acceptance: chunk sizes 1,000 and 50,000 and Dask agree, customers straddling each boundary."""
    import distributed  # in the test extra: CI runs this test

    events, _ = rs.datasets.make_portfolio(n_accounts=5000, months=24, seed=11)
    ids = np.sort(events.accounts["account_id"].to_numpy())
    customer = events.customers
    for cut in ids[1000::1000]:  # every boundary of chunks of 1,000 consecutive ids
        below = set(customer[customer.index < cut])
        assert below & set(customer[customer.index >= cut]), cut  # some customer on both sides
    folder = tmp_path / "events"
    events.to_dir(folder)
    kw: dict[str, Any] = {"policy": "us-regf", "capacity": CAPACITY, "now": NOW}
    small = rs.score_batch(bundle["bundle"], folder, AS_OF, tmp_path / "small", chunk_size=1000, n_jobs=2, **kw)
    whole = rs.score_batch(bundle["model"], events, AS_OF, tmp_path / "whole", chunk_size=50_000, n_jobs=1, **kw)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = rs.score_batch(
            bundle["bundle"], folder, AS_OF, tmp_path / "dask", chunk_size=1000, backend="dask", client=client, **kw
        )
    assert small.chunks == on_dask.chunks == 5 and whole.chunks == 1
    a, a_err = read(tmp_path / "small")
    for other in ("whole", "dask"):
        b, b_err = read(tmp_path / other)
        pd.testing.assert_frame_equal(a, b)
        pd.testing.assert_frame_equal(a_err, b_err)
    # The customer features are in use and a customer's accounts share one decision.
    assert (a.groupby("customer_id")[["action", "channel", "contact_id"]].nunique() == 1).all().all()
    assert a["customer_id"].nunique() < len(a) and (a["contact_id"] != "").sum() > 100


def test_chunks_with_nothing_to_score_are_written_with_the_part_schema(bundle: dict[str, Any], tmp_path: Path) -> None:
    """Issue #17, item 10: an empty chunk used to write as_of as float and crash the run on every resume."""
    events = bundle["events"]
    ids = events.accounts["account_id"].head(6).tolist()
    tables = {k: v[v["account_id"].isin(ids)] for k, v in events.tables.items()}
    tables["accounts"] = pd.concat(  # and an account with no events at all
        [tables["accounts"], tables["accounts"].tail(1).assign(account_id=10**9, open_date=pd.Timestamp("2024-11-20"))]
    )
    few = rs.EventData(**tables, protected=events.protected)
    early = tmp_path / "early"
    result = rs.score_batch(bundle["model"], few, "2000-01-01", early, chunk_size=1, n_jobs=1)
    assert (result.scored, result.excluded, result.errors) == (0, 7, 0)
    scores = pd.read_parquet(early)
    assert scores.empty and str(scores["as_of"].dtype) == "datetime64[ns]"
    assert rs.score_batch(bundle["model"], few, "2000-01-01", early, chunk_size=1, n_jobs=1).excluded == 7
    now = pd.Timestamp("2024-12-02 10:00", tz="Asia/Shanghai")
    one_by_one = rs.score_batch(bundle["model"], few, AS_OF, tmp_path / "each", chunk_size=1, policy="cn-2026", now=now)
    whole = rs.score_batch(bundle["model"], few, AS_OF, tmp_path / "whole", chunk_size=100, policy="cn-2026", now=now)
    assert one_by_one.scored == whole.scored and one_by_one.excluded == whole.excluded >= 1  # a chunk of one
    pd.testing.assert_frame_equal(read(tmp_path / "each")[0], read(tmp_path / "whole")[0])


# ----------------------------------------------- issue #17, items 8, 9 and 11: batch runs that cannot lie


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_a_second_run_into_a_folder_in_use_is_refused(bundle: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom pathlib import Path\nfrom riskscore.batch.manifest import output_lock\n"
         "with output_lock(Path(sys.argv[1])):\n    print('locked', flush=True)\n    time.sleep(60)\n", str(out)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(rs.BatchOutputError, match=rf"being written by another run \(pid {holder.pid}, started"):
            rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, chunk_size=1000, n_jobs=1)
        assert not (out / "_manifest.json").exists()  # refused before writing anything
    finally:
        holder.kill()
        holder.wait()
    # The lock dies with its holder (also kill -9): the folder is usable at once.
    result = rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, chunk_size=1000, n_jobs=1)
    assert result.scored + result.errors + result.excluded == 2000


def test_a_file_or_a_folder_of_other_files_is_refused_before_anything_is_written(
    bundle: dict[str, Any], tmp_path: Path
) -> None:
    target = tmp_path / "a-file"
    target.write_text("mine")
    with pytest.raises(FileExistsError, match="is a file"):
        rs.score_batch(bundle["model"], bundle["events"], AS_OF, target, n_jobs=1)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match="holds other files"):
        rs.score_batch(bundle["model"], bundle["events"], AS_OF, mine, n_jobs=1)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_a_resume_after_the_event_data_changed_is_refused(bundle: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "events"
    events = bundle["events"]
    events.to_dir(folder)
    out = tmp_path / "scores"
    rs.score_batch(bundle["model"], folder, AS_OF, out, chunk_size=1000, n_jobs=1)
    statements = events.statements.copy()
    statements.loc[statements.index[-1], "payment"] += 1.0  # one payment, one cent of difference is enough
    changed = rs.EventData(**{**events.tables, "statements": statements}, protected=events.protected)
    changed.to_dir(folder, overwrite=True)
    with pytest.raises(FileExistsError, match=r"\(inputs differ\): the event data changed since that run started"):
        rs.score_batch(bundle["model"], folder, AS_OF, out, chunk_size=1000, n_jobs=1)
    # The same for data in memory.
    rs.score_batch(bundle["model"], events, AS_OF, tmp_path / "mem2", chunk_size=1000, n_jobs=1)
    with pytest.raises(FileExistsError, match=r"inputs differ"):
        rs.score_batch(bundle["model"], changed, AS_OF, tmp_path / "mem2", chunk_size=1000, n_jobs=1)


def test_an_unfinished_output_cannot_be_read_as_complete(
    bundle: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import riskscore.batch.run as run_module

    out = tmp_path / "crashed"
    real = run_module.finish

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_module, "finish", crash)
    with pytest.raises(OSError, match="No space left"):
        rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, chunk_size=500, n_jobs=1)
    assert (out / "INCOMPLETE").exists() and not list(out.glob("part-*.parquet"))
    with pytest.raises(Exception, match="INCOMPLETE"):  # the README's pandas way fails loudly, naming the mark
        pd.read_parquet(out)
    with pytest.raises(rs.BatchOutputError, match="is not complete"):
        rs.read_scores(out)
    monkeypatch.setattr(run_module, "finish", real)
    rs.score_batch(bundle["model"], bundle["events"], AS_OF, out, chunk_size=500, n_jobs=1)
    scores, _ = read(out)
    assert not (out / "INCOMPLETE").exists() and len(scores) > 1000
    # Tampering after the run: a part removed, an extra part, a corrupt part.
    part = out / "part-00001.parquet"
    kept = part.read_bytes()
    part.unlink()
    with pytest.raises(rs.BatchOutputError, match=r"missing \['part-00001.parquet'\]"):
        rs.read_scores(out)
    part.write_bytes(kept[: len(kept) // 2])
    with pytest.raises(rs.BatchOutputError, match=r"part-00001\.parquet: must be a parquet file riskscore wrote"):
        rs.read_scores(out)
    part.write_bytes(kept)
    (out / "part-00009.parquet").write_bytes(kept)
    with pytest.raises(rs.BatchOutputError, match=r"not of this run \['part-00009.parquet'\]"):
        rs.read_scores(out)


@pytest.mark.skipif(sys.platform != "linux", reason="finds the worker processes in /proc")
def test_killing_a_parallel_run_ends_its_workers(bundle: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "killed"
    command = _score_command(bundle, out, chunk_size=20, jobs=2)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / ".stage").glob("errors-*.parquet"))) >= 2:
            workers = _children(proc.pid)
            break
        time.sleep(0.02)
    assert proc.poll() is None and workers, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.2)
    left = [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text()]
    assert not left, f"workers {left} outlived the killed run"
    resumed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert len(read(out)[0]) > 1000


def test_a_customers_flag_holds_in_every_chunk(bundle: dict[str, Any], tmp_path: Path) -> None:
    """Issue #13: a cease on one account of a customer stops outreach on the others, whichever chunk they are in."""
    events = bundle["events"]
    accounts = events.accounts
    ids = accounts["account_id"].to_numpy()
    # Customers of two accounts far apart in id order (never in one chunk of 100), in one time zone.
    zone = accounts["timezone"].astype(object).fillna("none").to_numpy()
    customer = np.empty(len(ids), dtype=object)
    for z in np.unique(zone):
        members = np.flatnonzero(zone == z)
        half = (len(members) + 1) // 2
        for k, i in enumerate(members):
            customer[i] = f"{z}-{k % half}"
    cease = np.zeros(len(ids), dtype=bool)
    first_of = pd.Series(np.arange(len(ids))).groupby(customer).transform("min").to_numpy()
    firsts = np.flatnonzero(first_of == np.arange(len(ids)))  # the flag sits on one account of each customer
    cease[firsts[np.random.default_rng(3).random(len(firsts)) < 0.3]] = True
    assert cease.any()
    flagged = rs.EventData(
        **{**events.tables, "accounts": accounts.assign(customer_id=customer, cease=cease)}, protected=events.protected
    )
    kw: dict[str, Any] = {"policy": "us-regf", "capacity": CAPACITY, "now": NOW, "n_jobs": 1}
    rs.score_batch(bundle["model"], flagged, AS_OF, tmp_path / "small", chunk_size=100, **kw)
    rs.score_batch(bundle["model"], flagged, AS_OF, tmp_path / "whole", chunk_size=5000, **kw)
    small, _ = read(tmp_path / "small")
    pd.testing.assert_frame_equal(small, read(tmp_path / "whole")[0])
    ceased = set(pd.Series(customer[cease]))
    of_ceased = small["account_id"].map(dict(zip(ids, customer, strict=True))).isin(ceased)
    assert of_ceased.sum() > int(cease.sum())  # the customers' other accounts are scored too
    assert (small.loc[of_ceased, "action"] == "none").all()
    assert (small.loc[~of_ceased, "action"] != "none").any()


def test_tables_stored_as_folders_of_parts_score_from_the_command_line(bundle: dict[str, Any], tmp_path: Path) -> None:
    """A book written by another tool, one folder of parquet parts per table (the batch benchmark's layout)."""
    from riskscore.cli import main

    parts = tmp_path / "parts"
    parts.mkdir()
    for name, df in bundle["events"].tables.items():
        folder = parts / f"{name}.parquet"
        folder.mkdir()
        half = len(df) // 2
        df.iloc[:half].to_parquet(folder / "part-0.parquet", index=False)
        df.iloc[half:].to_parquet(folder / "part-1.parquet", index=False)
    (parts / "_eventdata.json").write_text(json.dumps({"protected": list(bundle["events"].protected)}))
    out = tmp_path / "scores"
    code = main(["score", "--model", str(bundle["bundle"]), "--data", str(parts), "--as-of", AS_OF, "--out", str(out),
                 "--jobs", "1", "--chunk-size", "1000"])  # fmt: skip
    assert code == 0
    clean, _ = read(_clean_run(bundle, tmp_path))
    pd.testing.assert_frame_equal(read(out)[0], clean)
