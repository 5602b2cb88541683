"""Outreach policies: versioned compliance rules loaded from data files.

A policy is a TOML (or JSON) document: a ``[policy]`` header (id, version,
jurisdiction, language, channels, currency, planning horizon, opt-out text,
debt-advice text), a list of ``[[rules]]`` and a list of ``[[banned]]`` content
patterns. The shipped profiles live in ``outreach/policies/``; a new
jurisdiction or a stricter limit is a new file, never new code.

Rule kinds and their parameters:

``timezone_required`` (channels)
    no contact without the borrower's time zone (fail closed).
``contact_hours`` (channels, start, end)
    contact only in [start, end) of the borrower's local wall-clock time.
``attempt_cap`` (channels, max, window, outcomes, directions)
    at most ``max`` contacts with these outcomes and directions in the window:
    a rolling duration (``"168h"``) or the borrower's local calendar ``"day"``.
``quiet_after_conversation`` (channels, hours, outcomes)
    no contact until ``hours`` after the last contact with these outcomes.
``opt_out`` (channels, outcomes)
    a contact with one of these outcomes on a channel blocks that channel.
``suppress`` (channels, flags, outcomes, route)
    an account flag (or a contact outcome such as ``cease``) blocks every
    channel; ``route`` says what happens instead (``none`` or ``human_review``).
``support`` (flags, action)
    flagged accounts (vulnerable, hardship plan) take the support action
    instead of any payment demand.
``third_party_ban``
    messages go to the borrower only (checked on every recommendation).
``human_only`` (actions)
    actions that a person must decide; refused in any treatment table.
``offer_cooldown`` (days)
    a repayment plan is not offered again within ``days`` of the last offer
    (a contact with the policy's ``events_offer_outcome``).

The rules that count the contact ledger (``attempt_cap``,
``quiet_after_conversation``, ``opt_out``, ``suppress``, ``offer_cooldown``)
take an optional ``scope``: ``"customer"`` counts the contacts of all of a
customer's accounts (``accounts.customer_id``) and applies to all of them;
``"account"`` counts each account's own. Absent, a rule counts the customer,
the stricter reading. Flags (``cease``, ``vulnerable``, ...) are the person's
whatever the scope: a flag on any of a customer's accounts holds for all.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from riskscore.errors import PolicyError
from riskscore.outreach.banned import BannedContent, compile_pattern

__all__ = ["JURISDICTIONS", "PROFILES", "SCOPES", "OutreachPolicy", "Rule", "profile_for_zone"]

PROFILES: tuple[str, ...] = ("cn-2026", "us-regf", "uk-conc")
"""Profiles shipped with the package (``OutreachPolicy.load(name)``)."""

_KINDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "timezone_required": {"channels": list},
    "contact_hours": {"channels": list, "start": str, "end": str},
    "attempt_cap": {"channels": list, "max": int, "window": str, "outcomes": list, "directions": list},
    "quiet_after_conversation": {"channels": list, "hours": (int, float), "outcomes": list},
    "opt_out": {"channels": list, "outcomes": list},
    "suppress": {"channels": list, "flags": list, "route": str},
    "support": {"flags": list, "action": str},
    "third_party_ban": {},
    "human_only": {"actions": list},
    "offer_cooldown": {"days": (int, float)},
}
_OPTIONAL: dict[str, dict[str, type | tuple[type, ...]]] = {
    "suppress": {"outcomes": list, "scope": str},
    "attempt_cap": {"scope": str},
    "quiet_after_conversation": {"scope": str},
    "opt_out": {"scope": str},
    "offer_cooldown": {"scope": str},
}
SCOPES: tuple[str, ...] = ("customer", "account")
"""Who a rule counting the contact ledger counts: the person (all their accounts' contacts) or one account."""
_HEADER: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "version": str,
    "jurisdiction": str,
    "language": str,
    "channels": list,
    "electronic": list,
    "planning_horizon_hours": (int, float),
    "currency": str,
}
_LANGS = ("en", "zh")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_WINDOW = re.compile(r"^(\d+(?:\.\d+)?)h$")


JURISDICTIONS: tuple[tuple[str, str], ...] = (
    ("America/", "us-regf"),
    ("Pacific/Honolulu", "us-regf"),
    ("Europe/London", "uk-conc"),
    ("Asia/Shanghai", "cn-2026"),
    ("Asia/Chongqing", "cn-2026"),
    ("Asia/Urumqi", "cn-2026"),
    ("PRC", "cn-2026"),
)
"""Time-zone prefixes and the shipped profile of their jurisdiction."""


