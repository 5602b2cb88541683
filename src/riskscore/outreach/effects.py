"""Learned effects: the read-out of an experiment turned into the effect table the benefit model uses.

``recommend`` ranks contacts by ``PD x exposure x LGD x effect(action) - cost``,
where ``effect`` is the relative cut in the chance of falling behind that a
contact made causes. :func:`estimate_effects` measures it per action and
segment from the held-out control group. The read-out's uplift is an
intention-to-treat figure: under capacity, part of the treated arm was never
contacted. With ``c`` the share contacted and ``r_u`` the rate among the
treated not contacted (who were untouched, like the control), the effect of a
contact on those it reached is the uplift over their rate without it (Bloom's
estimator with one-sided non-delivery): ``(rate_control - rate_treated) /
(rate_control - (1 - c) r_u)``, which is ``uplift / rate_control`` when every
treated account was contacted. A cell with little data is shrunk towards its
action's pooled estimate (empirical Bayes: the weight of a cell is
``tau^2 / (tau^2 + se^2)``, ``tau^2`` the spread of the cells' true effects
estimated as in a random-effects meta-analysis, DerSimonian-Laird); a cell without enough data takes the
pooled estimate; an action without enough data is left out, so its assumed
effect stays in force. The action's pooled estimate itself is weighed against
the effect believed before the experiment (the shipped assumption by default)
by precision, so a noisy experiment moves the table only as far as its data
support. Effects are clipped to [0, 1]: a treatment that does
not help has effect 0, and then only its cost counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from riskscore.outreach.readout import readout
from riskscore.segments import SEGMENTS

__all__ = ["EffectEstimate", "estimate_effects"]


@dataclass(frozen=True)
class EffectEstimate:
    """The learned effect table and how each number was found.

    ``table`` is ``{action: {segment: effect, ..., "default": pooled}}``, what
    ``recommend(costs={"effect": table})``, ``Strategy(costs=...)`` and a
    treatments file's ``[costs.effect]`` accept. ``frame`` has one row per
    action and segment: ``treated``, ``control``, ``delivered``,
    ``rate_control``, ``uplift``, ``measured`` (relative effect per contact
    of the cell alone), ``se``,
    ``pooled``, ``weight`` (of the cell against the pooled estimate),
    ``effect``, ``source`` (``cell``, ``pooled`` or ``assumed``) and
    ``effect_low``, ``effect_high``: the interval of the learned effect at the
    read-out's confidence (the shrunk value's standard error from its shares of
    the cell's and the pooled estimate's; clipped to [0, 1]). An interval that
    holds the assumed effect says the experiment has not yet shown it wrong.
    """

    table: dict[str, dict[str, float]]
    frame: pd.DataFrame

    def costs(self) -> dict[str, Any]:
        """``{"effect": table}``: the ``costs`` argument of ``recommend`` and ``Strategy``."""
        return {"effect": {a: dict(v) for a, v in self.table.items()}}


def estimate_effects(
    decisions: Any,
    events: Any,
    horizon: str = "90D",
    *,
    dpd_threshold: int = 30,
    confidence: float = 0.95,
    prior: Any = "assumed",
    prior_sd: float = 0.15,
) -> EffectEstimate:
    """The effect of each action per segment, measured against the control group and shrunk where cells are small.

    Parameters
    ----------
    decisions, events, horizon, dpd_threshold, confidence
        As for :func:`~riskscore.outreach.readout` (decisions need a
        ``segment`` column and a control group).
    prior : "assumed", Treatments, mapping or None, default="assumed"
        What each action's effect was believed to be before the experiment:
        the shipped treatments' effects (``"assumed"``), a ``Treatments``, or
        ``{action: effect}``. The action's pooled estimate is combined with it
        by precision (a normal prior of standard deviation ``prior_sd``), so a
        noisy experiment moves the table only as far as its data support;
        ``None`` takes the experiment alone.
    prior_sd : float, default=0.15
        How uncertain the prior is (on the relative-effect scale).

    Returns
    -------
    EffectEstimate
        ``.table`` for ``costs={"effect": ...}``; ``.frame`` the workings.
    """
    if not isinstance(decisions, (pd.DataFrame, str)) and not hasattr(decisions, "__fspath__"):
        raise TypeError(f"decisions must be a DataFrame or an audit log path; got {type(decisions).__name__}")
    cells = readout(decisions, events, horizon, by=("action", "segment"), dpd_threshold=dpd_threshold,
                    confidence=confidence)  # fmt: skip
    pooled = readout(decisions, events, horizon, by=("action",), dpd_threshold=dpd_threshold, confidence=confidence)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    believed = _prior(prior)
    if not (isinstance(prior_sd, (int, float)) and prior_sd > 0 and math.isfinite(prior_sd)):
        raise ValueError(f"prior_sd must be a positive number; got {prior_sd!r}")
    rows: list[dict[str, Any]] = []
    table: dict[str, dict[str, float]] = {}
    for action in [a for a in pooled.index if a != "all"]:
        p = pooled.loc[action]
        mine = cells.index.get_level_values("action") == action
        part = cells.loc[mine].droplevel("action")
        part = part.loc[[s for s in part.index if s in SEGMENTS]]
        measured, se = _relative(part, z)
        if not bool(p["enough"]) or not p["rate_control"] > 0:
            for i, segment in enumerate(part.index):
                rows.append(_row(action, segment, part.loc[segment], measured[i], se[i], math.nan, math.nan,
                                 math.nan, "assumed", math.nan, math.nan))  # fmt: skip
            continue
        pool_base = float(_base(pooled.loc[[action]])[0])
        pool_effect = float(p["uplift"]) / pool_base if pool_base > 0 else 0.0
        pool_se = (float(p["ci_high"]) - float(p["ci_low"])) / (2 * z) / pool_base if pool_base > 0 else math.inf
        if action in believed:  # the experiment's pooled estimate, weighed against the prior by precision
            w = prior_sd**2 / (prior_sd**2 + pool_se**2) if math.isfinite(pool_se) else 0.0
            pool_effect = believed[action] + w * (pool_effect - believed[action])
            # Its uncertainty after the prior: the precision-weighted combination's standard error.
            pool_se = math.sqrt(w) * pool_se if math.isfinite(pool_se) else prior_sd
        enough = part["enough"].to_numpy(dtype=bool)
        tau2 = _between_variance(measured[enough], se[enough])
        entry: dict[str, float] = {"default": _clip(pool_effect)}
        for i, segment in enumerate(part.index):
            if enough[i] and np.isfinite(measured[i]):
                weight = tau2 / (tau2 + se[i] ** 2) if tau2 + se[i] ** 2 > 0 else 0.0
                value, source = pool_effect + weight * (measured[i] - pool_effect), "cell"
            else:
                weight, value, source = 0.0, pool_effect, "pooled"
            # The shrunk value's standard error: its share of the cell's and of the pooled estimate's.
            spread = math.sqrt((weight * se[i]) ** 2 + ((1 - weight) * pool_se) ** 2) if weight > 0 else pool_se
            entry[str(segment)] = _clip(value)
            rows.append(_row(action, segment, part.loc[segment], measured[i], se[i], pool_effect, weight,
                             _clip(value), source, _clip(value - z * spread), _clip(value + z * spread)))  # fmt: skip
        table[str(action)] = entry
    frame = pd.DataFrame(rows, columns=list(_COLUMNS)).set_index(["action", "segment"])
    return EffectEstimate(table=table, frame=frame)


_COLUMNS = ("action", "segment", "treated", "control", "delivered", "rate_control", "uplift", "measured", "se",
            "pooled", "weight", "effect", "source", "effect_low", "effect_high")  # fmt: skip


def _prior(prior: Any) -> dict[str, float]:
    """The believed effect per action: the shipped table's, a Treatments', a mapping's, or none."""
    from riskscore.outreach.treatments import Treatments

    if prior is None:
        return {}
    if isinstance(prior, str) and prior == "assumed":
        prior = Treatments.load()
    if isinstance(prior, Treatments):
        return {a: prior.effect_of(a, "default") for a in prior.effect}
    if isinstance(prior, dict):
        bad = {k: v for k, v in prior.items() if not (isinstance(v, (int, float)) and 0 <= v <= 1)}
        if bad:
            raise ValueError(f"prior effects must be numbers in [0, 1]; got {bad}")
        return {str(k): float(v) for k, v in prior.items()}
    raise ValueError(f"prior must be 'assumed', a Treatments, a mapping of effects or None; got {prior!r}")


