"""riskscore: early warning for consumer credit.

Point-in-time features from repayment and spending history, a calibrated LightGBM
pre-default model, exact TreeSHAP reason codes, and compliant early-outreach
recommendations.
"""

from __future__ import annotations

from riskscore import datasets, features, monitor, segments
from riskscore._version import __version__
from riskscore.batch import BatchResult, FeatureRun, build_features, read_scores, score_batch
from riskscore.data import TABLES, EventData
from riskscore.errors import (
    BatchOutputError,
    BundleIntegrityError,
    DataValidationError,
    NotFittedError,
    PolicyError,
    Problem,
    RiskscoreError,
)
from riskscore.evaluate import EvaluationReport, evaluate
from riskscore.explain import AdditivityError, Explanation
from riskscore.features import FeatureBuilder
from riskscore.labels import make_labels, observation_dates
from riskscore.model import AsOfSplit, RiskModel
from riskscore.outreach import OutreachPolicy, recommend
from riskscore.report import report

__all__ = [
    "TABLES",
    "AdditivityError",
    "AsOfSplit",
    "BatchOutputError",
    "BatchResult",
    "BundleIntegrityError",
    "DataValidationError",
    "EvaluationReport",
    "EventData",
    "Explanation",
    "FeatureBuilder",
    "FeatureRun",
    "NotFittedError",
    "OutreachPolicy",
    "PolicyError",
    "Problem",
    "RiskModel",
    "RiskscoreError",
    "__version__",
    "build_features",
    "datasets",
    "evaluate",
    "features",
    "make_labels",
    "monitor",
    "observation_dates",
    "read_scores",
    "recommend",
    "report",
    "score_batch",
    "segments",
]
