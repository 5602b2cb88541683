"""The model bundle: a folder with LightGBM's text model, a JSON manifest, the catalogue and checksums.

Saving writes the folder under a temporary name and renames it into place;
loading verifies every hash first and never unpickles.
"""

from __future__ import annotations

import hashlib
import hmac
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
from riskscore.model.params import BOOSTER_SETTINGS, bands_of, points_scale

__all__ = [
    "BUNDLE_VERSION",
    "KEY_ENV",
    "catalogue_csv",
    "check_replaceable",
    "describe_training",
    "identity",
    "load",
    "manifest",
    "save",
]

BUNDLE_VERSION = 1
_MODEL_FILE = "model.txt"
_MANIFEST_FILE = "manifest.json"
_CATALOGUE_FILE = "catalogue.csv"
_CHECKSUM_FILE = "SHA256SUMS"
_SIGNATURE_FILE = "SIGNATURE"
_BUNDLE_FILES = (_MODEL_FILE, _MANIFEST_FILE, _CATALOGUE_FILE, _CHECKSUM_FILE, _SIGNATURE_FILE)
KEY_ENV = "RISKSCORE_BUNDLE_KEY"
"""Environment variable the command line reads a bundle signing key from (train signs, the others verify)."""
_IDENTITY_KEYS = ("model_params", "features", "classes", "calibration", "training", "target", "holdout_metrics")


def _key_bytes(key: str | bytes) -> bytes:
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(raw) < 16:
        raise ValueError(f"a bundle signing key must have at least 16 bytes; got {len(raw)}")
    return raw


def _signature(key: str | bytes, sums: bytes) -> str:
    return "hmac-sha256:" + hmac.new(_key_bytes(key), sums, hashlib.sha256).hexdigest()


def catalogue_csv(model: Any) -> str:
    """The catalogue as the bundle stores it (``catalogue.csv``)."""
    text: str = model.catalogue_.reset_index().to_csv(index=False, lineterminator="\n")
    return text


def identity(model: Any) -> str:
    """``version_``: SHA-256 over everything a bundle holds (trees, catalogue, the manifest's model record).

    Environment facts (library versions) and file hashes are left out, so a
    model and the bundle it was saved to and loaded from have the same identity;
    an edit of any file changes it.
    """
    record = {k: v for k, v in manifest(model, {}).items() if k in (*_IDENTITY_KEYS, "builder")}
    canonical = json.dumps(json.loads(json.dumps(record, default=str)), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256()
    for piece in (model.booster_.model_to_string(), catalogue_csv(model), canonical):
        digest.update(hashlib.sha256(piece.encode("utf-8")).digest())
    return "sha256:" + digest.hexdigest()[:16]


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


def save(model: Any, path: str | os.PathLike[str], *, overwrite: bool = False, key: str | bytes | None = None) -> Path:
    """Write the bundle folder: model text, manifest, catalogue and checksums.

    The new bundle is written beside ``path`` under a temporary name and renamed
    into place, so an interrupted save never leaves a bundle that looks
    complete. With ``overwrite``, only a folder that is recognisably a bundle
    (its manifest says so and it holds the bundle's files and nothing else) is
    replaced, by swapping the new one in; any other folder, a file, a symbolic
    link or the working directory is refused: riskscore never deletes what it
    did not write. With ``key``, an HMAC-SHA256 of the checksums is written to
    ``SIGNATURE``, for :func:`load` to verify with the same key.
    """
    target = Path(path)
    if key is not None:
        _key_bytes(key)  # refuse a weak key before any work
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
        (tmp / _CATALOGUE_FILE).write_text(catalogue_csv(model), encoding="utf-8")
        files = {name: sha256_file(tmp / name) for name in (_MODEL_FILE, _CATALOGUE_FILE)}
        record = manifest(model, files)
        (tmp / _MANIFEST_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        sums = {name: sha256_file(tmp / name) for name in (_MODEL_FILE, _CATALOGUE_FILE, _MANIFEST_FILE)}
        (tmp / _CHECKSUM_FILE).write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())), encoding="utf-8")
        if key is not None:
            signed = _signature(key, (tmp / _CHECKSUM_FILE).read_bytes())
            (tmp / _SIGNATURE_FILE).write_text(signed + "\n", encoding="utf-8")
        for name in _BUNDLE_FILES:
            if (tmp / name).exists():
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


def _plain(value: Any) -> Any:
    """A setting as JSON: numpy numbers as Python ones."""
    return value.item() if isinstance(value, np.generic) else value


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
            **{k: _plain(getattr(model, k, None)) for k in BOOSTER_SETTINGS},
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