def profile_for_zone(zone: str) -> str | None:
    """The shipped profile whose jurisdiction holds the IANA ``zone``, or None."""
    for prefix, profile in JURISDICTIONS:
        if str(zone).startswith(prefix):
            return profile
    return None


@dataclass(frozen=True)
class Rule:
    """One rule of a policy: its id, kind, parameters and the source it rests on."""

    id: str
    kind: str
    params: Mapping[str, Any]
    source: str

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels the rule governs."""
        return tuple(self.params.get("channels", ()))

    @property
    def scope(self) -> str:
        """``customer`` (the default, the stricter) or ``account``: whose contacts the rule counts."""
        return str(self.params.get("scope", "customer"))

    def window_hours(self) -> float | None:
        """Rolling window of an ``attempt_cap`` in hours; None for the local calendar day."""
        window = str(self.params["window"])
        return None if window == "day" else float(window[:-1])

    def minutes(self, key: str) -> int:
        """``start`` / ``end`` as minutes after midnight."""
        hours, minutes = str(self.params[key]).split(":")
        return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class OutreachPolicy:
    """A compliance policy: rules evaluated before any ranking, banned content, texts.

    Load one with :meth:`load` (a shipped profile name or a file path) or build
    one from a mapping with :meth:`from_dict`. ``version`` is recorded on every
    recommendation; ``hash`` identifies the exact content.
    """

    id: str
    version: str
    jurisdiction: str
    language: str
    channels: tuple[str, ...]
    electronic: tuple[str, ...]
    planning_horizon_hours: float
    currency: str
    rules: tuple[Rule, ...]
    banned: tuple[Mapping[str, Any], ...]
    opt_out_text: Mapping[str, str]
    debt_advice: Mapping[str, str]
    offer_outcome: str
    description: str = ""
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, name_or_path: str | Path) -> OutreachPolicy:
        """A shipped profile by name (see :data:`PROFILES`) or a policy file (.toml or .json) by path."""
        text_name = str(name_or_path)
        if text_name in PROFILES:
            raw = resources.files("riskscore.outreach").joinpath("policies", f"{text_name}.toml").read_bytes()
            return cls.from_dict(_parse(raw, ".toml", text_name), origin=f"profile {text_name!r}")
        path = Path(name_or_path)
        if path.suffix.lower() not in (".toml", ".json") or not path.is_file():
            raise PolicyError(
                f"unknown outreach policy {text_name!r}: give a shipped profile ({', '.join(PROFILES)}) "
                "or the path of an existing .toml or .json policy file"
            )
        return cls.from_dict(_parse(path.read_bytes(), path.suffix.lower(), str(path)), origin=str(path))

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], origin: str = "policy") -> OutreachPolicy:
        """Validate a policy document (the parsed file) and build the policy."""
        problems: list[str] = []
        header = document.get("policy")
        if not isinstance(header, Mapping):
            raise PolicyError(f"{origin}: a [policy] table with {', '.join(_HEADER)} is required")
        for key, kind in _HEADER.items():
            if key not in header:
                problems.append(f"[policy] needs '{key}'")
            elif not isinstance(header[key], kind) or isinstance(header[key], bool):
                problems.append(f"[policy] {key} must be {_kind_name(kind)}; got {header[key]!r}")
        if problems:
            raise PolicyError(f"{origin}: " + "; ".join(problems))
        channels = tuple(str(c) for c in header["channels"])
        electronic = tuple(str(c) for c in header["electronic"])
        if not set(electronic) <= set(channels):
            problems.append(f"[policy] electronic {list(electronic)} must be among channels {list(channels)}")
        if header["language"] not in _LANGS:
            problems.append(f"[policy] language must be one of {list(_LANGS)}; got {header['language']!r}")
        horizon = header["planning_horizon_hours"]
        if not (math.isfinite(horizon) and horizon > 0):
            problems.append(f"[policy] planning_horizon_hours must be a finite number > 0; got {horizon!r}")
        rules = []
        seen: set[str] = set()
        raw_rules = document.get("rules", [])
        if not isinstance(raw_rules, list) or not raw_rules:
            problems.append("at least one [[rules]] entry is required")
            raw_rules = []
        for i, raw in enumerate(raw_rules):
            rule, rule_problems = _rule(i, raw, channels, seen)
            problems += rule_problems
            if rule is not None:
                rules.append(rule)
        if not any(r.kind == "timezone_required" for r in rules) and any(r.kind == "contact_hours" for r in rules):
            problems.append("contact_hours needs a timezone_required rule (contact without a zone must fail closed)")
        banned = []
        for i, raw in enumerate(document.get("banned", [])):
            where = f"[[banned]] #{i + 1}"
            if not isinstance(raw, Mapping) or not all(k in raw for k in ("id", "category", "patterns", "source")):
                problems.append(f"{where} needs id, category, patterns and source")
                continue
            patterns = raw["patterns"]
            if not isinstance(patterns, list) or not patterns:
                problems.append(f"{where} ({raw['id']}): patterns must be a non-empty list; got {patterns!r}")
                continue
            bad = [problem for _, problem in map(compile_pattern, patterns) if problem is not None]
            problems += [f"{where} ({raw['id']}): {problem}" for problem in bad]
            banned.append(dict(raw))
        opt_out = _texts(document.get("opt_out_text", {}), "opt_out_text", problems)
        advice = _texts(header.get("debt_advice", {}), "[policy] debt_advice", problems)
        if problems:
            raise PolicyError(f"{origin}: " + "; ".join(problems))
        return cls(
            id=str(header["id"]),
            version=str(header["version"]),
            jurisdiction=str(header["jurisdiction"]),
            language=str(header["language"]),
            channels=channels,
            electronic=electronic,
            planning_horizon_hours=float(header["planning_horizon_hours"]),
            currency=str(header["currency"]),
            rules=tuple(rules),
            banned=tuple(banned),
            opt_out_text=opt_out,
            debt_advice=advice,
            offer_outcome=str(header.get("events_offer_outcome", "plan_offered")),
            description=str(header.get("description", "")),
            document=json.loads(json.dumps(document)),
        )

    @property
    def hash(self) -> str:
        """SHA-256 of the policy document (canonical JSON), first 16 hex digits."""
        canonical = json.dumps(self.document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @functools.cached_property
    def content(self) -> BannedContent:
        """The banned patterns compiled for matching (RE2, linear time)."""
        return BannedContent(self.banned)

    def rules_of(self, kind: str) -> tuple[Rule, ...]:
        """The rules of one kind, in file order."""
        return tuple(r for r in self.rules if r.kind == kind)

    def to_frame(self) -> Any:
        """The rules as a table: id, kind, channels, parameters, source."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "channels": ", ".join(r.channels),
                    "parameters": ", ".join(f"{k}={v}" for k, v in r.params.items() if k != "channels"),
                    "source": r.source,
                }
                for r in self.rules
            ]
        )

    def __repr__(self) -> str:
        return f"OutreachPolicy({self.id!r}, version {self.version!r}, {len(self.rules)} rules)"


