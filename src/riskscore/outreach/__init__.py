"""Early-outreach recommendations under a compliance policy and team capacity, with an audit trail.

``OutreachPolicy.load("cn-2026")`` (or ``"us-regf"``, ``"uk-conc"``, or a file
path) gives the rules; :func:`recommend` turns scores and explanations into one
decision per account; :func:`replay` reproduces a decision from its audit record.
"""

from __future__ import annotations

from riskscore.outreach.audit import AuditError, read_audit, replay
from riskscore.outreach.messages import Templates
from riskscore.outreach.policy import PROFILES, OutreachPolicy, Rule
from riskscore.outreach.recommend import FLAGS, OUTPUT_COLUMNS, recommend
from riskscore.outreach.treatments import ACTIONS, Treatments

__all__ = [
    "ACTIONS",
    "FLAGS",
    "OUTPUT_COLUMNS",
    "PROFILES",
    "AuditError",
    "OutreachPolicy",
    "Rule",
    "Templates",
    "Treatments",
    "read_audit",
    "recommend",
    "replay",
]
