"""Policy files: shipped profiles, malformed files, limits read from the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import riskscore as rs
from riskscore.errors import PolicyError
from riskscore.outreach import OutreachPolicy
from tests.outreach_cases import ny, one

# --------------------------------------------------------------------------- policy files


def test_shipped_profiles_load_with_sources() -> None:
    for name in rs.outreach.PROFILES:
        policy = OutreachPolicy.load(name)
        assert policy.id == name and policy.version.startswith(name)
        assert all(rule.source for rule in policy.rules)
        kinds = {rule.kind for rule in policy.rules}
        assert {"timezone_required", "contact_hours", "opt_out", "suppress", "support", "human_only"} <= kinds
        frame = policy.to_frame()
        assert list(frame.columns) == ["id", "kind", "channels", "parameters", "source"]
    assert OutreachPolicy.load("cn-2026").language == "zh"


def test_unknown_profile_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"unknown outreach policy 'xx-2030'.*cn-2026, us-regf, uk-conc"):
        OutreachPolicy.load("xx-2030")
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy\nid = 1", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"bad.toml: not a valid TOML policy file"):
        OutreachPolicy.load(bad)
    doc = json.loads(json.dumps(OutreachPolicy.load("us-regf").document))
    doc["rules"][1]["end"] = "25:00"
    doc["rules"][2]["kind"] = "sometimes"
    del doc["policy"]["currency"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"\[policy\] needs 'currency'"):
        OutreachPolicy.load(path)
    doc["policy"]["currency"] = "$"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        OutreachPolicy.load(path)
    message = str(info.value)
    assert "rule US.TIME.CONVENIENT: end must be HH:MM (24-hour); got '25:00'" in message
    assert "rule US.FREQ.7IN7: unknown kind 'sometimes'" in message


def test_a_limit_changed_in_the_file_changes_the_outcome(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(OutreachPolicy.load("us-regf").document))
    now = ny("2026-03-04 12:00")
    calls = [(1, f"2026-03-0{d} 10:00", "call", "attempt", "outbound") for d in (1, 2, 3)]
    case = {"segment": "will_not_pay"}
    assert one("us-regf", now, case, calls)["channel"] == "call"  # 3 calls < 7
    for rule in doc["rules"]:
        if rule["id"] == "US.FREQ.7IN7":
            rule["max"] = 3
    path = tmp_path / "strict.toml"
    path.write_text(_toml(doc), encoding="utf-8")
    strict = one(path, now, case, calls)
    assert strict["channel"] == "sms"
    assert {"rule": "US.FREQ.7IN7", "channel": "call"}.items() <= strict["blocked"][0].items()


def _toml(doc: dict[str, Any]) -> str:
    """A minimal TOML writer for policy documents (tables, arrays of tables, scalars, lists)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(v)

    lines = []
    for key, section in doc.items():
        if isinstance(section, list):
            for item in section:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {value(v)}" for k, v in item.items()]
        else:
            lines.append(f"[{key}]")
            lines += [f"{k} = {value(v)}" for k, v in section.items()]
    return "\n".join(lines) + "\n"
