"""The bundled sample portfolio (``data/sample/``): where it is, loading it, and remaking it."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pandas as pd

from riskscore.data import EventData
from riskscore.datasets.simulator import make_portfolio

__all__ = ["SAMPLE_CALL", "load_sample", "sample_dir", "write_sample"]

SAMPLE_CALL: dict[str, object] = {"n_accounts": 2000, "months": 24, "seed": 20240101, "start": "2023-01-01"}
"""The exact arguments of :func:`make_portfolio` that made ``data/sample/``."""


def sample_dir() -> Path:
    """The folder of the bundled sample (installed package or source tree)."""
    packaged = resources.files("riskscore") / "sample"
    if packaged.is_dir() and (Path(str(packaged)) / "accounts.parquet").exists():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[3] / "data" / "sample"
    if (source / "accounts.parquet").exists():
        return source
    raise FileNotFoundError(
        "the bundled sample is missing: expected accounts.parquet in the package's sample folder "
        f"or in {source}; regenerate it with riskscore.datasets.write_sample()"
    )


def load_sample(*, with_truth: bool = False) -> EventData | tuple[EventData, pd.DataFrame]:
    """Load the bundled sample portfolio (``data/sample/``).

    About 2,000 accounts over 24 months, made by ``make_portfolio(**SAMPLE_CALL)``.

    Parameters
    ----------
    with_truth : bool, default=False
        Also return the generator's ``truth`` table (behaviour type and shock
        dates per account), e.g. to check what a segmentation finds.

    Examples
    --------
    >>> events = load_sample()
    >>> len(events.accounts)
    2000
    """
    folder = sample_dir()
    events = EventData.from_dir(folder)
    if not with_truth:
        return events
    truth = pd.read_parquet(folder / "truth.parquet").set_index("account_id")
    return events, truth


def write_sample(path: str | os.PathLike[str]) -> Path:
    """Regenerate the bundled sample into ``path``: the tables and ``truth.parquet``.

    ``write_sample("data/sample")`` in the source tree remakes the bundled sample.
    """
    events, truth = make_portfolio(**SAMPLE_CALL)  # type: ignore[arg-type]
    folder = events.to_dir(path, overwrite=True)
    truth.reset_index().to_parquet(folder / "truth.parquet", index=False)
    return folder
