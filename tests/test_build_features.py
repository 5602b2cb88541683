"""Issue #15, item 4: the features and labels of a training grid, chunk by chunk, equal to the in-memory builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs


@pytest.fixture(scope="module")
def grid(sample_xy: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    events = sample_xy["events"]
    folder = tmp_path_factory.mktemp("features") / "events"
    events.to_dir(folder)
    obs = rs.observation_dates(events, start="2023-06-01", end="2024-06-01")
    builder = sample_xy["builder"]
    expected = builder.transform(events, obs)
    expected["label"] = rs.make_labels(events, obs).to_numpy(dtype=np.float64, na_value=np.nan)
    return {"events": events, "folder": folder, "obs": obs, "builder": builder, "expected": expected.sort_index()}


def _read(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out).set_index(["account_id", "as_of"]).sort_index()


def test_any_chunking_writes_the_in_memory_features_and_labels(grid: dict[str, Any], tmp_path: Path) -> None:
    small = rs.build_features(grid["builder"], grid["folder"], grid["obs"], tmp_path / "small", chunk_size=300,
                              n_jobs=2)  # fmt: skip
    whole = rs.build_features(grid["builder"], grid["events"], grid["obs"], tmp_path / "whole", n_jobs=1)
    assert small.chunks > 5 and whole.chunks == 1 and small.observations == whole.observations == len(grid["obs"])
    expected = grid["expected"]
    for out in ("small", "whole"):
        got = _read(tmp_path / out)
        pd.testing.assert_frame_equal(got, expected.astype(got.dtypes.to_dict()), check_index_type=False)
        assert (tmp_path / out / "_SUCCESS").exists() and not (tmp_path / out / "INCOMPLETE").exists()
    # Every part has the same schema, so a Dask or pyarrow dataset reads them as one table.
    import pyarrow.parquet as pq

    schemas = {str(pq.read_schema(p)) for p in sorted((tmp_path / "small").glob("part-*.parquet"))}
    assert len(schemas) == 1
    excluded = rs.read_scores(tmp_path / "small", excluded=True)
    assert len(excluded) == small.excluded == 2000 - grid["obs"]["account_id"].nunique()
    # Trained on the dataset, the model equals one trained on the in-memory matrix.
    known = got["label"].notna().to_numpy()
    X, y = got.drop(columns="label")[known], got["label"][known].astype(int)
    a = rs.RiskModel(n_estimators=30).fit(X, y)
    b = rs.RiskModel(n_estimators=30).fit(expected.drop(columns="label")[known], y)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_a_dask_cluster_writes_the_same_dataset(grid: dict[str, Any], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    local = rs.build_features(grid["builder"], grid["folder"], grid["obs"], tmp_path / "local", chunk_size=700,
                              n_jobs=1)  # fmt: skip
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = rs.build_features(grid["builder"], grid["folder"], grid["obs"], tmp_path / "dask", chunk_size=700,
                                    backend="dask", client=client)  # fmt: skip
    assert local.chunks == on_dask.chunks == 3
    pd.testing.assert_frame_equal(_read(tmp_path / "local"), _read(tmp_path / "dask"))


def test_a_rerun_finishes_the_same_run_and_refuses_other_inputs(grid: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = rs.build_features(grid["builder"], grid["folder"], grid["obs"], out, chunk_size=500, n_jobs=1)
    (out / "part-00001.parquet").unlink()  # a lost part: the rerun rebuilds it
    (out / "_SUCCESS").unlink()
    again = rs.build_features(grid["builder"], grid["folder"], grid["obs"], out, chunk_size=500, n_jobs=1)
    assert again.observations == first.observations
    pd.testing.assert_frame_equal(_read(out), grid["expected"].astype(_read(out).dtypes.to_dict()),
                                  check_index_type=False)  # fmt: skip
    fewer = grid["obs"].iloc[:-10]
    with pytest.raises(FileExistsError, match="observations differ"):
        rs.build_features(grid["builder"], grid["folder"], fewer, out, chunk_size=500, n_jobs=1)
    with pytest.raises(ValueError, match=r"observations name 1 account\(s\) not in the accounts table"):
        rs.build_features(grid["builder"], grid["folder"], pd.DataFrame({"account_id": [1], "as_of": ["2024-01-01"]}),
                          tmp_path / "x")  # fmt: skip
    with pytest.raises(ValueError, match="not fitted"):
        rs.build_features(rs.FeatureBuilder(), grid["folder"], grid["obs"], tmp_path / "y")


def test_the_features_command(grid: dict[str, Any], tmp_path: Path) -> None:
    import subprocess
    import sys

    model = rs.RiskModel(n_estimators=20).fit(
        grid["expected"].drop(columns="label")[grid["expected"]["label"].notna().to_numpy()],
        grid["expected"]["label"].dropna().astype(int),
        builder=grid["builder"],
    )
    model.save(tmp_path / "bundle")
    argv = [sys.executable, "-m", "riskscore", "features", "--model", str(tmp_path / "bundle"), "--data",
            str(grid["folder"]), "--start", "2023-06-01", "--end", "2024-06-01", "--out", str(tmp_path / "out"),
            "--chunk-size", "700", "--jobs", "1"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{len(grid['obs']):,} observations written" in done.stdout
    got = _read(tmp_path / "out")
    pd.testing.assert_frame_equal(got, grid["expected"].astype(got.dtypes.to_dict()), check_index_type=False)
    again = subprocess.run([*argv[:-4], "--chunk-size", "300", "--jobs", "1"], capture_output=True, text=True,
                           check=False)  # fmt: skip
    assert again.returncode == 2 and "chunk_size differ" in again.stderr and "Traceback" not in again.stderr


def test_a_span_finds_the_grid_chunk_by_chunk(grid: dict[str, Any], tmp_path: Path) -> None:
    """(start, end): the accounts current at each month start, found per chunk, so the book is never read whole."""
    run = rs.build_features(grid["builder"], grid["folder"], ("2023-06-01", "2024-06-01"), tmp_path / "span",
                            chunk_size=400, n_jobs=1)  # fmt: skip
    assert run.observations == len(grid["obs"])
    got = _read(tmp_path / "span")
    pd.testing.assert_frame_equal(got, grid["expected"].astype(got.dtypes.to_dict()), check_index_type=False)


def test_local_workers_read_their_own_rows_so_the_parent_holds_none(grid: dict[str, Any]) -> None:
    from riskscore.batch.runners import Runner
    from riskscore.batch.source import ChunkRows, Source, chunk_tables

    source = Source(grid["folder"])
    chunks = source.chunks(300)
    for k in (0, len(chunks) // 2):
        ids = chunks[k]
        deferred = Runner("local", 2, None).rows(source, ids)
        # Only the accounts' rows travel; every event table is a file for the worker to read.
        assert isinstance(deferred, ChunkRows) and set(deferred.frames) == {"accounts"}
        assert {"statements", "transactions"} <= set(deferred.files)
        read, direct = chunk_tables(deferred), source.chunk(ids)
        assert list(read) == list(direct)
        for name in direct:
            pd.testing.assert_frame_equal(read[name], direct[name])
            assert set(read[name]["account_id"]) <= set(ids.tolist())
        assert len(read["statements"]) > 0
    # In memory the parent slices the rows, as before.
    in_memory = Runner("local", 2, None).rows(Source(grid["events"]), chunks[0])
    assert isinstance(in_memory, dict) and len(in_memory["statements"]) > 0


def test_a_folder_named_relative_to_the_caller_is_read_by_workers_started_elsewhere(
    grid: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reused worker process keeps the directory it started in: the rows it is sent name absolute files.
    from riskscore.batch.runners import Runner
    from riskscore.batch.source import Source, chunk_tables

    folder = Path(grid["folder"])
    monkeypatch.chdir(folder.parent)
    source = Source(folder.name)
    ids = source.chunks(300)[0]
    deferred = Runner("local", 2, None).rows(source, ids)
    monkeypatch.chdir(tmp_path)  # as a worker whose directory is not the caller's
    read = chunk_tables(deferred)
    assert len(read["statements"]) > 0
    pd.testing.assert_frame_equal(read["statements"], Source(folder).chunk(ids)["statements"])
