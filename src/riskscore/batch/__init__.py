"""Batch scoring: the whole book in chunks, resumable, never half-written (see :mod:`riskscore.batch.run`)."""

from riskscore.batch.features import FeatureRun, build_features
from riskscore.batch.read import read_scores
from riskscore.batch.run import BatchResult, score_batch

__all__ = ["BatchResult", "FeatureRun", "build_features", "read_scores", "score_batch"]
