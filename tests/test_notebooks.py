"""The notebooks run from top to bottom; a broken cell fails the suite. They are stored without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_quickstart", "02_taiwan_real_data", "03_outreach_policy", "04_monitoring", "05_outreach_experiment"]


def test_every_notebook_is_listed_and_stored_without_outputs() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    for name in NAMES:
        book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(book)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs are not stripped"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name: str) -> None:
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    # Run where the notebook lives (it finds ../shared from there); the executed copy stays in memory.
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = "\n".join(
        out.get("text", "") for cell in book.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    if name == "02_taiwan_real_data":
        skipped = "SKIPPED: the UCI Taiwan CSV is not here" in text
        if skipped and os.environ.get("RISKSCORE_REQUIRE_SHARED_DATA") == "1":
            pytest.fail("the Taiwan notebook could not find the shared data, which CI requires")
        if not skipped:
            assert "AUC riskscore 0.7" in text
    assert not list(NOTEBOOKS.glob("*.jsonl")), "a notebook left a file behind"