def _relative(part: pd.DataFrame, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's relative effect per contact made and its standard error (delta method, the base held fixed)."""
    uplift = part["uplift"].to_numpy(dtype=np.float64)
    base = _base(part)
    se_abs = (part["ci_high"].to_numpy(dtype=np.float64) - part["ci_low"].to_numpy(dtype=np.float64)) / (2 * z)
    with np.errstate(divide="ignore", invalid="ignore"):
        measured = np.where(base > 0, uplift / base, np.nan)
        se = np.where(base > 0, se_abs / base, np.nan)
    return measured, se


def _base(part: pd.DataFrame) -> np.ndarray:
    """The contacted accounts' rate without the contact: ``rate_control - (1 - delivered) x rate_undelivered``."""
    rate = part["rate_control"].to_numpy(dtype=np.float64)
    missed = 1.0 - part["delivered"].to_numpy(dtype=np.float64)
    undelivered = np.nan_to_num(part["rate_undelivered"].to_numpy(dtype=np.float64), nan=0.0)
    return np.asarray(rate - np.where(missed > 0, missed * undelivered, 0.0))


def _between_variance(measured: np.ndarray, se: np.ndarray) -> float:
    """DerSimonian-Laird spread of the cells' true effects: the excess of Cochran's Q over its degrees of freedom."""
    ok = np.isfinite(measured) & np.isfinite(se) & (se > 0)
    if ok.sum() < 2:
        return 0.0
    w = 1.0 / se[ok] ** 2
    mean = float((w * measured[ok]).sum() / w.sum())
    q = float((w * (measured[ok] - mean) ** 2).sum())
    scale = float(w.sum() - (w**2).sum() / w.sum())
    return max(0.0, (q - (ok.sum() - 1)) / scale) if scale > 0 else 0.0


def _clip(value: float) -> float:
    return float(min(1.0, max(0.0, value))) if math.isfinite(value) else 0.0


def _row(action: str, segment: Any, cell: pd.Series, measured: Any, se: Any, pooled: float, weight: float,
         effect: float, source: str, low: float, high: float) -> dict[str, Any]:  # fmt: skip
    return {
        "action": action,
        "segment": str(segment),
        "treated": int(cell["treated"]),
        "control": int(cell["control"]),
        "delivered": float(cell["delivered"]),
        "rate_control": float(cell["rate_control"]),
        "uplift": float(cell["uplift"]),
        "measured": float(measured),
        "se": float(se),
        "pooled": pooled,
        "weight": weight,
        "effect": effect,
        "source": source,
        "effect_low": low,
        "effect_high": high,
    }
