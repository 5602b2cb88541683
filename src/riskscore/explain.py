"""Exact explanations: every feature's contribution to each score, in log-odds.

Contributions are exact path-dependent TreeSHAP, the computation LightGBM's
``predict(pred_contrib=True)`` and ``shap.TreeExplainer`` run by default for
LightGBM models. For trees of at most eight splits (the default model's) they
come from per-tree pattern tables (:mod:`riskscore.treeshap`), several times
faster than LightGBM and equal to it up to floating-point rounding; larger trees
are explained by LightGBM itself. For every row, the contributions plus the base
value equal the booster's raw margin, predicted separately by LightGBM;
:func:`explain` checks that on every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskscore.errors import AdditivityError
from riskscore.treeshap import feature_matrix, tables_for

__all__ = ["ADDITIVITY_TOLERANCE", "AdditivityError", "Explanation", "explain"]

ADDITIVITY_TOLERANCE = 1e-6
"""Largest allowed |sum of contributions + base value - raw margin| on any row."""


@dataclass
class Explanation:
    """Per-observation contributions of every feature to the raw margin (log-odds).

    Attributes
    ----------
    values : DataFrame
        Contributions, one column per feature, indexed like the explained rows.
    base_value : float
        The margin of an average row (the expected raw score of the trees).
    margin : Series
        The booster's raw margin per row: ``values.sum(axis=1) + base_value``.
    data : DataFrame
        The feature values explained.
    catalogue : DataFrame
        The model's feature catalogue (direction, reason group, description).
    pd_ : Series, optional
        The calibrated PD of each row, as ``model.score`` gives it: outreach
        refuses an explanation whose rows do not match the scores.
    model_version : str, optional
        ``version_`` of the model explained: outreach refuses an explanation of
        another model than the one that scored.
    points_, band_ : Series, optional
        The score points and band of each row, as ``model.score`` gives them.
    """

    values: pd.DataFrame
    base_value: float
    margin: pd.Series
    data: pd.DataFrame
    catalogue: pd.DataFrame
    pd_: pd.Series | None = None
    model_version: str | None = None
    points_: pd.Series | None = None
    band_: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        rows, features = self.values.shape
        return f"Explanation({rows:,} rows x {features} features, base value {self.base_value:.4f})"

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (observation, feature) with ``value`` and ``contribution``.

        The observation's index levels come first (``account_id``, ``as_of`` for
        rows built by the FeatureBuilder), then ``feature``, ``value``,
        ``contribution``; rows are in observation order, features in model order.
        """
        names = [n or f"level_{i}" for i, n in enumerate(self.values.index.names)]
        index = self.values.index.set_names(names)
        features = list(self.values.columns)
        n_rows, n_features = self.values.shape
        long = index.to_frame(index=False).loc[np.repeat(np.arange(n_rows), n_features)].reset_index(drop=True)
        long["feature"] = np.tile(features, n_rows)
        long["value"] = np.asarray(self.data.astype(object).to_numpy()).reshape(-1)
        long["contribution"] = self.values.to_numpy().reshape(-1)
        return long

    def for_account(self, account_id: Any, as_of: Any = None) -> pd.DataFrame:
        """One observation's contributions, largest risk-increasing first.

        Returns
        -------
        DataFrame
            Indexed by feature: ``value``, ``contribution``, ``group``,
            ``description``; sorted by contribution, descending.
        """
        index = self.values.index
        if not isinstance(index, pd.MultiIndex) or "account_id" not in index.names:
            raise KeyError("for_account needs rows indexed by (account_id, as_of)")
        mask = np.asarray(index.get_level_values("account_id") == account_id)
        if as_of is not None:
            mask &= np.asarray(index.get_level_values("as_of") == pd.Timestamp(as_of))
        found = np.flatnonzero(mask)
        if len(found) != 1:
            when = "" if as_of is None else f" at as_of {pd.Timestamp(as_of).date()}"
            raise KeyError(
                f"account_id {account_id!r}{when} matches {len(found)} explained rows; "
                + ("give as_of" if len(found) > 1 else "explain it first")
            )
        row = found[0]
        out = pd.DataFrame(
            {
                "value": self.data.iloc[row].astype(object),
                "contribution": self.values.iloc[row],
                "group": self.catalogue["group"].reindex(self.values.columns),
                "description": self.catalogue["description"].reindex(self.values.columns),
            }
        )
        out.index.name = "feature"
        return out.sort_values("contribution", ascending=False, kind="stable")

    def reason_codes(self, top: int = 4, lang: str = "en", min_contribution: float = 0.0) -> pd.DataFrame:
        """The principal reasons behind each score, in plain words.

        Contributions are summed within each reason of the reason catalogue;
        only reasons that raise the risk (sum above ``min_contribution``, in
        log-odds) are kept, ranked by their sum, ties broken by reason code, at
        most ``top`` per observation. Each text quotes the account's own value of
        the feature that contributes most to the reason. Protected attributes
        never give a reason.

        Parameters
        ----------
        top : int, default=4
            At most this many reasons per observation (Regulation B: four).
        lang : {"en", "zh"}, default="en"
        min_contribution : float, default=0.0

        Returns
        -------
        DataFrame
            ``account_id``, ``as_of`` (the index levels of the explained rows),
            ``rank``, ``reason_code``, ``text``, ``contribution``, ``features``
            (the reason's risk-increasing features, largest first).
        """
        return self.reason_rows(top, lang, min_contribution)

    def reason_rows(
        self,
        top: int = 4,
        lang: str = "en",
        min_contribution: float = 0.0,
        positions: np.ndarray | None = None,
        features: bool = True,
    ) -> pd.DataFrame:
        """:meth:`reason_codes` for the rows at ``positions`` only, optionally without ``features``.

        With ``positions``, a column ``position`` gives each reason's row position in this explanation
        (what outreach uses to attach reasons to the accounts a decision concerns).
        """
        from riskscore.reasons import LANGUAGES, format_value, load_reason_catalogue

        if lang not in LANGUAGES:
            raise ValueError(f"lang must be one of {list(LANGUAGES)}; got {lang!r}")
        if int(top) != top or top < 1:
            raise ValueError(f"top must be a positive whole number; got {top!r}")
        cat = load_reason_catalogue()
        names_of = list(self.values.columns)
        reason_of, codes, member = self._membership(cat)
        take = np.arange(len(self.values)) if positions is None else np.asarray(positions, dtype=np.int64)
        contrib = self.values.to_numpy(dtype=np.float64)[take]
        sums = contrib @ member
        # Rank reasons per row: largest sum first, then reason code (codes are sorted).
        order = np.argsort(-sums, axis=1, kind="stable")[:, :top]
        ranked = np.take_along_axis(sums, order, axis=1)
        keep = ranked > min_contribution
        rows, ranks = np.nonzero(keep)
        chosen = order[rows, ranks]
        names = [
            n if n is not None else ("row" if self.values.index.nlevels == 1 else f"level_{i}")
            for i, n in enumerate(self.values.index.names)
        ]
        index_frame = self.values.index[take].set_names(names).to_frame(index=False)
        descriptions = self.catalogue["description"].reindex(names_of)
        out_text = np.empty(len(rows), dtype=object)
        out_features = np.empty(len(rows), dtype=object)
        columns = _ColumnValues(self.data)
        # Per reason, all its rows at once: the features that raise the risk, largest
        # first (ties by name), and the text quoting the leading feature's value.
        for c, code in enumerate(codes):
            at = np.flatnonzero(chosen == c)
            if not len(at):
                continue
            cols = sorted((j for j, r in enumerate(reason_of) if r == code), key=lambda j: names_of[j])
            sub = contrib[np.ix_(rows[at], np.asarray(cols, dtype=np.int64))]
            by_size = np.argsort(-sub, axis=1, kind="stable")  # stable: equal contributions stay in name order
            positive = np.take_along_axis(sub, by_size, axis=1) > 0
            lead = np.asarray(cols)[by_size[:, 0]]
            if features:
                col_names = np.asarray([names_of[j] for j in cols], dtype=object)
                for k, (idx, pos) in enumerate(zip(by_size, positive, strict=True)):
                    out_features[at[k]] = ", ".join(col_names[idx[pos]])
            out_text[at] = self._reason_texts(
                cat, code, lead, take[rows[at]], lang, descriptions, columns, format_value
            )
        result = index_frame.iloc[rows].reset_index(drop=True)
        result["rank"] = ranks + 1
        result["reason_code"] = [codes[c] for c in chosen]
        result["text"] = out_text
        result["contribution"] = ranked[rows, ranks]
        if features:
            result["features"] = out_features
        if positions is not None:
            result["position"] = take[rows]
        return result

    def reason_contributions(self) -> pd.DataFrame:
        """Each row's contributions summed per reason code (log-odds), as ``reason_codes`` ranks them.

        One column per reason code of the explained features, in code order;
        contributions of features that give no reason (protected attributes a
        caller chose to model) are in a column ``"(protected)"``. Each row sums
        with the base value to the row's margin.
        """
        from riskscore.reasons import load_reason_catalogue

        reason_of, codes, member = self._membership(load_reason_catalogue())
        contrib = self.values.to_numpy(dtype=np.float64)
        out = pd.DataFrame(contrib @ member, index=self.values.index, columns=codes)
        none = np.asarray([r is None for r in reason_of], dtype=bool)
        if none.any():
            out["(protected)"] = contrib[:, none].sum(axis=1)
        return out

    def _membership(self, cat: Any) -> tuple[list[str | None], list[str], np.ndarray]:
        """The reason code of each feature, the codes in order, and the feature x code membership matrix."""
        names_of = list(self.values.columns)
        groups = self.catalogue["group"].reindex(names_of)
        reason_of = [cat.reason_for(f, None if pd.isna(g) else str(g)) for f, g in zip(names_of, groups, strict=True)]
        codes = sorted({r for r in reason_of if r is not None})
        member = np.zeros((len(names_of), len(codes)))
        for j, r in enumerate(reason_of):
            if r is not None:
                member[j, codes.index(r)] = 1.0
        return reason_of, codes, member

    def _reason_texts(
        self,
        cat: Any,
        code: str,
        lead: np.ndarray,
        rows: np.ndarray,
        lang: str,
        descriptions: pd.Series,
        columns: _ColumnValues,
        format_value: Any,
    ) -> list[str]:
        """Texts of one reason for many rows: a special text where its condition holds, else the generic one."""
        texts: list[str | None] = [None] * len(rows)
        for special in cat.special:
            if special["reason"] != code or not all(f in columns for f in special["requires"]):
                continue
            values = {f: columns.get(f)[rows] for f in special["requires"]}
            known = np.all([~pd.isna(v) for v in values.values()], axis=0)
            holds = known & _holds_all(special["when"], values)
            template = str(special["text"][lang])
            # "rose from 104% to 104%" reads wrong: where the compared values read the same, say they stayed.
            unchanged = str(special["unchanged"][lang]) if "unchanged" in special else None
            units = {f: cat.unit(f) for f in special["requires"]}
            for k in np.flatnonzero(holds).tolist():
                if texts[k] is None:
                    quoted = {f: format_value(values[f][k], units[f], lang) for f in special["requires"]}
                    said = unchanged if unchanged is not None and len(set(quoted.values())) == 1 else template
                    texts[k] = said.format(**quoted)
        from riskscore.reasons import format_values

        entry = cat.reasons.get(code, cat.fallback)
        template = str(entry["text"][lang])
        todo = np.asarray([t is None for t in texts], dtype=bool)
        # The generic text per leading feature: what it measures, then each row's value.
        for j in np.unique(lead[todo]).tolist():
            at = np.flatnonzero(todo & (lead == j))
            feature = str(self.values.columns[j])
            description = descriptions.get(feature) if code != cat.fallback["code"] else None
            what = cat.what(feature, None if pd.isna(description) else str(description), lang)
            if what is None:  # no words for it but its raw name: the reason's title alone
                for k in at.tolist():
                    texts[k] = str(entry["title"][lang])
                continue
            head, tail = template.format(what=what, value="\x00").split("\x00")
            shown = format_values(columns.get(feature)[rows[at]], cat.unit(feature), lang)
            for k, value in zip(at.tolist(), shown, strict=True):
                texts[k] = head + value + tail
        return [str(t) for t in texts]

    def segment(self, rules: Any = None, evidence: bool = False) -> pd.Series | pd.DataFrame:
        """The borrower's situation behind each score, from the explained feature values.

        One of ``forgetful`` (sporadic short lateness, capacity intact: a
        reminder helps), ``cannot_pay`` (strain: minimum payments, rising or
        maxed-out utilisation, cash advances, slipping instalments: offer a
        plan), ``will_not_pay`` (paying well, then spending runs the balance
        up: call) or ``unknown`` (too little history or no evidence). The rules
        and their thresholds are in :mod:`riskscore.segments`.

        Parameters
        ----------
        rules : riskscore.segments.SegmentRules, optional
            Thresholds of the rules; the documented defaults when omitted.
        evidence : bool, default=False
            Also return the evidence each segment rests on.

        Returns
        -------
        Series or DataFrame
            Indexed like the explained rows: the ``segment`` (categorical), and
            with ``evidence=True`` a DataFrame with ``segment`` and
            ``evidence`` (tuple of evidence codes, see
            :data:`riskscore.segments.EVIDENCE`).
        """
        from riskscore.segments import segment_rows

        out = segment_rows(self.data, rules)
        return out if evidence else out["segment"]

    def to_shap(self) -> Any:
        """A ``shap.Explanation`` (log-odds contributions), for shap's plots.

        Needs the ``shap`` package (``pip install 'riskscore[plots]'``).
        """
        try:
            import shap
        except ImportError as exc:  # optional dependency
            raise ImportError("to_shap needs the shap package: pip install 'riskscore[plots]'") from exc
        data = self.data.copy()
        for col in data.columns:
            if isinstance(data[col].dtype, pd.CategoricalDtype):
                data[col] = data[col].cat.codes.astype(np.float64).where(data[col].notna())
        return shap.Explanation(
            values=self.values.to_numpy(),
            base_values=np.full(len(self.values), self.base_value),
            data=data.to_numpy(dtype=np.float64),
            feature_names=list(self.values.columns),
        )


