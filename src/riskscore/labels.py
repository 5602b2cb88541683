"""The scoring grid and the target: which (account, as_of) pairs to score, and what happened next.

Observations are (``account_id``, ``as_of``) pairs. The default target (DESIGN.md
section 2): among accounts current at ``as_of``, does the account reach 30 or more
days past due within the next 90 days, ``[as_of, as_of + 90 days)``?
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.features import engine as E
from riskscore.features.instalment import Schedule
from riskscore.features.observations import prepare_observations
from riskscore.features.status import dpd_at, sorted_context

__all__ = ["horizon_delta", "make_labels", "observation_dates"]


def observation_dates(
    events: EventData,
    freq: str = "MS",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    eligible: Literal["current", "all"] = "current",
) -> pd.DataFrame:
    """The scoring grid: every account open at each date of a regular calendar.

    Parameters
    ----------
    events : EventData
    freq : str, default="MS"
        A pandas frequency for the ``as_of`` dates (``"MS"``: first day of each month).
    start, end : date-like, optional
        First and last possible ``as_of``. Default: from the first event date to
        :attr:`EventData.data_end`.
    eligible : {"current", "all"}, default="current"
        ``"current"`` keeps observations where the account is open and not
        delinquent at ``as_of`` (0 days past due, from the latest statement
        before ``as_of`` and the instalments unpaid at ``as_of``): the
        pre-delinquency population. ``"all"`` keeps every open account.

    Returns
    -------
    DataFrame
        Columns ``account_id`` and ``as_of``, sorted by ``account_id`` then ``as_of``.

    Notes
    -----
    An account is open at ``as_of`` when it was opened before ``as_of`` and, if
    ``accounts`` has a ``close_date``, not closed before it.

    Examples
    --------
    >>> import riskscore as rs
    >>> events = rs.datasets.load_sample()
    >>> obs = rs.observation_dates(events, start="2024-01-01", end="2024-03-01")
    >>> sorted(obs["as_of"].dt.strftime("%Y-%m-%d").unique())
    ['2024-01-01', '2024-02-01', '2024-03-01']
    """
    if eligible not in ("current", "all"):
        raise ValueError(f"eligible must be 'current' or 'all'; got {eligible!r}")
    if start is None:
        firsts = [
            df[col].min()
            for name, col in (
                ("statements", "statement_date"),
                ("installments", "due_date"),
                ("transactions", "timestamp"),
            )
            if (df := getattr(events, name)) is not None and len(df)
        ]
        if not firsts:
            raise ValueError(
                "observation_dates: the events hold no statement, instalment or transaction to start the "
                "calendar from; give start="
            )
        start = min(firsts)
    grid = pd.date_range(
        pd.Timestamp(start),
        pd.Timestamp(end) if end is not None else events.data_end,
        freq=freq,
        normalize=True,
    )
    accounts = events.accounts
    n_acc, n_dates = len(accounts), len(grid)
    code = np.repeat(np.arange(n_acc), n_dates)
    as_of = np.tile(grid.to_numpy().astype("datetime64[ns]"), n_acc)
    opened = accounts["open_date"].to_numpy()[code]
    keep = opened < as_of
    if "close_date" in accounts.columns:
        closed = accounts["close_date"].to_numpy()[code]
        keep &= np.isnat(closed) | (closed >= as_of)
    code, as_of = code[keep], as_of[keep]
    if eligible == "current" and len(code):
        ctx = sorted_context(events, code, as_of)
        dpd = np.empty(len(code))
        dpd[ctx.obs.order] = dpd_at(ctx)
        code, as_of = code[dpd == 0], as_of[dpd == 0]
    return pd.DataFrame({"account_id": accounts["account_id"].to_numpy()[code], "as_of": as_of})


def horizon_delta(horizon: object, name: str = "horizon") -> pd.Timedelta:
    """``horizon`` as a Timedelta: a positive whole number of days (``"90D"``, ``pd.Timedelta(days=90)``)."""
    try:
        h: pd.Timedelta | None = pd.Timedelta(horizon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        h = None
    if h is None or pd.isna(h) or h <= pd.Timedelta(0) or h % pd.Timedelta(days=1):
        raise ValueError(f"{name} must be a positive whole number of days such as '90D'; got {horizon!r}")
    return h


def make_labels(
    events: EventData,
    obs: object,
    horizon: str = "90D",
    dpd_threshold: int = 30,
    data_end: str | pd.Timestamp | None = None,
) -> pd.Series:
    """Whether each observation reaches ``dpd >= dpd_threshold`` within ``[as_of, as_of + horizon)``.

    A statement's ``dpd`` counts on its ``statement_date``. An instalment counts
    from the day it has been unpaid for ``dpd_threshold`` days (``due_date +
    dpd_threshold``), also when it fell due before ``as_of``, until the day it is
    paid in full. An observation whose window is not complete in the data
    (``as_of + horizon - 1 day > data_end``) gets NA, never 0.

    Parameters
    ----------
    events : EventData
    obs : DataFrame
        Columns ``account_id``, ``as_of`` (or an object indexed by them, such as
        a feature matrix).
    horizon : str, default="90D"
        Length of the performance window, whole days.
    dpd_threshold : int, default=30
    data_end : date-like, optional
        The last date the data covers. Default: :attr:`EventData.data_end`.

    Returns
    -------
    Series
        Nullable ``Int8`` (1, 0 or NA) with the index of ``obs``, named like
        ``dpd30_90d``.

    Examples
    --------
    >>> import riskscore as rs
    >>> events = rs.datasets.load_sample()
    >>> obs = rs.observation_dates(events, start="2024-01-01", end="2024-01-01")
    >>> y = rs.make_labels(events, obs)
    >>> y.name, y.index.equals(obs.index), int(y.isna().sum())
    ('dpd30_90d', True, 0)
    """
    h = horizon_delta(horizon)
    if int(dpd_threshold) != dpd_threshold or dpd_threshold < 1:
        raise ValueError(f"dpd_threshold must be a positive whole number of days; got {dpd_threshold!r}")
    end = pd.Timestamp(data_end) if data_end is not None else events.data_end
    code, as_of, built = prepare_observations(events, obs)
    index: pd.Index = built
    if isinstance(obs, pd.MultiIndex):
        index = obs
    elif isinstance(obs, (pd.DataFrame, pd.Series)):
        index = obs.index
    h_s = int(h.total_seconds())
    thr_s = int(dpd_threshold) * E.DAY
    ctx = sorted_context(events, code, as_of, horizon_seconds=h_s + thr_s)
    o = ctx.obs
    hit = np.zeros(len(o.code), dtype=bool)
    if events.statements is not None and len(events.statements):
        st = events.statements
        bad = st["dpd"].to_numpy() >= dpd_threshold
        code_st = E.account_codes(events.accounts["account_id"], st["account_id"])[bad]
        when = ctx.timeline.offsets(st["statement_date"].to_numpy())[bad]
        table = E.SortedTable(code_st, when, o.n_accounts, ctx.timeline.span)
        hit |= table.before(o, -h_s) > table.before(o)
    if events.installments is not None and len(events.installments):
        s = Schedule(ctx)
        # Days with dpd >= threshold: [due + threshold, full payment), when not empty.
        reach = s.due + thr_s
        span = ctx.timeline.span
        ends = np.where(s.full_paid >= span - 1, span - 1, s.full_paid)
        reached = ends > reach
        # Among instalments reaching the threshold before as_of + horizon, is any
        # still unpaid after as_of? Their reach dates are sorted with due dates.
        reach_index = E.SortedTable(s.code, np.minimum(reach, span - 1), o.n_accounts, span)
        k = reach_index.before(o, -h_s)
        best = (
            np.maximum.accumulate(s.code.astype(np.int64) * span + np.where(reached, ends, 0))
            if len(s.code)
            else s.code
        )
        start = reach_index.start(o)
        latest_end = (
            np.where(k > start, best[np.maximum(k - 1, 0)] - o.code * span, -1) if len(s.code) else -np.ones(len(k))
        )
        hit |= latest_end > o.as_of
    complete = as_of + np.timedelta64(h_s - E.DAY, "s") <= end.to_datetime64()
    values = np.empty(len(hit), dtype=bool)
    values[o.order] = hit
    label = pd.array(np.where(complete, values.astype(np.int8), 0), dtype="Int8")
    label[np.flatnonzero(~complete)] = pd.NA
    name = f"dpd{int(dpd_threshold)}_{h.days}d"
    return pd.Series(label, index=index, name=name)