def load(cls: Any, path: str | os.PathLike[str], key: str | bytes | None = None) -> Any:
    """Read a bundle written by :meth:`save`, verifying every file first.

    With ``key``, the bundle must carry a ``SIGNATURE`` made with that key.

    Raises
    ------
    BundleIntegrityError
        If a file is missing, a symbolic link, changed or inconsistent with the
        others (the manifest against the model file), the signature does not
        verify, or the bundle's format or version is unknown.
    """
    import lightgbm as lgb

    folder = Path(path)
    if not folder.is_dir():
        raise BundleIntegrityError(f"model bundle not found: {folder} is not a folder")
    links = sorted(p.name for p in folder.iterdir() if p.is_symlink())
    if links:
        raise BundleIntegrityError(f"{folder}: {links} are symbolic links; a bundle holds its own files only")
    sums_path = folder / _CHECKSUM_FILE
    if not sums_path.is_file() and not (folder / _MANIFEST_FILE).is_file():
        tables = any((folder / f"accounts{ext}").exists() for ext in (".parquet", ".csv", ".csv.gz"))
        hint = ": it holds event tables (were the model and data folders swapped?)" if tables else ""
        raise BundleIntegrityError(
            f"{folder} is not a model bundle (no {_MANIFEST_FILE}, no {_CHECKSUM_FILE}){hint}; give the folder "
            "that riskscore train or RiskModel.save wrote"
        )
    if not sums_path.is_file():
        raise BundleIntegrityError(f"{folder}: the checksum file {_CHECKSUM_FILE} is missing")
    sums_bytes = sums_path.read_bytes()
    _verify_signature(folder, sums_bytes, key)
    listed: dict[str, str] = {}
    for line in sums_bytes.decode("utf-8", errors="replace").splitlines():
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
    except (ValueError, RecursionError) as exc:
        raise BundleIntegrityError(f"{folder}/{_MANIFEST_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BundleIntegrityError(f"{folder}/{_MANIFEST_FILE} must hold a JSON object")
    if manifest.get("format") != "riskscore-bundle" or manifest.get("bundle_version") != BUNDLE_VERSION:
        raise BundleIntegrityError(
            f"{folder}: unknown bundle format or version {manifest.get('format')!r} "
            f"{manifest.get('bundle_version')!r}; this riskscore reads riskscore-bundle version {BUNDLE_VERSION}"
        )
    files = manifest.get("files", {})
    for name, expected in files.items() if isinstance(files, dict) else []:
        if listed.get(name) != expected:
            raise BundleIntegrityError(f"{folder}: the manifest's hash of {name} does not match {_CHECKSUM_FILE}")
    try:
        booster = lgb.Booster(model_str=(folder / _MODEL_FILE).read_text(encoding="utf-8"))
    except (lgb.basic.LightGBMError, UnicodeDecodeError, ValueError) as exc:
        raise BundleIntegrityError(f"{folder}/{_MODEL_FILE} is not a LightGBM model: {exc}") from exc
    try:
        model = _from_manifest(cls, manifest, booster, folder)
        catalogue = pd.read_csv(folder / _CATALOGUE_FILE, keep_default_na=False, na_values=[""])
        model.catalogue_ = catalogue.set_index("feature")
    except (KeyError, TypeError, ValueError, AttributeError, pd.errors.ParserError) as exc:
        raise BundleIntegrityError(
            f"{folder}: the manifest or catalogue is not what riskscore writes ({type(exc).__name__}: {exc})"
        ) from exc
    if list(model.catalogue_.index) != list(model._names_):
        raise BundleIntegrityError(f"{folder}/{_CATALOGUE_FILE} must describe the model's features, in order")
    return model


def _verify_signature(folder: Path, sums: bytes, key: str | bytes | None) -> None:
    path = folder / _SIGNATURE_FILE
    if key is None:
        return
    if not path.is_file():
        raise BundleIntegrityError(
            f"{folder} carries no {_SIGNATURE_FILE}: a signing key was given, so only a bundle signed with it loads"
        )
    recorded = path.read_text(encoding="utf-8", errors="replace").strip()
    if not hmac.compare_digest(recorded, _signature(key, sums)):
        raise BundleIntegrityError(
            f"{folder}/{_SIGNATURE_FILE} does not verify with the key given: the bundle was changed or signed "
            "with another key"
        )


def _from_manifest(cls: Any, manifest: dict[str, Any], booster: Any, folder: Path) -> Any:
    """The model of a verified manifest and model file, after checking that they describe the same model."""
    feats = manifest["features"]
    names = [str(n) for n in feats["names"]]
    if booster.feature_name() != names:
        differ = [f"{a!r} / {b!r}" for a, b in zip(booster.feature_name(), names, strict=False) if a != b][:3]
        raise BundleIntegrityError(
            f"{folder}: {_MANIFEST_FILE} lists {len(names)} features and {_MODEL_FILE} {booster.num_feature()}, "
            f"not the same names or order (model / manifest: {differ}): the manifest was edited"
        )
    trees = manifest.get("training", {}).get("trees")
    if trees is not None and trees != booster.num_trees():
        raise BundleIntegrityError(
            f"{folder}: {_MANIFEST_FILE} records {trees} trees and {_MODEL_FILE} holds {booster.num_trees()}"
        )
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
        **{k: mp.get(k) for k in BOOSTER_SETTINGS},
    )
    model.booster_ = booster
    model._names_ = names
    model.n_features_in_ = len(names)
    if feats["from_dataframe"]:
        model.feature_names_in_ = np.asarray(names, dtype=object)
    model.categories_ = {k: list(v) for k, v in feats["categories"].items()}
    model.classes_ = np.asarray(manifest["classes"])
    model.calibration_ = manifest["calibration"]
    model.manifest_ = {k: manifest[k] for k in ("training", "target", "holdout_metrics", "builder")}
    return model
