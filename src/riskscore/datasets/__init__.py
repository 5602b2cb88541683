"""Data sets to learn and test on.

A synthetic portfolio with a known generative model (:mod:`~riskscore.datasets.simulator`),
the bundled sample made from it (:mod:`~riskscore.datasets.sample`), and the UCI
Taiwan credit-card data as event tables (:mod:`~riskscore.datasets.taiwan`).
"""

from riskscore.datasets.sample import SAMPLE_CALL, load_sample, sample_dir, write_sample
from riskscore.datasets.simulator import BEHAVIOURS, make_portfolio
from riskscore.datasets.taiwan import TAIWAN_PROTECTED, load_taiwan

__all__ = [
    "BEHAVIOURS",
    "SAMPLE_CALL",
    "TAIWAN_PROTECTED",
    "load_sample",
    "load_taiwan",
    "make_portfolio",
    "sample_dir",
    "write_sample",
]
