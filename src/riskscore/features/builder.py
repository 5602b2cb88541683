"""`FeatureBuilder`: every feature family, point in time, in one scikit-learn-style step."""

from __future__ import annotations

import itertools
import logging
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from riskscore.data import EventData
from riskscore.errors import DataValidationError, NotFittedError, Problem
from riskscore.features import account, customer, instalment, repayment, spending
from riskscore.features import engine as E
from riskscore.features._base import Context, FeatureSpec, FitOptions, Window, event_times
from riskscore.features.extra import check_directions
from riskscore.features.names import statement_extra, transaction_extra, window_days
from riskscore.features.observations import prepare_observations

__all__ = ["DEFAULT_PROTECTED", "FAMILIES", "FeatureBuilder", "describe"]

logger = logging.getLogger(__name__)

_PARALLEL_MIN_ROWS = 200_000  # below this, one piece: threads would cost more than they save
_PARALLEL_PIECES = 16

FAMILIES: dict[str, ModuleType] = {
    "repayment": repayment,
    "instalment": instalment,
    "spending": spending,
    "account": account,
    "customer": customer,
}
"""The feature families, by name, in output order."""

DEFAULT_PROTECTED: tuple[str, ...] = (
    "sex",
    "gender",
    "age",
    "date_of_birth",
    "dob",
    "birth_date",
    "birthdate",
    "birth_year",
    "marital_status",
    "marriage",
    "married",
    "race",
    "ethnicity",
    "ethnic_group",
    "religion",
    "nationality",
    "national_origin",
    "citizenship",
    "disability",
    "pregnancy",
    "sexual_orientation",
)
"""Column names treated as protected attributes unless the caller says otherwise
(matched case-insensitively, ignoring separators: ``Date-Of-Birth`` matches)."""


def _norm(name: object) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _parse_window(value: object) -> Window:
    try:
        delta = pd.Timedelta(str(value))
    except ValueError as exc:
        raise ValueError(f"windows must be durations such as '90D'; got {value!r}") from exc
    seconds = int(delta.total_seconds())
    if seconds <= 0 or seconds % 86_400:
        raise ValueError(f"windows must be a positive whole number of days such as '90D'; got {value!r}")
    return Window(f"{seconds // 86_400}d", seconds)


