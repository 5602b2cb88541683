"""Treatment tables (band x segment -> ordered action:channel options), costs and offer settings.

Data, not code: ``treatments_v1.toml`` in this package is the default; pass a
path (or a parsed mapping) to :func:`riskscore.recommend` to use another.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskscore.errors import PolicyError
from riskscore.outreach.policy import OutreachPolicy, read_document
from riskscore.segments import SEGMENTS

__all__ = ["ACTIONS", "Treatments"]

ACTIONS: tuple[str, ...] = ("none", "reminder", "call", "repayment_plan", "human_review")
"""Actions a recommendation can carry."""

_COST_DEFAULTS: dict[str, Any] = {
    "lgd": 0.65,
    "effect": {"reminder": 0.10, "call": 0.20, "repayment_plan": 0.30, "human_review": 0.25},
    "cost": {"sms": 0.05, "app": 0.01, "email": 0.01, "call": 3.0, "human_review": 12.0},
}
_OFFER_DEFAULTS: dict[str, float] = {
    "max_term_months": 24,
    "min_term_months": 3,
    "min_instalment": 25.0,
    "recent_cycles": 3,
    "card_grace_days": 25,
}


_WHOLE_OFFER = ("max_term_months", "min_term_months", "recent_cycles", "card_grace_days")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _costs_and_offer(doc: Mapping[str, Any], problems: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``[costs]`` and ``[offer]`` settings over their defaults, each value checked; problems appended."""
    raw_costs, raw_offer = doc.get("costs", {}), doc.get("offer", {})
    for name, raw, known in (("costs", raw_costs, _COST_DEFAULTS), ("offer", raw_offer, _OFFER_DEFAULTS)):
        if not isinstance(raw, Mapping):
            problems.append(f"[{name}] must be a table; got {raw!r}")
        elif set(raw) - set(known):
            problems.append(f"[{name}] has unknown key(s) {sorted(set(raw) - set(known))}; known: {sorted(known)}")
    costs = {**_COST_DEFAULTS, **(dict(raw_costs) if isinstance(raw_costs, Mapping) else {})}
    offer = {**_OFFER_DEFAULTS, **(dict(raw_offer) if isinstance(raw_offer, Mapping) else {})}
    lgd = costs["lgd"]
    if not _number(lgd) or not 0 <= lgd <= 1:
        problems.append(f"costs.lgd must be a number in [0, 1]; got {lgd!r}")
        costs["lgd"] = 0.0
    for table in ("effect", "cost"):
        if not isinstance(costs[table], Mapping):
            problems.append(f"costs.{table} must be a table; got {costs[table]!r}")
            costs[table] = {}
            continue
        for key, value in dict(costs[table]).items():
            if table == "effect" and key not in ACTIONS[1:]:
                problems.append(f"costs.effect.{key}: not an action; known: {list(ACTIONS[1:])}")
            elif table == "effect" and isinstance(value, Mapping):
                for segment, cut in value.items():
                    if segment not in (*SEGMENTS, "default"):
                        problems.append(f"costs.effect.{key}.{segment}: not a segment; known: {[*SEGMENTS, 'default']}")
                    elif not (_number(cut) and 0 <= cut <= 1):
                        problems.append(f"costs.effect.{key}.{segment} must be a number in [0, 1]; got {cut!r}")
            elif table == "effect" and not (_number(value) and 0 <= value <= 1):
                problems.append(
                    f"costs.effect.{key} must be a number in [0, 1] (the relative cut in the chance of "
                    f"falling behind), or a table of such numbers per segment; got {value!r}"
                )
            elif table == "cost" and not (_number(value) and value >= 0):
                problems.append(f"costs.cost.{key} must be a finite number >= 0; got {value!r}")
    for key, value in offer.items():
        whole = key in _WHOLE_OFFER
        if not _number(value) or (whole and value != int(value)):
            problems.append(f"offer.{key} must be a {'whole number' if whole else 'finite number'}; got {value!r}")
        elif key == "card_grace_days" and value < 0:
            problems.append(f"offer.{key} must be >= 0; got {value!r}")
        elif key != "card_grace_days" and value <= 0:
            problems.append(f"offer.{key} must be > 0; got {value!r}")
    low, high = offer["min_term_months"], offer["max_term_months"]
    if _number(low) and _number(high) and low > high:
        problems.append(f"offer.min_term_months ({low!r}) must not exceed offer.max_term_months ({high!r})")
    return costs, offer


def _effect_entry(action: str, value: Any) -> float | dict[str, float]:
    """An effect as stored: a number, or a per-segment table with its ``default`` filled in."""
    if not isinstance(value, Mapping):
        return float(value)
    table = {str(k): float(v) for k, v in value.items()}
    table.setdefault("default", float(_COST_DEFAULTS["effect"].get(action, 0.0)))
    return table


