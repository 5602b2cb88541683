r"""Banned message content: a policy's ``[[banned]]`` patterns, matched in linear time.

Patterns are written in RE2 syntax (Python's ``re`` syntax without
backreferences and lookaround; ``\b``, ``\w`` and ``\d`` are ASCII). RE2
matches in time linear in the text whatever the pattern, so a pattern with
nested quantifiers such as ``(a+)+$`` cannot hang loading or rendering; a
pattern RE2 cannot run is refused when the policy loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

__all__ = ["BannedContent", "Breach", "compile_pattern"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would otherwise print its own parse errors on stderr
_OPTIONS.max_mem = 8 << 20  # a pattern whose automaton needs more is refused, not run slowly


def compile_pattern(pattern: Any) -> tuple[Any, str | None]:
    """``pattern`` compiled for RE2, or None and the reason it cannot be used."""
    if not isinstance(pattern, str) or not pattern:
        return None, f"a pattern must be non-empty text; got {pattern!r}"
    try:
        return re2.compile(pattern, options=_OPTIONS), None
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return None, (
            f"pattern {pattern!r} is not a regular expression the linear-time engine (RE2) accepts: {detail} "
            "(backreferences and lookaround are not supported)"
        )


@dataclass(frozen=True)
class Breach:
    """One banned pattern found in a text."""

    id: str
    category: str
    source: str
    pattern: str
    match: str

    def describe(self) -> str:
        """``breaks <id> (<category>): '<match>' matches '<pattern>' [<source>]``."""
        return f"breaks {self.id} ({self.category}): {self.match!r} matches {self.pattern!r} [{self.source}]"


class BannedContent:
    """The banned patterns of a policy, compiled once: one combined search per text, details on a hit."""

    def __init__(self, banned: Sequence[Mapping[str, Any]]) -> None:
        self._each: list[tuple[Mapping[str, Any], str, Any]] = []
        for ban in banned:
            for pattern in ban["patterns"]:
                compiled, problem = compile_pattern(pattern)
                if problem is not None:
                    raise ValueError(problem)
                self._each.append((ban, str(pattern), compiled))
        combined = "|".join(f"(?:{pattern})" for _, pattern, _ in self._each)
        self._any = re2.compile(combined, options=_OPTIONS) if self._each else None

    def __bool__(self) -> bool:
        return self._any is not None

    def breaches(self, text: str) -> list[Breach]:
        """Every banned pattern found in ``text`` (empty when the text is clean)."""
        if self._any is None or self._any.search(text) is None:
            return []
        out = []
        for ban, pattern, compiled in self._each:
            m = compiled.search(text)
            if m is not None:
                out.append(Breach(str(ban["id"]), str(ban["category"]), str(ban["source"]), pattern, m.group(0)))
        return out

    def clean(self, text: str) -> bool:
        """Whether ``text`` holds no banned pattern (one search)."""
        return self._any is None or self._any.search(text) is None
