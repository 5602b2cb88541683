"""Delinquency status at a point in time, shared by the scoring grid and the labels."""

from __future__ import annotations

import numpy as np

from riskscore.data import EventData
from riskscore.features import engine as E
from riskscore.features._base import Context, event_times
from riskscore.features.instalment import Schedule


def sorted_context(events: EventData, code: np.ndarray, as_of: np.ndarray, horizon_seconds: int = 0) -> Context:
    """A context over observations (code, as_of) covering ``as_of + horizon`` on its time line."""
    arrays = [as_of, as_of + np.timedelta64(horizon_seconds, "s"), *event_times(events)]
    timeline = E.Timeline.covering(arrays, margin_seconds=E.DAY)
    offsets = timeline.offsets(as_of)
    order = np.lexsort([offsets, code])
    obs = E.Observations(code[order], offsets[order], order, len(events.accounts))
    return Context(events, obs, timeline, ())


def dpd_at(ctx: Context) -> np.ndarray:
    """Days past due at ``as_of``, per observation in sorted order.

    The latest statement's ``dpd`` before ``as_of``, or the days since the oldest
    instalment still unpaid at ``as_of``, whichever is larger; 0 without any
    repayment history.
    """
    obs = ctx.obs
    dpd = np.zeros(len(obs.code))
    if ctx.events.statements is not None and len(ctx.events.statements):
        st, _code, index = ctx.table("statements", "statement_date")
        last = E.last(st["dpd"].to_numpy(dtype=np.float64), index.start(obs), index.before(obs))
        dpd = np.maximum(dpd, np.nan_to_num(last))
    if ctx.events.installments is not None and len(ctx.events.installments):
        s = Schedule(ctx)
        start, hi = s.index.start(obs), s.index.before(obs)
        first_open = s.first_open(obs, start)
        has_open = first_open < hi
        days = (obs.as_of - s.due[np.minimum(first_open, len(s.due) - 1)]) / E.DAY
        dpd = np.maximum(dpd, np.where(has_open, days, 0.0))
    return dpd
