"""What every feature family shares: the catalogue entry and the computation context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.features.engine import Observations, SortedTable, Timeline, account_codes
from riskscore.features.names import feature_name


@dataclass(frozen=True)
class Window:
    """A look-back window: ``label`` as used in names (``"90d"``), length in seconds."""

    label: str
    seconds: int

    @property
    def days(self) -> float:
        return self.seconds / 86_400


@dataclass(frozen=True)
class FitOptions:
    """What the builder tells every family's ``fit(events, options)``.

    ``excluded``: account columns never to use (protected, operational);
    ``statement_columns``: the lender's own statement fields to summarise
    (None: every usable one);
    ``essential_categories``: spending categories counted as essential (None:
    the family's default).
    """

    excluded: frozenset[str]
    statement_columns: tuple[str, ...] | None = None
    essential_categories: frozenset[str] | None = None


@dataclass(frozen=True)
class FeatureSpec:
    """One catalogue entry.

    ``direction`` is the expected risk direction: +1 when a higher value should
    mean higher risk, -1 when lower risk, 0 when no direction is expected. It is
    what monotone constraints are built from. ``group`` is the reason group that
    explanations sum contributions over.
    """

    name: str
    family: str
    window: str | None
    description: str
    direction: int
    group: str


class SpecList:
    """Collects a family's catalogue entries under one naming grammar.

    ``add("dpd_max", window, "highest days past due {w}", +1, "recent_delinquency")``
    names the feature ``<prefix>_dpd_max_<window>`` and fills ``{w}`` with the
    window phrase (``in the last 90 days``).
    """

    def __init__(self, prefix: str, family: str, phrase: str = "in the last {days} days") -> None:
        self.prefix = prefix
        self.family = family
        self.phrase = phrase
        self.specs: list[FeatureSpec] = []

    def add(self, name: str, window: Window | None, description: str, direction: int, group: str) -> None:
        full = feature_name(self.prefix, name, window.label if window else None)
        text = description.format(w=self.phrase.format(days=window.label[:-1]) if window else "")
        self.specs.append(
            FeatureSpec(full, self.family, window.label if window else None, text.strip(), direction, group)
        )


def event_times(events: EventData) -> list[np.ndarray]:
    """Every time column of the event data: what a time line must cover."""
    arrays = [events.accounts["open_date"].to_numpy()]
    for name, cols in (
        ("statements", ("statement_date",)),
        ("installments", ("due_date", "paid_date")),
        ("transactions", ("timestamp",)),
    ):
        df = getattr(events, name)
        if df is not None:
            arrays.extend(df[c].to_numpy() for c in cols)
    return arrays


@dataclass
class Context:
    """Inputs of one transform: the events, the sorted observations, the time line."""

    events: EventData
    obs: Observations
    timeline: Timeline
    windows: tuple[Window, ...]
    fitted: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str, time_column: str) -> tuple[pd.DataFrame, np.ndarray, SortedTable]:
        """The table, its account codes and its row index on the time line."""
        df = getattr(self.events, name)
        code = account_codes(self.events.accounts["account_id"], df["account_id"])
        index = SortedTable(
            code, self.timeline.offsets(df[time_column].to_numpy()), self.obs.n_accounts, self.timeline.span
        )
        return df, code, index

    @property
    def max_window(self) -> Window:
        return max(self.windows, key=lambda w: w.seconds)


def blank_where(values: dict[str, Any], no_history: np.ndarray, keep: str) -> dict[str, Any]:
    """NaN for observations without any history in the family, except the count ``keep``.

    A categorical (a lender's code) is already empty where there is no history.
    """
    for name, column in values.items():
        if isinstance(column, pd.Categorical):
            continue
        column = np.asarray(column, dtype=np.float64)  # counts may come out as integers
        if name != keep:
            column[no_history] = np.nan
        values[name] = column
    return values