class FeatureBuilder(BaseEstimator):  # type: ignore[misc]
    """Point-in-time features for (``account_id``, ``as_of``) observations.

    Every feature of an observation uses only events known strictly before its
    ``as_of`` (DESIGN.md section 2): statements dated before it, instalments due
    before it and payments made before it, transactions stamped before it.

    Parameters
    ----------
    windows : sequence of str, default=("30D", "90D", "180D", "365D")
        Look-back windows, whole days. Windowed features are named with the
        window as a suffix: ``stmt_dpd_max_90d``.
    families : sequence of str, optional
        Families to build, from ``"repayment"``, ``"instalment"``, ``"spending"``,
        ``"account"``. Default: every family whose table is present at fit.
    protected : sequence of str, optional
        Column names of ``accounts`` that are protected attributes. Default:
        :data:`DEFAULT_PROTECTED`. The event data's own ``protected`` columns are
        always added.
    allow_protected : sequence of str, default=()
        Protected columns the caller explicitly allows as features.
    essential_categories : sequence of str, optional
        Transaction categories counted as essential spending. Default:
        :data:`riskscore.features.spending.ESSENTIAL_CATEGORIES`.
    n_jobs : int, optional
        Threads for ``transform``: ``None`` or -1 uses every core, 1 runs
        serially (e.g. inside a process pool). Accounts are split into ranges;
        the result does not depend on ``n_jobs``.
    statement_columns : sequence of str, optional
        The lender's own columns of ``statements`` (a status code, fees, ...)
        to summarise as ``stmt_extra_<column>_*``; by default every column
        outside the data contract that is not protected, an identifier, a
        personal detail or free text. Numbers: latest and previous value,
        their change, and the mean, minimum and maximum per window; text
        codes with few levels: the latest level and, per window, the
        statements with each level. ``()`` uses none. The lender's own
        ``transactions`` columns are summarised per window as
        ``txn_extra_<column>_*`` (numbers: sum and mean; codes: the
        transactions with each level).
    directions : dict, optional
        The expected risk direction of the lender's own numeric columns, by
        ``"<table>.<column>"`` (or a bare column, for every table using it):
        +1 when a higher value means higher risk, -1 lower, 0 none (the
        default for every own column). Their level features (latest,
        previous, window mean, min, max, sum) get that ``direction`` in the
        catalogue, so the model's monotone constraints may use it; a key that
        names no numeric own column in use is an error.

    Attributes
    ----------
    catalogue_ : DataFrame
        One row per feature (index ``feature``): ``family``, ``window``,
        ``description``, ``direction`` (expected risk direction +1/-1/0) and
        ``group`` (reason group).
    families_ : tuple of str
        The families built.
    excluded_ : dict
        Account columns not used as features, with the reason.
    feature_names_in_ : not set (the input is event data, not a matrix).

    Examples
    --------
    >>> import riskscore as rs
    >>> events = rs.datasets.load_sample()
    >>> obs = rs.observation_dates(events, start="2024-06-01", end="2024-06-01")
    >>> X = rs.FeatureBuilder(windows=("90D",)).fit_transform(events, obs)
    >>> X.index.names
    FrozenList(['account_id', 'as_of'])
    >>> "stmt_dpd_max_90d" in X.columns
    True
    """

    def __init__(
        self,
        windows: Sequence[str] = ("30D", "90D", "180D", "365D"),
        families: Sequence[str] | None = None,
        protected: Sequence[str] | None = None,
        allow_protected: Sequence[str] = (),
        essential_categories: Sequence[str] | None = None,
        n_jobs: int | None = None,
        statement_columns: Sequence[str] | None = None,
        directions: Mapping[str, int] | None = None,
    ) -> None:
        self.windows = windows
        self.families = families
        self.protected = protected
        self.allow_protected = allow_protected
        self.essential_categories = essential_categories
        self.n_jobs = n_jobs
        self.statement_columns = statement_columns
        self.directions = directions

    # ----------------------------------------------------------------- fit

    def _windows(self) -> tuple[Window, ...]:
        if isinstance(self.windows, str) or not isinstance(self.windows, Iterable):
            raise ValueError(f"windows must be a sequence such as ('30D', '90D'); got {self.windows!r}")
        parsed = sorted({_parse_window(w) for w in self.windows}, key=lambda w: w.seconds)
        if not parsed:
            raise ValueError("windows must not be empty")
        return tuple(parsed)

    def fit(self, events: EventData, obs: object = None, y: object = None) -> FeatureBuilder:
        """Learn the feature set from the event data.

        Decides the families (from the tables present), which account columns
        are passed through, and the categorical levels. ``obs`` and ``y`` are
        accepted for pipeline compatibility and not used.
        """
        if not isinstance(events, EventData):
            raise TypeError(f"fit expects riskscore.EventData; got {type(events).__name__}")
        windows = self._windows()
        wanted = list(FAMILIES) if self.families is None else list(self.families)
        unknown = [f for f in wanted if f not in FAMILIES]
        if unknown:
            raise ValueError(f"families must be among {list(FAMILIES)}; got {unknown}")
        families = []
        for name in FAMILIES:
            if name not in wanted:
                continue
            table = getattr(events, FAMILIES[name].TABLE)
            applies = getattr(FAMILIES[name], "applies", None)
            if applies is not None and not applies(events):
                if self.families is not None:
                    raise DataValidationError(
                        [Problem("accounts", "customer_id", "required_column",
                                 f"the {name} family needs customer ids, with a customer of two or more accounts")]
                    )  # fmt: skip
                logger.info("no customer holds two accounts: the %s family is skipped", name)
                continue
            if table is None:
                if self.families is not None:
                    raise DataValidationError(
                        [Problem(FAMILIES[name].TABLE, None, "required_table", f"the {name} family needs this table")]
                    )
                logger.info("no %s table: the %s family is skipped", FAMILIES[name].TABLE, name)
                continue
            families.append(name)

        excluded = self._excluded(events)
        essential = (
            None if self.essential_categories is None else frozenset(c.lower() for c in self.essential_categories)
        )
        fitted: dict[str, dict[str, Any]] = {}
        for name in families:
            chosen = None if self.statement_columns is None else tuple(self.statement_columns)
            options = FitOptions(frozenset(excluded), chosen, essential)
            fitted[name] = FAMILIES[name].fit(events, options)
            for col, why in fitted[name].get("skipped", {}).items():  # columns a family cannot use
                excluded[col] = why
        # The numeric own columns each family turns into features, by table: what directions may name.
        own = {
            f: key for f, key in (("repayment", "extra"), ("spending", "extra"), ("account", "numeric")) if f in fitted
        }
        declared = check_directions(
            dict(self.directions or {}), {FAMILIES[f].TABLE: fitted[f][k] for f, k in own.items()}
        )
        for f in own:
            if declared[FAMILIES[f].TABLE]:
                fitted[f]["directions"] = declared[FAMILIES[f].TABLE]
        return self._set_fitted(windows, tuple(families), fitted, excluded)

    def _set_fitted(
        self,
        windows: tuple[Window, ...],
        families: tuple[str, ...],
        fitted: dict[str, dict[str, Any]],
        excluded: dict[str, str],
    ) -> FeatureBuilder:
        specs: list[FeatureSpec] = []
        for name in families:
            specs.extend(FAMILIES[name].specs(windows, fitted[name]))
        self.windows_ = windows
        self.families_ = tuple(families)
        self.fitted_ = fitted
        self.excluded_ = excluded
        self.catalogue_ = pd.DataFrame(
            [
                {
                    "feature": s.name,
                    "family": s.family,
                    "window": s.window,
                    "description": s.description,
                    "direction": s.direction,
                    "group": s.group,
                }
                for s in specs
            ]
        ).set_index("feature")
        self.n_features_out_ = len(specs)
        if excluded:
            logger.info("account columns not used as features: %s", excluded)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The parameters and what fit learned, as JSON-ready data (for model bundles)."""
        self._check_fitted()
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()}
        return {
            "params": params,
            "windows": [w.label for w in self.windows_],
            "families": list(self.families_),
            "fitted": self.fitted_,
            "excluded": self.excluded_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureBuilder:
        """A fitted builder from :meth:`to_dict` output, without the training data."""
        builder = cls(**data["params"])
        windows = tuple(_parse_window(f"{label[:-1]}D") for label in data["windows"])
        return builder._set_fitted(windows, tuple(data["families"]), data["fitted"], dict(data["excluded"]))

    def _excluded(self, events: EventData) -> dict[str, str]:
        names = DEFAULT_PROTECTED if self.protected is None else tuple(self.protected)
        protected = {_norm(n) for n in names}
        allowed = {_norm(n) for n in self.allow_protected}
        out: dict[str, str] = {}
        for col in events.accounts.columns:
            if _norm(col) in allowed:
                continue
            if col in events.protected:
                out[col] = "protected attribute (marked in the event data)"
            elif _norm(col) in protected:
                out[col] = "protected attribute"
        return out

    # ----------------------------------------------------------------- transform

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "catalogue_")

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("this FeatureBuilder is not fitted yet; call fit(events) first")

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """The feature names, in output column order."""
        self._check_fitted()
        return np.asarray(self.catalogue_.index, dtype=object)

    def transform(self, events: EventData, obs: object) -> pd.DataFrame:
        """Features of each observation, one row per observation in the order given.

        Parameters
        ----------
        events : EventData
        obs : DataFrame
            Columns ``account_id`` and ``as_of`` (or an object indexed by them).

        Returns
        -------
        DataFrame
            Indexed by (``account_id``, ``as_of``), columns
            :meth:`get_feature_names_out`. Numbers are ``float64``; missing
            history is NaN (each family has a ``*_history_count`` column saying
            how much history there was).
        """
        self._check_fitted()
        if not isinstance(events, EventData):
            raise TypeError(f"transform expects riskscore.EventData; got {type(events).__name__}")
        problems = [
            Problem(FAMILIES[f].TABLE, None, "required_table", f"the fitted builder's {f} family needs this table")
            for f in self.families_
            if getattr(events, FAMILIES[f].TABLE) is None
        ]
        if "customer" in self.families_ and "customer_id" not in events.accounts.columns:
            problems.append(Problem("accounts", "customer_id", "required_column", "the fitted builder uses it"))
        if "repayment" in self.families_ and events.statements is not None:
            fitted = self.fitted_["repayment"]
            for col in ["min_due"] * bool(fitted["min_due"]) + [*fitted.get("extra", []), *fitted.get("coded", {})]:
                if col not in events.statements.columns:
                    problems.append(Problem("statements", col, "required_column", f"the fitted builder uses {col}"))
        if problems:
            raise DataValidationError(problems)
        code, as_of, index = prepare_observations(events, obs)
        timeline = E.Timeline.covering(
            [as_of, *event_times(events)],
            margin_seconds=max(w.seconds for w in self.windows_) + 61 * E.DAY,
        )
        offsets = timeline.offsets(as_of)
        order = np.lexsort([offsets, code])
        sorted_code, sorted_as_of = code[order], offsets[order]
        # Accounts are independent: contiguous account ranges run in parallel threads
        # (numpy releases the GIL) on one shared time line, so results do not depend
        # on how the work is split.
        ranges = self._account_ranges(events, sorted_code)
        workers = min(_effective_jobs(self.n_jobs), len(ranges))

        def run(bounds: tuple[int, int]) -> dict[str, Any]:
            c0, c1 = bounds
            o0, o1 = np.searchsorted(sorted_code, [c0, c1])
            part = events if (c0, c1) == (0, len(events.accounts)) else events._account_range(c0, c1)
            sub = E.Observations(sorted_code[o0:o1] - c0, sorted_as_of[o0:o1], order[o0:o1], c1 - c0)
            return self._compute(part, sub, timeline, whole=False)

        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(run, ranges))
        else:
            parts = [run(r) for r in ranges]
        columns = {name: _unsort(_concat([p[name] for p in parts]), order) for name in parts[0]}
        # Families that read other accounts (a customer's) run once over all of them.
        everything = E.Observations(sorted_code, sorted_as_of, order, len(events.accounts))
        for name, values in self._compute(events, everything, timeline, whole=True).items():
            columns[name] = _unsort(values, order)
        self._warn_unseen(events)
        missing = [f for f in self.catalogue_.index if f not in columns]
        if missing:
            raise AssertionError(f"features declared but not computed: {missing}")
        return pd.DataFrame({f: columns[f] for f in self.catalogue_.index}, index=index)

    def _compute(self, events: EventData, obs: E.Observations, timeline: E.Timeline, whole: bool) -> dict[str, Any]:
        """The features of the families that read one account (or, ``whole``, all accounts) at a time."""
        columns: dict[str, Any] = {}
        n = len(obs.code)
        for name in self.families_:
            module = FAMILIES[name]
            if getattr(module, "WHOLE", False) != whole:
                continue
            table = getattr(events, module.TABLE)
            if name not in ("account", "customer") and (len(table) == 0 or n == 0):
                values = {f: np.full(n, np.nan) for f in self.catalogue_.index[self.catalogue_.family == name]}
                values[f"{_prefix(name)}_history_count"] = np.zeros(n)
            else:
                values = module.compute(Context(events, obs, timeline, self.windows_, self.fitted_[name]))
            columns.update(values)
        return columns

    @staticmethod
    def _account_ranges(events: EventData, sorted_code: np.ndarray) -> list[tuple[int, int]]:
        """Account ranges of about equal work: cut where the largest table's rows split evenly."""
        n_accounts = len(events.accounts)
        tables = [df for df in (events.transactions, events.statements, events.installments) if df is not None]
        largest = max(tables, key=len) if tables else None
        if largest is None or len(largest) < _PARALLEL_MIN_ROWS or n_accounts < 2:
            return [(0, n_accounts)]
        pieces = min(_PARALLEL_PIECES, n_accounts)
        cut_ids = largest["account_id"].to_numpy()[np.linspace(0, len(largest), pieces + 1)[1:-1].astype(np.int64)]
        cuts = np.searchsorted(events.accounts["account_id"].to_numpy(), cut_ids)
        edges = np.unique(np.concatenate([[0], cuts, [n_accounts]]))
        return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]

    def fit_transform(self, events: EventData, obs: object, y: object = None) -> pd.DataFrame:
        """``fit(events).transform(events, obs)``."""
        return self.fit(events).transform(events, obs)

    def _warn_unseen(self, events: EventData) -> None:
        if "account" not in self.families_:
            return
        fitted = self.fitted_["account"]
        levels = dict(fitted["categorical"])
        if fitted["products"] is not None:
            levels["product"] = fitted["products"]
        for col, known in levels.items():
            present = events.accounts[col].dropna().astype(str)
            unseen = present[~present.isin(known)]
            if len(unseen):
                warnings.warn(
                    f"accounts.{col}: {len(unseen)} accounts have categories not seen at fit "
                    f"({sorted(map(str, set(unseen)))[:5]}); their feature is empty",
                    UserWarning,
                    stacklevel=3,
                )