def _parse(raw: bytes, suffix: str, origin: str, what: str = "policy") -> dict[str, Any]:
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is not content
        parsed = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{origin}: not a valid {suffix[1:].upper()} {what} file: {exc}") from exc
    except RecursionError as exc:
        raise PolicyError(f"{origin}: not a valid {what} file: nested too deeply to read") from exc
    if not isinstance(parsed, dict):
        raise PolicyError(f"{origin}: a {what} file must hold a table/object at the top")
    _check_values(parsed, origin, what, "", 0)
    return parsed


def _check_values(value: Any, origin: str, what: str, where: str, depth: int) -> None:
    """Refuse what JSON cannot hold (TOML dates and times) and nesting deeper than any policy needs."""
    if depth > 16:
        raise PolicyError(f"{origin}: {where or 'the document'} is nested more than 16 levels: not a {what} file")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_values(item, origin, what, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_values(item, origin, what, f"{where}[{i}]", depth + 1)
    elif not isinstance(value, (str, int, float, bool)) and value is not None:
        raise PolicyError(
            f"{origin}: {where} must be text, a number, a true/false or a list or table of them; got "
            f"{type(value).__name__} {value!s} (quote dates and times)"
        )


def read_document(
    source: str | Path | Mapping[str, Any] | None, shipped: str, what: str
) -> tuple[Mapping[str, Any], str]:
    """A data document: the shipped file ``shipped`` (None), a .toml/.json path, or a parsed mapping; and its origin."""
    if source is None:
        raw = resources.files("riskscore.outreach").joinpath(shipped).read_bytes()
        return _parse(raw, ".toml", shipped, what), shipped
    if isinstance(source, Mapping):
        return source, what
    path = Path(source)
    if not path.is_file() or path.suffix.lower() not in (".toml", ".json"):
        raise PolicyError(f"{what} {str(source)!r}: not an existing .toml or .json file")
    return _parse(path.read_bytes(), path.suffix.lower(), str(path), what), str(path)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {"str": "text", "int": "a whole number", "float": "a number", "list": "a list"}
    return " or ".join(names.get(k.__name__, k.__name__) for k in kinds)


def _texts(raw: Any, where: str, problems: list[str]) -> dict[str, str]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping) or set(raw) != set(_LANGS) or not all(isinstance(v, str) for v in raw.values()):
        problems.append(f"{where} must give a text for each of {list(_LANGS)}")
        return {}
    return {str(k): str(v) for k, v in raw.items()}


