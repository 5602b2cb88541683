"""The module map of docs/architecture.md, checked: sizes, layers, no reach-ins, no import of the face."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "riskscore"
MAX_LINES = 600

# Layers, lowest first (docs/architecture.md, "Module map"). A module may import
# its own part and any part of a lower layer; the read-only views (evaluate,
# monitor, plots, report) read every layer below the orchestration.
LAYER = {
    "_io": 0,
    "_version": 0,
    "errors": 0,
    "evaluate": 0,  # metrics of arrays: imports no riskscore module; the model records hold-out metrics with it
    "data": 1,
    "features": 2,
    "labels": 2,
    "model": 3,
    "explain": 4,
    "treeshap": 4,  # the explain layer's pattern tables: numpy and a LightGBM dump only
    "reasons": 4,
    "segments": 4,
    "outreach": 5,
    "monitor": 6,
    "plots": 6,
    "report": 6,
    "datasets": 6,  # makes EventData; nothing below imports it
    "batch": 7,
    "cli": 8,
    "cli_options": 8,
    "cli_demo": 8,
    "cli_readout": 8,
    "cli_evaluate": 8,
    "cli_features": 8,
    "__main__": 9,
}
# The one declared upward import: RiskModel.explain delegates to the explain layer
# (which never imports the model module).
ALLOWED_UPWARD = {("model", "explain")}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names imported from it) for every import, module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return [(m, names) for m, names in found if m == "riskscore" or m.startswith("riskscore.")]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_the_size_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines (limit {MAX_LINES}): split it"


def test_every_part_has_a_layer() -> None:
    parts = {_part(p) for p in _modules()} - {"__init__"}
    assert parts <= set(LAYER), f"parts without a layer in the module map: {sorted(parts - set(LAYER))}"


def test_imports_follow_the_layers_and_never_reach_into_private_names() -> None:
    problems = []
    for path in _modules():
        here = _part(path)
        where = str(path.relative_to(PACKAGE))
        for module, names in _imports(path):
            if here == "__init__":
                continue  # the package face imports everything it shows
            if module == "riskscore":
                problems.append(f"{where}: imports the package face ({', '.join(names) or 'riskscore'})")
                continue
            target_parts = module.split(".")[1:]
            there = target_parts[0]
            if there != here:
                private = [p for p in target_parts[1:] if p.startswith("_")]
                private += [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private:
                    problems.append(f"{where}: imports private {private} of {module}")
                if LAYER[there] > LAYER[here] and (here, there) not in ALLOWED_UPWARD:
                    problems.append(f"{where}: {here} (layer {LAYER[here]}) imports higher {module} ({LAYER[there]})")
    assert not problems, "\n".join(problems)


def test_the_explain_layer_never_imports_the_model() -> None:
    for part in ("explain", "reasons", "segments"):
        for path in [*PACKAGE.glob(f"{part}.py"), *PACKAGE.glob(f"{part}/*.py")]:
            assert not [m for m, _ in _imports(path) if m.startswith("riskscore.model")], path


def test_the_dask_training_module_never_imports_the_estimator() -> None:
    imported = [m for m, _ in _imports(PACKAGE / "model" / "dask.py")]
    assert "riskscore.model.estimator" not in imported and "riskscore.model" not in imported


def test_audit_imports_the_decision_and_not_recommend() -> None:
    imported = [m for m, _ in _imports(PACKAGE / "outreach" / "audit.py")]
    assert "riskscore.outreach.decision" in imported
    assert "riskscore.outreach.recommend" not in imported
