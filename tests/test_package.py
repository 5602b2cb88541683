"""The package as users and CI meet it: public names, typing marker, lint, README."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import riskscore as rs

REPO = Path(__file__).resolve().parents[1]


def test_public_names_exist() -> None:
    for name in rs.__all__:
        assert hasattr(rs, name), name
    for name in ("EventData", "DataValidationError", "NotFittedError", "BundleIntegrityError", "PolicyError"):
        assert name in rs.__all__


def test_error_hierarchy() -> None:
    from sklearn.exceptions import NotFittedError as SklearnNotFitted

    for cls in (rs.DataValidationError, rs.NotFittedError, rs.BundleIntegrityError, rs.PolicyError):
        assert issubclass(cls, rs.RiskscoreError)
    assert issubclass(rs.NotFittedError, SklearnNotFitted)
    assert issubclass(rs.DataValidationError, ValueError)


def test_typed_package() -> None:
    assert (Path(rs.__file__).parent / "py.typed").exists()


def test_import_is_light() -> None:
    heavy = ("lightgbm", "matplotlib", "dask", "shap")
    code = f"import sys, riskscore; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)\n(.*?)```", text, re.S)
    assert block, "README.md must open with a shell block of setup commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_demo_and_test_commands() -> None:
    demo, tests = _readme_commands()[:2]
    assert demo.endswith("riskscore demo")
    assert "pip install" in tests and "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci.splitlines()
    assert "RISKSCORE_REQUIRE_SHARED_DATA=1" in ci


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        if "# not run" in block:
            continue
        exec(compile(block, "README.md", "exec"), {})


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "src", "tests", "benchmarks", "notebooks"],
        ["ruff", "format", "--check", "src", "tests", "benchmarks", "notebooks"],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_is_lint_and_type_clean(command: list[str]) -> None:
    tool = shutil.which(command[0])
    assert tool, f"{command[0]} is a test dependency and must be installed"
    done = subprocess.run([tool, *command[1:]], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
