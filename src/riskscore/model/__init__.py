"""The model: a calibrated LightGBM probability of default, its credit scales and its bundle.

``RiskModel`` lives in :mod:`riskscore.model.estimator`; its parts beside it.
"""

from riskscore.model.bundle import BUNDLE_VERSION
from riskscore.model.calibration import PD_FLOOR
from riskscore.model.estimator import RiskModel
from riskscore.model.params import DEFAULT_PARAMS
from riskscore.model.scales import DEFAULT_BANDS, DEFAULT_POINTS
from riskscore.model.selection import AsOfSplit

__all__ = ["BUNDLE_VERSION", "DEFAULT_BANDS", "DEFAULT_PARAMS", "DEFAULT_POINTS", "PD_FLOOR", "AsOfSplit", "RiskModel"]
