"""The model bundle: a folder with LightGBM's text model, a JSON manifest, the catalogue and checksums.

Saving writes the folder under a temporary name and renames it into place;
loading verifies every hash first and never unpickles.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore._io import fsync_file, sha256_file
from riskscore._version import __version__
from riskscore.errors import BundleIntegrityError
from riskscore.evaluate import evaluate
from riskscore.model.calibration import apply_calibration
from riskscore.model.inputs import feature_names, plain
from riskscore.model.params import bands_of, points_scale

__all__ = ["BUNDLE_VERSION", "check_replaceable", "describe_training", "load", "manifest", "save"]

BUNDLE_VERSION = 1
_MODEL_FILE = "model.txt"
_MANIFEST_FILE = "manifest.json"
_CATALOGUE_FILE = "catalogue.csv"
_CHECKSUM_FILE = "SHA256SUMS"
_BUNDLE_FILES = (_MODEL_FILE, _MANIFEST_FILE, _CATALOGUE_FILE, _CHECKSUM_FILE)


def describe_training(
    model: Any,
    frame: pd.DataFrame,
    labels: np.ndarray,
    y: Any,
    train_idx: np.ndarray,
    how: str,
    hold_y: np.ndarray,
    margin: np.ndarray,
    builder: Any,
) -> dict[str, Any]:
    """What the manifest records of a fit: the training window, the hold-out, the target, hold-out metrics."""
    window: dict[str, Any] = {"rows": len(frame), "positives": int(labels.sum())}
    if isinstance(frame.index, pd.MultiIndex) and "as_of" in frame.index.names:
        as_of = frame.index.get_level_values("as_of")
        window.update(first_as_of=str(as_of.min().date()), last_as_of=str(as_of.max().date()))
    hold_pd = apply_calibration(model.calibration_, margin)
    metrics = {}
    if 0 < hold_y.sum() < len(hold_y):
        report = evaluate(hold_y, hold_pd)
        metrics = {k: report.summary[k] for k in ("auc", "gini", "ks", "brier", "log_loss", "ece")}
    target = {"name": str(getattr(y, "name", None) or "target"), "positive_class": plain(model.classes_[1])}
    name = target["name"]
    if name.startswith("dpd") and "_" in name:
        threshold, horizon = name[3:].split("_", 1)
        if threshold.isdigit():
            target.update(dpd_threshold=int(threshold), horizon=horizon.upper())
    return {
        "training": {
            **window,
            "holdout": how,
            "holdout_rows": len(hold_y),
            "trees": model.booster_.num_trees(),
        },
        "target": target,
        "holdout_metrics": metrics,
        "builder": builder.to_dict() if builder is not None else None,
    }


# ----------------------------------------------------------------- predict


def save(model: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write the bundle folder: model text, manifest, catalogue and checksums.

    The new bundle is written beside ``path`` under a temporary name and renamed
    into place, so an interrupted save never leaves a bundle that looks
    complete. With ``overwrite``, only a folder that is recognisably a bundle
    (its manifest says so and it holds the bundle's files and nothing else) is
    replaced, by swapping the new one in; any other folder, a file, a symbolic
    link or the working directory is refused: riskscore never deletes what it
    did not write.
    """
    target = Path(path)
    if target.is_symlink():
        raise FileExistsError(f"{target} is a symbolic link: give the bundle folder itself")
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} is a file, not a model bundle folder; choose another path")
    occupied = target.is_dir() and any(target.iterdir())
    if occupied and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    if occupied:
        check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    old: Path | None = None
    try:
        (tmp / _MODEL_FILE).write_text(model.booster_.model_to_string(), encoding="utf-8")
        catalogue = model.catalogue_.reset_index()
        catalogue.to_csv(tmp / _CATALOGUE_FILE, index=False, lineterminator="\n")
        files = {name: sha256_file(tmp / name) for name in (_MODEL_FILE, _CATALOGUE_FILE)}
        record = manifest(model, files)
        (tmp / _MANIFEST_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        sums = {name: sha256_file(tmp / name) for name in (_MODEL_FILE, _CATALOGUE_FILE, _MANIFEST_FILE)}
        (tmp / _CHECKSUM_FILE).write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())), encoding="utf-8")
        for name in _BUNDLE_FILES:
            fsync_file(tmp / name)
        if target.exists():
            # Swap: the old bundle moves aside, the new one takes its name, then the old one goes.
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)  # put the old bundle back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def check_replaceable(target: Path) -> None:
    """Refuse to replace anything but a riskscore bundle (and never the working directory)."""
    here = Path.cwd().resolve()
    resolved = target.resolve()
    if resolved == here or resolved in here.parents:
        raise FileExistsError(f"{target} is the working directory or holds it: riskscore will not replace it")
    names = sorted(p.name for p in target.iterdir())
    extra = [n for n in names if n not in _BUNDLE_FILES]
    if extra:
        raise FileExistsError(
            f"{target} is not a riskscore model bundle (it holds {extra[:5]}): overwrite replaces only a bundle "
            "folder; choose another path"
        )
    try:
        doc = json.loads((target / _MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileExistsError(f"{target} has no readable {_MANIFEST_FILE}: it is not a bundle riskscore wrote") from exc
    if not isinstance(doc, dict) or doc.get("format") != "riskscore-bundle":
        raise FileExistsError(f"{target}/{_MANIFEST_FILE} is not a riskscore bundle manifest: refusing to replace it")


def manifest(model: Any, files: dict[str, str]) -> dict[str, Any]:
    """The manifest of a fitted model: settings, features, calibration, training record, versions, file hashes."""
    import lightgbm
    import sklearn

    return {
        "format": "riskscore-bundle",
        "bundle_version": BUNDLE_VERSION,
        "model_params": {
            "params": dict(model.params) if model.params else None,
            "monotone": model.monotone
            if isinstance(model.monotone, str) or model.monotone is None
            else dict(model.monotone),
            "calibration": model.calibration,
            "validation": model.validation,
            "random_state": model.random_state,
            "bands": bands_of(model),
            "points": points_scale(model),
            "refit": model.refit,
        },
        "features": {
            "names": feature_names(model),
            "from_dataframe": hasattr(model, "feature_names_in_"),
            "dtypes": {n: ("category" if n in model.categories_ else "float64") for n in feature_names(model)},
            "categories": model.categories_,
        },
        "classes": [plain(c) for c in model.classes_],
        "calibration": model.calibration_,
        **model.manifest_,
        "versions": {
            "riskscore": __version__,
            "lightgbm": lightgbm.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "python": platform.python_version(),
        },
        "files": files,
    }


def load(cls: Any, path: str | os.PathLike[str]) -> Any:
    """Read a bundle written by :meth:`save`, verifying every file first.

    Raises
    ------
    BundleIntegrityError
        If a file is missing, a hash does not match, or the bundle's format
        or version is unknown.
    """
    import lightgbm as lgb

    folder = Path(path)
    if not folder.is_dir():
        raise BundleIntegrityError(f"model bundle not found: {folder} is not a folder")
    sums_path = folder / _CHECKSUM_FILE
    if not sums_path.is_file():
        raise BundleIntegrityError(f"{folder}: the checksum file {_CHECKSUM_FILE} is missing")
    listed: dict[str, str] = {}
    for line in sums_path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("  ", 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise BundleIntegrityError(f"{folder}/{_CHECKSUM_FILE}: malformed line {line!r}")
        listed[parts[1]] = parts[0]
    required = {_MODEL_FILE, _CATALOGUE_FILE, _MANIFEST_FILE}
    if set(listed) != required:
        raise BundleIntegrityError(
            f"{folder}/{_CHECKSUM_FILE} must list exactly {sorted(required)}; got {sorted(listed)}"
        )
    for name, expected in sorted(listed.items()):
        file = folder / name
        if not file.is_file():
            raise BundleIntegrityError(f"{folder}: {name} is missing")
        actual = sha256_file(file)
        if actual != expected:
            raise BundleIntegrityError(f"{folder}/{name} was changed: SHA-256 {actual} does not match {expected}")
    try:
        manifest = json.loads((folder / _MANIFEST_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BundleIntegrityError(f"{folder}/{_MANIFEST_FILE} is not valid JSON: {exc}") from exc
    if manifest.get("format") != "riskscore-bundle" or manifest.get("bundle_version") != BUNDLE_VERSION:
        raise BundleIntegrityError(
            f"{folder}: unknown bundle format or version {manifest.get('format')!r} "
            f"{manifest.get('bundle_version')!r}; this riskscore reads riskscore-bundle version {BUNDLE_VERSION}"
        )
    for name, expected in manifest.get("files", {}).items():
        if listed.get(name) != expected:
            raise BundleIntegrityError(f"{folder}: the manifest's hash of {name} does not match {_CHECKSUM_FILE}")
    mp = manifest["model_params"]
    model = cls(
        params=mp["params"],
        monotone=mp["monotone"],
        calibration=mp["calibration"],
        validation=mp["validation"],
        random_state=mp["random_state"],
        bands=mp["bands"],
        points=mp["points"],
        refit=mp.get("refit", False),
    )
    model.booster_ = lgb.Booster(model_str=(folder / _MODEL_FILE).read_text(encoding="utf-8"))
    feats = manifest["features"]
    model._names_ = list(feats["names"])
    model.n_features_in_ = len(model._names_)
    if feats["from_dataframe"]:
        model.feature_names_in_ = np.asarray(model._names_, dtype=object)
    model.categories_ = {k: list(v) for k, v in feats["categories"].items()}
    model.classes_ = np.asarray(manifest["classes"])
    model.calibration_ = manifest["calibration"]
    catalogue = pd.read_csv(folder / _CATALOGUE_FILE, keep_default_na=False, na_values=[""])
    model.catalogue_ = catalogue.set_index("feature")
    model.manifest_ = {k: manifest[k] for k in ("training", "target", "holdout_metrics", "builder")}
    return model