_CATALOGUE_COLUMNS = ["family", "window", "description", "direction", "group"]


def describe(names: Iterable[str]) -> pd.DataFrame:
    """Catalogue entries for feature names, read from the naming grammar.

    Works without the builder that made the features (a bundle, a saved
    matrix): a name such as ``stmt_dpd_max_90d`` is looked up among the specs
    every family emits for the windows that occur in the names. Static account
    attributes (``acct_<column>``) get direction 0 and group
    ``customer_profile``; names outside the grammar get direction 0, no family,
    and a group of their own.

    Returns
    -------
    DataFrame
        Indexed by feature, columns ``family``, ``window``, ``description``,
        ``direction``, ``group`` (as ``FeatureBuilder.catalogue_``).
    """
    names = [str(n) for n in names]
    days = sorted({d for n in names for d in window_days(n)})
    windows = tuple(Window(f"{d}d", d * 86_400) for d in days)
    full: dict[str, dict[str, Any]] = {
        "repayment": {
            "min_due": True,
            "extra": sorted({extra[0] for n in names if (extra := statement_extra(n))}),
        },
        "instalment": {},
        "spending": {
            "has_channel": True,
            "categories": ["any"],
            "essential": [],
            "extra": sorted({t[0] for n in names if (t := transaction_extra(n)) and not t[1].startswith("count_")}),
            "coded": _coded_levels([t for n in names if (t := transaction_extra(n)) and t[1].startswith("count_")]),
        },
        "account": {"numeric": [], "categorical": {}, "skipped": {}, "products": [], "limit_history": True},
        "customer": {"cards": True},
    }
    known = {s.name: s for name, module in FAMILIES.items() for s in module.specs(windows, full[name])}
    rows = []
    for n in names:
        spec = known.get(n)
        if spec is not None:
            rows.append([spec.family, spec.window, spec.description, spec.direction, spec.group])
        elif n.startswith("acct_"):
            rows.append(["account", None, f"account attribute {n[5:]}", 0, "customer_profile"])
        else:
            rows.append([None, None, n, 0, n])
    return pd.DataFrame(rows, index=pd.Index(names, name="feature"), columns=_CATALOGUE_COLUMNS)


