"""How simulated borrowers respond to outreach: the known truth an experiment is measured against.

A :class:`Response` says, per behaviour type of :data:`~riskscore.datasets.BEHAVIOURS`
and per action, by how much a contact cuts the chance that the borrower misses
the next payment that falls due after it (and so the chance of reaching 30+
days past due through that payment): 0.6 means six in ten of the misses that
would have happened do not. The defaults follow collections practice:

- ``forgetful`` borrowers mostly pay on time after a reminder before the due date;
- ``hardship`` borrowers avoid arrears mainly through an accepted repayment
  plan, which then holds for ``plan_cycles`` payments;
- ``strategic`` borrowers respond somewhat to calls and not to reminders;
- ``full_payer`` and ``revolver`` borrowers gain nothing and grow annoyed:
  each contact may make them opt out of its channel, more so the more contacts
  they had in the four weeks before.

A contact after the due date it was meant for achieves ``late_factor`` of the
effect. A call works only when it connects (``connect``) and a plan only when
accepted (``accept``); the effect is the cut per contact made, so it may not
exceed those chances. Every number is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from riskscore.datasets.simulator import BEHAVIOURS

__all__ = ["RESPONSE_ACTIONS", "Response"]

RESPONSE_ACTIONS: tuple[str, ...] = ("reminder", "call", "repayment_plan", "human_review")
"""The actions a simulated borrower responds to (those ``recommend`` can carry, but ``none``)."""

_EFFECTS = {  # behaviour: (reminder, call, repayment_plan, human_review)
    "full_payer": (0.0, 0.0, 0.0, 0.0),
    "revolver": (0.0, 0.0, 0.0, 0.0),
    "forgetful": (0.60, 0.45, 0.15, 0.30),
    "hardship": (0.05, 0.10, 0.40, 0.25),
    "strategic": (0.0, 0.20, 0.05, 0.15),
}
_CONNECT = {"full_payer": 0.5, "revolver": 0.45, "forgetful": 0.5, "hardship": 0.4, "strategic": 0.25}
_ACCEPT = {"full_payer": 0.02, "revolver": 0.1, "forgetful": 0.2, "hardship": 0.5, "strategic": 0.1}
_OPT_OUT = {"full_payer": 0.04, "revolver": 0.03, "forgetful": 0.01, "hardship": 0.01, "strategic": 0.02}


def _defaults() -> dict[tuple[str, str], float]:
    return {(b, a): v for b, row in _EFFECTS.items() for a, v in zip(RESPONSE_ACTIONS, row, strict=True)}


@dataclass(frozen=True)
class Response:
    """The simulated borrowers' response to each action: the effects, and how contacts turn out.

    Parameters
    ----------
    effects : dict, optional
        ``{(behaviour, action): cut}`` overriding any cell of the defaults: the
        relative cut in the chance of missing the next payment due (0: no
        effect, 1: every miss averted).
    connect : dict, optional
        ``{behaviour: chance}`` that a call connects (over the defaults).
    accept : dict, optional
        ``{behaviour: chance}`` that an offered repayment plan is accepted.
    opt_out : dict, optional
        ``{behaviour: chance}`` that a contact makes the borrower opt out of its
        channel, times one plus the contacts of the four weeks before.
    late_factor : float, default=0.3
        Share of the effect left when the contact comes after the due date.
    plan_cycles : int, default=3
        Payments an accepted plan covers.

    Examples
    --------
    >>> Response(effects={("forgetful", "call"): 0.0}).effect("forgetful", "call")
    0.0
    >>> Response().effect("forgetful", "reminder")
    0.6
    """

    effects: Mapping[tuple[str, str], float] = field(default_factory=dict)
    connect: Mapping[str, float] = field(default_factory=dict)
    accept: Mapping[str, float] = field(default_factory=dict)
    opt_out: Mapping[str, float] = field(default_factory=dict)
    late_factor: float = 0.3
    plan_cycles: int = 3

    def __post_init__(self) -> None:
        problems: list[str] = []
        cells = _defaults()
        for key, value in dict(self.effects).items():
            if not (isinstance(key, tuple) and len(key) == 2 and key in cells):
                problems.append(
                    f"effects key {key!r} must be (behaviour, action) with behaviour in {list(BEHAVIOURS)} "
                    f"and action in {list(RESPONSE_ACTIONS)}"
                )
            elif not _share(value):
                problems.append(f"effects[{key!r}] must be a number in [0, 1]; got {value!r}")
        for name, given, base in (("connect", self.connect, _CONNECT), ("accept", self.accept, _ACCEPT),
                                  ("opt_out", self.opt_out, _OPT_OUT)):  # fmt: skip
            for who, chance in dict(given).items():
                if who not in base:
                    problems.append(f"{name} key {who!r} is not a behaviour; known: {list(BEHAVIOURS)}")
                elif not _share(chance):
                    problems.append(f"{name}[{who!r}] must be a number in [0, 1]; got {chance!r}")
        if not _share(self.late_factor):
            problems.append(f"late_factor must be a number in [0, 1]; got {self.late_factor!r}")
        if not (isinstance(self.plan_cycles, int) and not isinstance(self.plan_cycles, bool) and self.plan_cycles >= 1):
            problems.append(f"plan_cycles must be a whole number >= 1; got {self.plan_cycles!r}")
        if not problems:
            for b in BEHAVIOURS:
                for action, gate, chance in (("call", "connect", self.connects(b)), ("repayment_plan", "accept",
                                             self.accepts(b))):  # fmt: skip
                    if self.effect(b, action) > chance:
                        problems.append(
                            f"effect of {action} on {b} ({self.effect(b, action)}) exceeds the chance it "
                            f"{'connects' if gate == 'connect' else 'is accepted'} ({chance}): the effect is the "
                            f"cut per contact made, so raise {gate}[{b!r}] or lower the effect"
                        )
        if problems:
            raise ValueError("Response: " + "; ".join(problems))

    def effect(self, behaviour: str, action: str) -> float:
        """The relative cut in the chance of missing the next payment that ``action`` causes for ``behaviour``."""
        if action not in RESPONSE_ACTIONS:
            return 0.0
        return float(dict(self.effects).get((behaviour, action), _defaults()[(behaviour, action)]))

    def connects(self, behaviour: str) -> float:
        """The chance a call to ``behaviour`` connects."""
        return float(dict(self.connect).get(behaviour, _CONNECT[behaviour]))

    def accepts(self, behaviour: str) -> float:
        """The chance ``behaviour`` accepts an offered plan."""
        return float(dict(self.accept).get(behaviour, _ACCEPT[behaviour]))

    def annoyance(self, behaviour: str) -> float:
        """The chance a contact makes ``behaviour`` opt out, before the recent contacts multiply it."""
        return float(dict(self.opt_out).get(behaviour, _OPT_OUT[behaviour]))

    def table(self, name: str) -> np.ndarray:
        """``effect`` as a (behaviours, actions) array, or ``connect`` / ``accept`` / ``opt_out`` per behaviour."""
        if name == "effect":
            return np.array([[self.effect(b, a) for a in RESPONSE_ACTIONS] for b in BEHAVIOURS])
        get = {"connect": self.connects, "accept": self.accepts, "opt_out": self.annoyance}[name]
        return np.array([get(b) for b in BEHAVIOURS])

    def describe(self) -> dict[str, Any]:
        """Every number in force, for a benchmark's record."""
        return {
            "effects": {f"{b}:{a}": self.effect(b, a) for b in BEHAVIOURS for a in RESPONSE_ACTIONS},
            "connect": {b: self.connects(b) for b in BEHAVIOURS},
            "accept": {b: self.accepts(b) for b in BEHAVIOURS},
            "opt_out": {b: self.annoyance(b) for b in BEHAVIOURS},
            "late_factor": self.late_factor,
            "plan_cycles": self.plan_cycles,
        }


def _share(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1
