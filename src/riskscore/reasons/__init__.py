"""The reason catalogue: which reason each feature belongs to, and the texts that state it.

The catalogue is data (``catalogue_v1.json`` beside this file), versioned, so risk
and compliance teams can review and change texts without touching code. Every
feature group of the feature catalogue maps to exactly one reason; features
outside riskscore's naming grammar fall back to a reason naming the feature;
protected attributes map to none.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from riskscore.features.names import account_column, split_window, statement_extra, transaction_extra

__all__ = ["LANGUAGES", "ReasonCatalogue", "load_reason_catalogue"]

LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class ReasonCatalogue:
    """A loaded reason catalogue (see :func:`load_reason_catalogue`)."""

    version: str
    reasons: dict[str, dict[str, Any]]  # code -> entry
    group_reason: dict[str, str]  # feature group -> reason code
    fallback: dict[str, Any]
    special: tuple[dict[str, Any], ...]
    stems: dict[str, dict[str, str]]
    terms: dict[str, dict[str, str]]  # a lender's own column -> how a borrower reads it, per language

    def reason_for(self, feature: str, group: str | None) -> str | None:
        """The reason code of a feature, ``None`` for a protected attribute."""
        if is_protected(feature):
            return None
        if group is not None and group in self.group_reason:
            return self.group_reason[group]
        return str(self.fallback["code"])

    def what(self, feature: str, description: str | None, lang: str) -> str | None:
        """What the feature measures, in ``lang``; None when it cannot be said without a raw column name.

        A lender's own column (an extra account or statement column) is named
        through the catalogue's ``terms`` only; a feature outside riskscore's
        naming grammar, or a column without a term, has no words a borrower
        could read, and its reason is stated by its title alone.
        """
        stem, window, column = self._stem(feature)
        term = None if column is None else self.terms.get(column)
        if column is not None and term is None:
            return None
        entry = self.stems.get(stem)
        if lang == "en":
            if not description or (entry is None and column is None):
                return None
            if term is not None and column is not None:
                return description.replace(f"account attribute {column}", term["en"]).replace(column, term["en"])
            return description
        if entry is None:
            return None
        return entry["zh"].format(w=window or "", col="" if term is None else term["zh"])

    def unit(self, feature: str) -> str:
        """How the feature's value is shown: pct, days, count, amount, ratio, number or text."""
        stem, _, _ = self._stem(feature)
        return self.stems.get(stem, {}).get("unit", "number")

    def _stem(self, feature: str) -> tuple[str, str | None, str | None]:
        base, days = split_window(feature)
        window = None if days is None else str(days)
        if base in self.stems:
            return base, window, None
        extra = statement_extra(base)
        if extra:
            stat = "count" if extra[1].startswith("count_") else extra[1]
            return f"stmt_extra_*_{stat}", window, extra[0]
        extra = transaction_extra(feature)
        if extra:
            stat = "count" if extra[1].startswith("count_") else extra[1]
            return f"txn_extra_*_{stat}", window, extra[0]
        column = account_column(base)
        if column is not None:
            return "acct_*", window, column
        return base, window, None


def format_value(value: Any, unit: str, lang: str) -> str:
    """A feature value as a reader expects it: 92%, 35 days, 1,200."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not available" if lang == "en" else "无记录"
    if unit == "text" or isinstance(value, str):
        return str(value)
    v = float(value)
    if unit == "pct":
        return f"{v:.0%}"
    if unit == "days":
        return f"{v:.0f} days" if lang == "en" else f"{v:.0f}天"
    if unit == "count":
        return f"{v:.0f}"
    if unit == "amount":
        return f"{v:,.0f}"
    if unit == "ratio":
        return f"{v:.2f}"
    return _plain_number(v)


def format_values(values: Any, unit: str, lang: str) -> list[str]:
    """:func:`format_value` for many values at once (same text, faster)."""
    items = list(values)
    missing = "not available" if lang == "en" else "无记录"
    numeric = unit != "text" and not any(isinstance(v, str) for v in items)
    if not numeric:
        return [format_value(v, unit, lang) for v in items]
    floats = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in items]
    if unit == "pct":
        return [missing if v is None else f"{v:.0%}" for v in floats]
    if unit == "days":
        suffix = " days" if lang == "en" else "天"
        return [missing if v is None else f"{v:.0f}{suffix}" for v in floats]
    if unit == "count":
        return [missing if v is None else f"{v:.0f}" for v in floats]
    if unit == "amount":
        return [missing if v is None else f"{v:,.0f}" for v in floats]
    if unit == "ratio":
        return [missing if v is None else f"{v:.2f}" for v in floats]
    return [missing if v is None else _plain_number(v) for v in floats]


def _plain_number(v: float) -> str:
    """A number as a person writes it: 2,900; 1.33; -1 (never 1.33333 or 2.9e+03)."""
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:.0f}"


def is_protected(feature: str) -> bool:
    """Whether a feature name is a protected attribute (``acct_age``, ``SEX``, ...)."""
    from riskscore.features.builder import DEFAULT_PROTECTED

    protected = {re.sub(r"[^0-9a-z]", "", p) for p in DEFAULT_PROTECTED}
    name = feature[5:] if feature.startswith("acct_") else feature
    return re.sub(r"[^0-9a-z]", "", name.lower()) in protected


@lru_cache(maxsize=4)
def load_reason_catalogue(version: str = "1") -> ReasonCatalogue:
    """Load the reason catalogue file ``catalogue_v{version}.json`` shipped with riskscore."""
    name = f"catalogue_v{version}.json"
    path = resources.files("riskscore.reasons") / name
    if not path.is_file():
        raise FileNotFoundError(f"no reason catalogue {name} in riskscore.reasons")
    doc = json.loads(path.read_text(encoding="utf-8"))
    reasons = {r["code"]: r for r in doc["reasons"]}
    group_reason: dict[str, str] = {}
    for code, entry in reasons.items():
        for group in entry["groups"]:
            if group in group_reason:
                raise ValueError(f"{name}: group {group!r} maps to two reasons, {group_reason[group]} and {code}")
            group_reason[group] = code
    return ReasonCatalogue(
        version=str(doc["version"]),
        reasons=reasons,
        group_reason=group_reason,
        fallback=doc["fallback"],
        special=tuple(doc.get("special", ())),
        stems=doc["stems"],
        terms=doc.get("terms", {}),
    )
