"""A lender's monthly outreach job as one callable: score, explain and recommend at a moment.

``Strategy(model, policy, ...)(events, now)`` does what a scheduled job does on
the events known at ``now``: the accounts open and current at ``now``, their
point-in-time features (the model's own builder), scores, explanations of the
bands that call for contact, and :func:`~riskscore.outreach.recommend`. It is
what :func:`riskscore.datasets.simulate` calls at each month start, and what a
team runs on its own book.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from riskscore.labels import observation_dates
from riskscore.outreach.policy import OutreachPolicy
from riskscore.outreach.recommend import recommend
from riskscore.outreach.treatments import Treatments

__all__ = ["Strategy"]


class Strategy:
    """Score, explain and recommend at ``now``, as a lender's monthly job would.

    Parameters
    ----------
    model : RiskModel
        A fitted model whose manifest holds its feature builder (fit with ``builder=``).
    policy : OutreachPolicy, profile name or path
    capacity : dict, optional
        Contacts per channel (and ``human_review``) at each decision.
    control_share : float, default=0.05
        Share of the eligible customers held out at each decision. The draw is
        made afresh at every decision (from ``seed`` and the decision's date),
        so each month's control group is comparable with that month's treated.
    costs, treatments
        As for :func:`~riskscore.outreach.recommend`: ``costs={"effect": ...}``
        may be an effect table per action or per action and segment (such as
        :func:`~riskscore.outreach.estimate_effects` gives).
    seed : int, default=0
    **options
        Any other keyword of ``recommend`` (``lang``, ``lender``, ``templates``,
        ``control_capacity``).

    Notes
    -----
    ``job = Strategy(model, "us-regf", capacity={"call": 200})`` then
    ``job(events, pd.Timestamp("2024-06-01", tz="America/New_York"))`` gives the
    decisions of that morning; ``riskscore.datasets.simulate(job, ...)`` calls it
    every month (README, notebook 05).
    """

    def __init__(
        self,
        model: Any,
        policy: OutreachPolicy | str | Path,
        capacity: Mapping[str, int] | None = None,
        control_share: float = 0.05,
        costs: Mapping[str, Any] | None = None,
        treatments: Treatments | str | Path | Mapping[str, Any] | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        if getattr(model, "manifest_", None) is None:
            raise ValueError("Strategy needs a fitted RiskModel (fit it first, with builder=)")
        if model.builder_ is None:
            raise ValueError(
                "the model's manifest holds no feature builder: fit it with builder=the FeatureBuilder that made X, "
                "so the strategy builds the same features at each decision"
            )
        self.model = model
        self.policy = policy if isinstance(policy, OutreachPolicy) else OutreachPolicy.load(policy)
        table = treatments if isinstance(treatments, Treatments) else Treatments.load(treatments)
        self.treatments = table.with_costs(costs)
        self.capacity = None if capacity is None else dict(capacity)
        self.control_share = control_share
        self.seed = int(seed)
        self.options = options
        self.builder = model.builder_

    def __call__(self, events: Any, now: Any) -> pd.DataFrame:
        """The ``recommend`` frame for the accounts open and current at ``now`` (tz-aware)."""
        now_ts = pd.Timestamp(now)
        if now_ts.tzinfo is None:
            raise ValueError(f"now must be a tz-aware timestamp; got {now!r}")
        day = now_ts.tz_localize(None).normalize()
        obs = observation_dates(events, start=day, end=day)
        if obs.empty:
            return pd.DataFrame(columns=["account_id", "action", "channel", "control", "treatment", "send_after"])
        features = self.builder.transform(events, obs)
        scores = self.model.score(features)
        contact = scores["band"].isin(self.treatments.contacted_bands(scores["band"].unique())).to_numpy()
        explanation = self.model.explain(features.loc[scores.index[contact]]) if contact.any() else None
        # A fresh control draw at every decision: seed and month together.
        seed = self.seed * 10_007 + now_ts.year * 12 + now_ts.month
        return recommend(
            scores,
            explanation,
            events,
            self.policy,
            now=now_ts,
            capacity=self.capacity,
            control_share=self.control_share,
            seed=seed,
            treatments=self.treatments,
            **self.options,
        )