def _coded_levels(found: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Per coded column, the level tokens that ``count_<level>`` names mention."""
    levels: dict[str, list[str]] = {}
    for column, stat in found:
        levels.setdefault(column, [])
        if stat[6:] not in levels[column]:
            levels[column].append(stat[6:])
    return levels


def _prefix(family: str) -> str:
    return {"repayment": "stmt", "instalment": "inst", "spending": "txn", "account": "acct", "customer": "cust"}[family]


def _effective_jobs(n_jobs: int | None) -> int:
    """Threads to use: ``None`` or -1 for every core this process may run on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == -1:
        return cores
    if n_jobs < -1:
        return max(1, cores + 1 + n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs must not be 0; use None or -1 for every core, or a positive number")
    return n_jobs


def _concat(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], pd.Categorical):
        return pd.Categorical.from_codes(np.concatenate([p.codes for p in parts]), dtype=parts[0].dtype)
    return np.concatenate(parts)


def _unsort(column: Any, order: np.ndarray) -> Any:
    """Values computed in sorted-observation order, put back in input order."""
    if isinstance(column, pd.Categorical):
        codes = np.empty(len(order), dtype=column.codes.dtype)
        codes[order] = column.codes
        return pd.Categorical.from_codes(codes, dtype=column.dtype)
    out = np.empty(len(order), dtype=np.float64)
    out[order] = column
    return out