class _ColumnValues:
    """Columns of a feature frame as numpy arrays (objects for categoricals), converted on first use."""

    def __init__(self, data: pd.DataFrame) -> None:
        self._data = data
        self._cache: dict[str, np.ndarray] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._data.columns

    def get(self, name: str) -> np.ndarray:
        """The column as a numpy array: float64 with NaN, or objects with None."""
        if name not in self._cache:
            col = self._data[name]
            if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object:
                self._cache[name] = np.array([None if pd.isna(v) else v for v in col.astype(object)], dtype=object)
            else:
                self._cache[name] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        return self._cache[name]


def _holds_all(condition: str, values: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate ``"a > b"`` per row, a and b feature names or numbers (no eval; NaN compares false)."""
    left, op, right = condition.split()
    if op != ">":
        raise ValueError(f"reason catalogue conditions support '>' only; got {condition!r}")

    def value(term: str) -> np.ndarray | float:
        return np.asarray(values[term], dtype=np.float64) if term in values else float(term)

    with np.errstate(invalid="ignore"):
        return np.asarray(value(left) > value(right), dtype=bool)


def explain(model: Any, X: Any, chunk_size: int = 20_000) -> Explanation:
    """Exact contributions of every feature for the rows of ``X`` (see ``RiskModel.explain``)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of rows; got {chunk_size}")
    frame, names = model.conform(X)
    n = len(frame)
    contributions = np.empty((n, len(names)))
    base = np.empty(n)
    margin = np.empty(n)
    tables = tables_for(model.booster_)
    # Chunks bound memory (the contribution matrix of a chunk and LightGBM's
    # buffers); LightGBM runs each chunk on every core.
    for start in range(0, n, chunk_size):
        part = frame.iloc[start : start + chunk_size]
        if tables is not None:
            contributions[start : start + len(part)] = tables.contributions(feature_matrix(part))
            base[start : start + len(part)] = tables.base
        else:
            raw = np.asarray(model.booster_.predict(part, pred_contrib=True), dtype=np.float64)
            contributions[start : start + len(part)] = raw[:, :-1]
            base[start : start + len(part)] = raw[:, -1]
        # The margin comes from LightGBM's own prediction: the check below is independent of the tables.
        margin[start : start + len(part)] = model.booster_.predict(part, raw_score=True)
    gap = np.abs(contributions.sum(axis=1) + base - margin)
    if n and gap.max() > ADDITIVITY_TOLERANCE:
        worst = int(np.argmax(gap))
        raise AdditivityError(
            f"contributions + base value must equal the margin within {ADDITIVITY_TOLERANCE}; "
            f"got a gap of {gap[worst]:.3g} on row {worst} ({int((gap > ADDITIVITY_TOLERANCE).sum())} rows)"
        )
    index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(n)
    scored = model.scale(model.calibrate(margin), index)
    return Explanation(
        values=pd.DataFrame(contributions, index=index, columns=names),
        base_value=float(base[0]) if n else float("nan"),
        margin=pd.Series(margin, index=index, name="margin"),
        data=frame.set_axis(index, axis=0),
        catalogue=model.catalogue_,
        pd_=scored["pd"],
        model_version=model.version_,
        points_=scored["points"],
        band_=scored["band"],
    )
