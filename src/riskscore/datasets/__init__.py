"""Data sets to learn and test on.

A synthetic portfolio with a known generative model (:mod:`~riskscore.datasets.simulator`),
the same portfolio lived month by month under an outreach strategy, with
borrowers who respond to it as a :class:`Response` says
(:mod:`~riskscore.datasets.closed_loop`), the bundled sample
(:mod:`~riskscore.datasets.sample`), and the UCI Taiwan credit-card data as
event tables (:mod:`~riskscore.datasets.taiwan`).
"""

from riskscore.datasets.closed_loop import STRATEGIES, simulate
from riskscore.datasets.dunning import dunning
from riskscore.datasets.response import RESPONSE_ACTIONS, Response
from riskscore.datasets.sample import SAMPLE_CALL, load_sample, sample_dir, write_sample
from riskscore.datasets.simulator import BEHAVIOURS, make_portfolio
from riskscore.datasets.taiwan import TAIWAN_PROTECTED, load_taiwan

__all__ = [
    "BEHAVIOURS",
    "RESPONSE_ACTIONS",
    "SAMPLE_CALL",
    "STRATEGIES",
    "TAIWAN_PROTECTED",
    "Response",
    "dunning",
    "load_sample",
    "load_taiwan",
    "make_portfolio",
    "sample_dir",
    "simulate",
    "write_sample",
]
