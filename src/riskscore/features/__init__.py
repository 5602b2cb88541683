"""Point-in-time feature builders: one module per family, and the builder that runs them."""

from riskscore.features.builder import DEFAULT_PROTECTED, FAMILIES, FeatureBuilder, describe

__all__ = ["DEFAULT_PROTECTED", "FAMILIES", "FeatureBuilder", "describe"]