@dataclass(frozen=True)
class Treatments:
    """Band x segment treatment options, the benefit model and the plan-offer settings."""

    name: str
    version: str
    entries: tuple[tuple[frozenset[str], frozenset[str], tuple[tuple[str, str], ...]], ...]
    lgd: float
    effect: Mapping[str, float | Mapping[str, float]]
    cost: Mapping[str, float]
    offer: Mapping[str, float]
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | None = None) -> Treatments:
        """The shipped table (``None``), a .toml/.json file, or a parsed mapping."""
        doc, origin = read_document(source, "treatments_v1.toml", "treatments")
        return cls.from_dict(doc, origin)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], origin: str) -> Treatments:
        """Validate a parsed treatment document; ``origin`` names it in errors."""
        problems: list[str] = []
        entries = []
        for i, raw in enumerate(doc.get("treatment", [])):
            where = f"[[treatment]] #{i + 1}"
            if not isinstance(raw, Mapping) or not all(k in raw for k in ("bands", "segments", "options")):
                problems.append(f"{where} needs bands, segments and options")
                continue
            options = []
            for opt in raw["options"]:
                action, _, channel = str(opt).partition(":")
                if action not in ACTIONS or action == "none":
                    problems.append(
                        f"{where}: option {opt!r}: action must be one of {list(ACTIONS[1:])} "
                        "(home visits and legal action are never recommended automatically)"
                    )
                elif not channel:
                    problems.append(f"{where}: option {opt!r} must be 'action:channel'")
                else:
                    options.append((action, channel))
            entries.append((frozenset(map(str, raw["bands"])), frozenset(map(str, raw["segments"])), tuple(options)))
        if not entries:
            problems.append("at least one [[treatment]] entry is required")
        costs, offer = _costs_and_offer(doc, problems)
        if problems:
            raise PolicyError(f"{origin}: " + "; ".join(problems))
        lgd = costs["lgd"]
        return cls(
            name=str(doc.get("name", origin)),
            version=str(doc.get("version", "unversioned")),
            entries=tuple(entries),
            lgd=float(lgd),
            effect={str(k): _effect_entry(str(k), v) for k, v in dict(costs["effect"]).items()},
            cost={str(k): float(v) for k, v in dict(costs["cost"]).items()},
            offer={str(k): float(v) for k, v in offer.items()},
            document=json.loads(json.dumps(doc)),
        )

    @property
    def learned(self) -> bool:
        """Whether some effect is given per segment (learned): options are then taken by expected benefit."""
        return any(isinstance(v, Mapping) for v in self.effect.values())

    def effect_of(self, action: str, segment: str | None) -> float:
        """The relative cut in the chance of falling behind that ``action`` gives a borrower of ``segment``.

        A per-segment table gives the segment's value, else its ``default``;
        a plain number holds for every segment; an action absent gives 0.
        """
        value = self.effect.get(action, 0.0)
        if isinstance(value, Mapping):
            return float(value.get(str(segment), value["default"]))
        return float(value)

    def with_costs(self, costs: Mapping[str, Any] | None) -> Treatments:
        """A copy with some cost settings replaced (``lgd``, ``effect`` and ``cost`` entries)."""
        if not costs:
            return self
        unknown = set(costs) - {"lgd", "effect", "cost"}
        if unknown:
            raise ValueError(f"costs may set lgd, effect and cost; got unknown keys {sorted(unknown)}")
        doc = json.loads(json.dumps(self.document))
        merged = dict(doc.get("costs", {}))
        if "lgd" in costs:
            merged["lgd"] = costs["lgd"]
        for table in ("effect", "cost"):
            if table in costs:
                before = dict(merged.get(table, _COST_DEFAULTS[table]))
                given = dict(costs[table]) if isinstance(costs[table], Mapping) else costs[table]
                if table == "effect" and isinstance(given, dict):
                    # A per-segment table keeps the action's former single value as its default.
                    for action, value in list(given.items()):
                        old = before.get(action, _COST_DEFAULTS["effect"].get(action))
                        if isinstance(value, Mapping) and "default" not in value and not isinstance(old, Mapping):
                            given[action] = {**dict(value), "default": old if old is not None else 0.0}
                merged[table] = {**before, **given} if isinstance(given, dict) else given
        doc["costs"] = merged
        return Treatments.from_dict(doc, f"{self.name} with costs")

    @property
    def hash(self) -> str:
        """SHA-256 of the treatment document (canonical JSON), first 16 hex digits."""
        canonical = json.dumps(self.document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def options(self, band: str, segment: str) -> tuple[tuple[str, str], ...]:
        """The ordered (action, channel) options of the first entry covering band and segment."""
        for bands, segments, options in self.entries:
            if band in bands and segment in segments:
                return options
        raise KeyError((band, segment))

    def contacted_bands(self, bands: Any) -> list[str]:
        """Those of ``bands`` (in their order, once each) that some treatment entry contacts.

        The one rule for which scores need an explanation before outreach: a band
        is contacted when an entry covering it has at least one option.
        """
        seen = dict.fromkeys(str(b) for b in bands)
        return [b for b in seen if any(options for covered, _, options in self.entries if b in covered)]

    def check(self, policy: OutreachPolicy, bands: list[str], segments: list[str]) -> None:
        """Every (band, segment) present is covered, channels exist, no human-only action."""
        problems = []
        human_only = {a for r in policy.rules_of("human_only") for a in r.params["actions"]}
        for _, _, options in self.entries:
            for action, channel in options:
                if action in human_only:
                    problems.append(f"action {action!r} needs a human and is never recommended automatically")
                if channel not in policy.channels:
                    problems.append(f"channel {channel!r} of option {action}:{channel} is not in policy {policy.id}")
        missing = [(b, s) for b in bands for s in segments if not any(b in e[0] and s in e[1] for e in self.entries)]
        if missing:
            problems.append(f"no treatment for (band, segment) {missing[:5]}")
        if problems:
            raise PolicyError(f"treatments {self.version}: " + "; ".join(dict.fromkeys(problems)))
