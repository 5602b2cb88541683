"""Early-outreach recommendations under a compliance policy and team capacity, with an audit trail.

``OutreachPolicy.load("cn-2026")`` (or ``"us-regf"``, ``"uk-conc"``, or a file
path) gives the rules; :func:`recommend` turns scores and explanations into one
decision per customer (on each of its accounts); :func:`replay` reproduces a
decision from its audit record; :func:`readout` measures what the decisions
achieved against their held-out control group; :class:`Strategy` is the
monthly job (score, explain, recommend) as one callable;
:func:`estimate_effects` turns an experiment into the effect table per action
and segment that the benefit model then uses.
"""

from __future__ import annotations

from riskscore.outreach.audit import AuditError, read_audit, replay
from riskscore.outreach.effects import EffectEstimate, estimate_effects
from riskscore.outreach.messages import Templates
from riskscore.outreach.policy import PROFILES, OutreachPolicy, Rule
from riskscore.outreach.readout import MIN_ARM, MISSING, READOUT_COLUMNS, decisions_frame, readout
from riskscore.outreach.recommend import FLAGS, OUTPUT_COLUMNS, recommend
from riskscore.outreach.strategy import Strategy
from riskscore.outreach.treatments import ACTIONS, Treatments
from riskscore.outreach.uplift import UpliftModel, qini_curve

__all__ = [
    "ACTIONS",
    "FLAGS",
    "MIN_ARM",
    "MISSING",
    "OUTPUT_COLUMNS",
    "PROFILES",
    "READOUT_COLUMNS",
    "AuditError",
    "EffectEstimate",
    "OutreachPolicy",
    "Rule",
    "Strategy",
    "Templates",
    "Treatments",
    "UpliftModel",
    "decisions_frame",
    "estimate_effects",
    "qini_curve",
    "read_audit",
    "readout",
    "recommend",
    "replay",
]
