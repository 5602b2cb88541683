"""RiskModel: scikit-learn contract, time-aware hold-out, calibration, monotone constraints,
credit scales, and the bundle's integrity."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import riskscore as rs
from riskscore.model import DEFAULT_BANDS, PD_FLOOR

EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "the early-stopping hold-out is drawn by rows and LightGBM subsamples rows, so a weight of 2 "
        "is not the same as a repeated row"
    ),
}


@parametrize_with_checks(
    [rs.RiskModel(validation="stratified", params={"n_estimators": 60})],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator: rs.RiskModel, check: object) -> None:
    check(estimator)  # type: ignore[operator]


@pytest.fixture(scope="module")
def sample(sample_xy: dict[str, object]) -> dict[str, object]:
    X, y, builder = sample_xy["X"], sample_xy["y"], sample_xy["builder"]
    as_of = X.index.get_level_values("as_of")  # type: ignore[attr-defined]
    train = as_of < pd.Timestamp("2024-04-01")
    model = rs.RiskModel().fit(X[train], y[train], builder=builder)  # type: ignore[index]
    return {"events": sample_xy["events"], "builder": builder, "X": X, "y": y, "train": train, "model": model}


def test_time_ordered_holdout_is_the_latest_dates(sample: dict) -> None:
    model, X, train = sample["model"], sample["X"], sample["train"]
    info = model.manifest_["training"]
    cut = pd.Timestamp(info["holdout"].split(">= ")[1])
    as_of = X[train].index.get_level_values("as_of")
    assert info["holdout_rows"] == int((as_of >= cut).sum())
    assert 0.1 < info["holdout_rows"] / info["rows"] < 0.4
    assert info["first_as_of"] == "2023-01-01" and info["last_as_of"] == "2024-03-01"
    assert model.manifest_["target"] == {
        "name": "dpd30_90d",
        "positive_class": 1,
        "dpd_threshold": 30,
        "horizon": "90D",
    }


def test_out_of_time_quality_and_calibration(sample: dict) -> None:
    model, X, y, train = sample["model"], sample["X"], sample["y"], sample["train"]
    p = model.predict_proba(X[~train])[:, 1]
    report = rs.evaluate(y[~train], p)
    assert 0.75 < report.summary["auc"] < 0.95
    assert report.summary["ece"] < 0.02
    assert abs(p.mean() - y[~train].mean()) < 0.015


def test_isotonic_calibration_is_plain_numbers_fitted_on_the_holdout(sample: dict) -> None:
    model = sample["model"]
    cal = model.calibration_
    assert cal["method"] == "isotonic"
    assert all(isinstance(v, float) for v in cal["x"] + cal["y"])
    X, train = sample["X"], sample["train"]
    margin = model.predict_raw(X[train].head(500))
    p = model.predict_proba(X[train].head(500))[:, 1]
    assert np.array_equal(p, np.clip(np.interp(margin, cal["x"], cal["y"]), PD_FLOOR, 1 - PD_FLOOR))
    # Centred isotonic: strictly increasing between the first and the last centre, so
    # the booster's ranking survives calibration.
    assert all(b > a for a, b in itertools.pairwise(cal["x"])) and all(b > a for a, b in itertools.pairwise(cal["y"]))


@pytest.mark.parametrize("calibration", ["sigmoid", None])
def test_other_calibrations(sample: dict, calibration: str | None) -> None:
    X, y, train = sample["X"], sample["y"], sample["train"]
    model = rs.RiskModel(calibration=calibration, params={"n_estimators": 200}).fit(X[train], y[train])
    margin = model.predict_raw(X[~train])
    p = model.predict_proba(X[~train])[:, 1]
    if calibration is None:
        np.testing.assert_allclose(p, np.clip(1 / (1 + np.exp(-margin)), PD_FLOOR, 1 - PD_FLOOR))
    else:
        cal = model.calibration_
        expected = 1 / (1 + np.exp(-(cal["slope"] * margin + cal["intercept"])))
        np.testing.assert_allclose(p, np.clip(expected, PD_FLOOR, 1 - PD_FLOOR))
    assert np.all(np.diff(p[np.argsort(margin)]) >= -1e-15)  # calibration keeps the order


def test_catalogue_monotone_constraints_hold(sample: dict) -> None:
    """Every catalogue direction the training rows agree with is enforced; the others are listed, with why."""
    model, X = sample["model"], sample["X"]
    rows = X.sample(300, random_state=1)
    record = model.manifest_["training"]["monotone"]
    dropped = record["dropped"]
    kept = [f for f, d in zip(X.columns, model.monotone_, strict=True) if d != 0]
    assert record["constrained"] == len(kept) > 20
    for feature in ("stmt_dpd_max_90d", "inst_unpaid_count_90d", "acct_tenure_days"):
        assert feature in kept, feature
    for feature in kept[:: max(1, len(kept) // 12)] + ["stmt_dpd_max_90d", "acct_tenure_days"]:
        direction = int(model.catalogue_.loc[feature, "direction"])
        lo, hi = X[feature].quantile(0.05), X[feature].quantile(0.95)
        low = model.predict_raw(rows.assign(**{feature: lo}))
        high = model.predict_raw(rows.assign(**{feature: hi}))
        assert np.all(direction * (high - low) >= -1e-12), feature
    for feature, why in dropped.items():
        assert why["direction"] == int(model.catalogue_.loc[feature, "direction"]) != 0
        assert why["p"] < 0.01 and why["deviance"] > 0 and why["df"] >= 1


def test_a_direction_the_data_contradict_is_dropped_on_the_training_rows_only() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    X = pd.DataFrame({"rising": rng.random(n), "u_shaped": rng.random(n), "noise": rng.random(n)})
    risk = 0.02 + 0.15 * X["rising"] + 0.5 * (X["u_shaped"] - 0.5) ** 2
    y = pd.Series((rng.random(n) < risk).astype(int))
    catalogue = pd.DataFrame({"direction": [1, 1, 1], "group": "x", "description": "x"}, index=list(X.columns))
    model = rs.RiskModel(n_estimators=60, validation="stratified").fit(X, y, catalogue=catalogue)
    dropped = model.manifest_["training"]["monotone"]["dropped"]
    assert "u_shaped" in dropped and "rising" not in dropped
    assert list(model.monotone_) == [1, 0, 1] or list(model.monotone_) == [1, 0, 0]
    strict = rs.RiskModel(n_estimators=60, validation="stratified", monotone="catalogue_strict")
    strict.fit(X, y, catalogue=catalogue)
    assert list(strict.monotone_) == [1, 1, 1] and strict.manifest_["training"]["monotone"]["dropped"] == {}


def test_monotone_options(sample: dict) -> None:
    X, y, train = sample["X"], sample["y"], sample["train"]
    small = {"n_estimators": 30}
    model = rs.RiskModel(monotone={"stmt_dpd_max_90d": 1}, params=small).fit(X[train], y[train])
    assert "monotone_constraints" in model.booster_.model_to_string()
    with pytest.raises(ValueError, match=r"monotone names features the data lacks: \['nope'\]"):
        rs.RiskModel(monotone={"nope": 1}, params=small).fit(X[train], y[train])
    with pytest.raises(ValueError, match=r"monotone directions must be -1, 0 or 1; got \[2\]"):
        rs.RiskModel(monotone={"stmt_dpd_max_90d": 2}, params=small).fit(X[train], y[train])
    with pytest.raises(ValueError, match="monotone must be 'catalogue', 'catalogue_strict', a dict or None; got 'up'"):
        rs.RiskModel(monotone="up").fit(X[train], y[train])  # type: ignore[arg-type]


def test_credit_scales(sample: dict) -> None:
    model, X = sample["model"], sample["X"]
    rows = X.head(200)
    p = model.predict_proba(rows)[:, 1]
    points = model.score_points(rows)
    np.testing.assert_allclose(points, 600 + 20 / np.log(2) * np.log((1 - p) / p / 50))
    # 600 points at odds 50:1, 20 more for each doubling of the odds.
    from riskscore.model.scales import points_of

    np.testing.assert_allclose(points_of(np.array([1 / 51, 1 / 101]), 600, 50, 20), [600, 620], rtol=0, atol=0.03)
    np.testing.assert_allclose(
        model.score_points(rows, base_points=500, pdo=40), 500 + 40 / np.log(2) * np.log((1 - p) / p / 50)
    )
    band = model.band(rows)
    assert list(band.categories) == list(DEFAULT_BANDS) and band.ordered
    bounds = np.array(list(DEFAULT_BANDS.values()))
    assert all(
        p[i] < bounds[band.codes[i]] and (band.codes[i] == 0 or p[i] >= bounds[band.codes[i] - 1])
        for i in range(len(p))
    )
    custom = model.band(rows, bands={"low": 0.05, "high": 1.0})
    assert set(custom.astype(str)) <= {"low", "high"} and (np.asarray(custom == "high") == (p >= 0.05)).all()
    table = model.score(rows)
    assert list(table.columns) == ["pd", "points", "band"] and table.index.equals(rows.index)
    np.testing.assert_array_equal(table["pd"], p)
    with pytest.raises(ValueError, match="the last band's upper bound must be 1"):
        model.band(rows, bands={"a": 0.1, "b": 0.5})


def test_input_errors(sample: dict) -> None:
    model, X, y, train = sample["model"], sample["X"], sample["y"], sample["train"]
    with pytest.raises(ValueError, match=r"y has 2 missing labels .*drop those rows first"):
        rs.RiskModel().fit(X.head(50), pd.array([0, 1] * 24 + [None, None], dtype="Int8"))
    with pytest.raises(
        rs.DataValidationError, match=r"features\.stmt_dpd_max_90d: the model needs 2 features the data lacks"
    ):
        model.predict_proba(X.drop(columns=["stmt_dpd_max_90d", "txn_count_30d"]).head())
    changed = X.head(20).assign(acct_product=pd.Categorical(["mortgage"] * 20))
    with pytest.warns(UserWarning, match=r"features\.acct_product: 20 rows have categories not seen in training"):
        model.predict_proba(changed)
    with pytest.raises(rs.NotFittedError, match="not fitted yet"):
        rs.RiskModel().predict_proba(X.head())
    with pytest.raises(ValueError, match="calibration must be 'isotonic', 'sigmoid' or None; got 'platt'"):
        rs.RiskModel(calibration="platt").fit(X[train], y[train])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bundle


def test_bundle_round_trip_is_bit_for_bit(sample: dict, tmp_path: Path) -> None:
    model, X = sample["model"], sample["X"]
    folder = model.save(tmp_path / "bundle")
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "catalogue.csv", "manifest.json", "model.txt"]
    for file in folder.iterdir():
        raw = file.read_bytes()
        assert not raw.startswith(b"\x80"), f"{file.name} looks like a pickle"
        raw.decode("utf-8")  # every file is text
    loaded = rs.RiskModel.load(folder)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict_raw(X), model.predict_raw(X))
    pd.testing.assert_frame_equal(loaded.score(X), model.score(X))
    pd.testing.assert_frame_equal(loaded.catalogue_, model.catalogue_, check_dtype=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["bundle_version"] == 1 and set(manifest["files"]) == {"model.txt", "catalogue.csv"}
    assert manifest["features"]["categories"]["acct_product"] == ["card", "loan"]
    assert manifest["versions"]["lightgbm"] and manifest["training"]["rows"] == int(sample["train"].sum())
    # The builder travels with the model and rebuilds the same features.
    rebuilt = loaded.builder_.transform(sample["events"], X.index[:300])
    pd.testing.assert_frame_equal(rebuilt, X.head(300), check_exact=True)
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        model.save(folder)


@pytest.mark.parametrize("name", ["model.txt", "manifest.json", "catalogue.csv", "SHA256SUMS"])
def test_a_changed_byte_anywhere_is_detected(sample: dict, tmp_path: Path, name: str) -> None:
    folder = sample["model"].save(tmp_path / "bundle")
    path = folder / name
    raw = bytearray(path.read_bytes())
    digits = [i for i, b in enumerate(raw) if chr(b).isdigit()]
    i = digits[len(digits) // 2]
    raw[i] = ord("7") if raw[i] != ord("7") else ord("3")
    path.write_bytes(bytes(raw))
    with pytest.raises(rs.BundleIntegrityError):
        rs.RiskModel.load(folder)


def test_missing_file_and_unknown_version(sample: dict, tmp_path: Path) -> None:
    folder = sample["model"].save(tmp_path / "bundle")
    (folder / "catalogue.csv").unlink()
    with pytest.raises(rs.BundleIntegrityError, match=r"catalogue\.csv is missing"):
        rs.RiskModel.load(folder)
    folder = sample["model"].save(tmp_path / "bundle2")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["bundle_version"] = 99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    import hashlib

    sums = (folder / "SHA256SUMS").read_text().splitlines()
    digest = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    (folder / "SHA256SUMS").write_text(
        "".join(f"{digest}  manifest.json\n" if line.endswith("manifest.json") else line + "\n" for line in sums)
    )
    with pytest.raises(rs.BundleIntegrityError, match="unknown bundle format or version 'riskscore-bundle' 99"):
        rs.RiskModel.load(folder)
    with pytest.raises(rs.BundleIntegrityError, match="is not a folder"):
        rs.RiskModel.load(tmp_path / "nothing")


def test_save_never_leaves_a_partial_bundle(sample: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import riskscore.model.bundle as bundle

    def boom(*args: object, **kw: object) -> dict:
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle, "manifest", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        sample["model"].save(tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_model_version_identifies_the_model(sample_model: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path) -> None:
    model, X = sample_model
    version = model.version_
    assert version.startswith("sha256:") and len(version) == 7 + 16
    assert model.score(X.head(3)).attrs["model_version"] == version
    model.save(tmp_path / "bundle")
    assert rs.RiskModel.load(tmp_path / "bundle").version_ == version
    other = rs.RiskModel(params={"n_estimators": 20}).fit(X.head(3000), np.arange(3000) % 7 == 0)
    assert other.version_ != version


def test_fit_on_dask_collections(sample_xy: dict[str, object], tmp_path: Path) -> None:
    """Boosting on a Dask LocalCluster through LightGBM's Dask estimator; cut at the best hold-out round."""
    import dask.dataframe as dd
    import distributed

    X, y = sample_xy["X"], sample_xy["y"]
    as_of = X.index.get_level_values("as_of")  # type: ignore[union-attr]
    train, hold = as_of < "2024-03-01", as_of >= "2024-03-01"
    X_train = X[train].reset_index(drop=True)  # type: ignore[index]
    y_train = y[train].reset_index(drop=True)  # type: ignore[index]
    params = {"n_estimators": 400}
    local = rs.RiskModel(params=params).fit(X[train], y[train], eval_set=(X[hold], y[hold]))  # type: ignore[index]
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster),
    ):
        dX, dy = dd.from_pandas(X_train, npartitions=4), dd.from_pandas(y_train, npartitions=4)
        with pytest.raises(ValueError, match="with Dask collections, pass eval_set"):
            rs.RiskModel().fit(dX, dy)
        model = rs.RiskModel(params=params).fit(dX, dy, eval_set=(X[hold], y[hold]))  # type: ignore[index]
    training = model.manifest_["training"]
    assert training["dask"] and training["rows"] == int(train.sum()) and training["rounds_trained"] == 400
    assert 10 <= model.booster_.num_trees() < 400  # cut at the best hold-out round
    auc_dask = rs.evaluate(y[hold], model.predict_proba(X[hold])[:, 1]).summary["auc"]  # type: ignore[index]
    auc_local = rs.evaluate(y[hold], local.predict_proba(X[hold])[:, 1]).summary["auc"]  # type: ignore[index]
    assert auc_dask > 0.7 and abs(auc_dask - auc_local) < 0.03
    model.save(tmp_path / "bundle")
    loaded = rs.RiskModel.load(tmp_path / "bundle")
    np.testing.assert_array_equal(loaded.predict_proba(X[hold]), model.predict_proba(X[hold]))  # type: ignore[index]


def test_logloss_by_round_equals_lightgbms_own_record(sample_xy: dict[str, object]) -> None:
    """The Dask fit picks its round from this curve: it must be LightGBM's hold-out log loss, round by round."""
    import lightgbm as lgb

    from riskscore.model.dask import logloss_by_round

    X, y = sample_xy["X"], sample_xy["y"]
    first = np.arange(len(X)) < 20_000  # type: ignore[arg-type]
    record: dict[str, Any] = {}
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 15, "max_depth": 4},
        lgb.Dataset(X[first], y[first]),  # type: ignore[index]
        120,
        valid_sets=[lgb.Dataset(X[~first], y[~first])],  # type: ignore[index]
        valid_names=["hold"],
        callbacks=[lgb.record_evaluation(record)],
    )
    ours = logloss_by_round(booster, X[~first], y[~first].to_numpy(dtype=float))  # type: ignore[index,union-attr]
    np.testing.assert_allclose(ours, record["hold"]["binary_logloss"], rtol=0, atol=1e-12)