def _rule(i: int, raw: Any, channels: tuple[str, ...], seen: set[str]) -> tuple[Rule | None, list[str]]:
    where = f"[[rules]] #{i + 1}"
    if not isinstance(raw, Mapping):
        return None, [f"{where} must be a table"]
    rule_id, kind = raw.get("id"), raw.get("kind")
    if not isinstance(rule_id, str) or not rule_id:
        return None, [f"{where} needs an id"]
    where = f"rule {rule_id}"
    if rule_id in seen:
        return None, [f"{where}: the id is used twice"]
    seen.add(rule_id)
    if kind not in _KINDS:
        return None, [f"{where}: unknown kind {kind!r} (known: {', '.join(_KINDS)})"]
    problems = []
    if not isinstance(raw.get("source"), str) or not raw["source"]:
        problems.append(f"{where}: a source note is required")
    spec = {**_KINDS[kind], **_OPTIONAL.get(kind, {})}
    params: dict[str, Any] = {}
    for key, expected in spec.items():
        if key not in raw:
            if key not in _OPTIONAL.get(kind, {}):
                problems.append(f"{where} ({kind}) needs '{key}'")
            continue
        value = raw[key]
        if not isinstance(value, expected) or isinstance(value, bool):
            problems.append(f"{where}: {key} must be {_kind_name(expected)}; got {value!r}")
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where}: {key} must be a finite number; got {value!r}")
            continue
        if isinstance(value, list) and not all(isinstance(v, str) and v for v in value):
            problems.append(f"{where}: {key} must be a list of non-empty texts; got {value!r}")
            continue
        params[key] = value
    unknown = set(raw) - set(spec) - {"id", "kind", "source"}
    if unknown:
        problems.append(f"{where}: unknown parameter(s) {sorted(unknown)} for kind {kind}")
    bad_channels = [c for c in params.get("channels", []) if c not in channels]
    if bad_channels:
        problems.append(f"{where}: channels {bad_channels} are not among the policy's channels {list(channels)}")
    for key in ("start", "end"):
        if key in params and not _TIME.match(params[key]):
            problems.append(f"{where}: {key} must be HH:MM (24-hour); got {params[key]!r}")
    if kind == "contact_hours" and not problems and params["start"] >= params["end"]:
        problems.append(f"{where}: start {params['start']} must be before end {params['end']}")
    if kind == "attempt_cap" and not problems:
        if params["max"] < 0:
            problems.append(f"{where}: max must be >= 0; got {params['max']}")
        window = _WINDOW.match(params["window"])
        if params["window"] != "day" and not (window and 0 < float(window.group(1)) < math.inf):
            problems.append(
                f"{where}: window must be 'day' or a positive number of hours like '168h'; got {params['window']!r}"
            )
    if kind == "quiet_after_conversation" and not problems and params["hours"] < 0:
        problems.append(f"{where}: hours must be >= 0; got {params['hours']}")
    if kind == "offer_cooldown" and not problems and params["days"] < 0:
        problems.append(f"{where}: days must be >= 0; got {params['days']}")
    if "scope" in params and params["scope"] not in SCOPES:
        problems.append(f"{where}: scope must be 'customer' or 'account'; got {params['scope']!r}")
    if kind == "suppress" and "route" in params and params["route"] not in ("none", "human_review"):
        problems.append(f"{where}: route must be 'none' or 'human_review'; got {params['route']!r}")
    if kind == "support" and "action" in params and params["action"] not in ("human_review", "repayment_plan", "none"):
        problems.append(f"{where}: action must be human_review, repayment_plan or none; got {params['action']!r}")
    if problems:
        return None, problems
    return Rule(id=rule_id, kind=str(kind), params=params, source=str(raw["source"])), []
