"""The exceptions riskscore raises.

One small hierarchy, so callers can catch everything riskscore raises on purpose
with ``except RiskscoreError`` and still tell the kinds apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "AdditivityError",
    "AuditError",
    "BatchOutputError",
    "BundleIntegrityError",
    "DataValidationError",
    "NotFittedError",
    "PolicyError",
    "Problem",
    "RiskscoreError",
]


class RiskscoreError(Exception):
    """Base class of every error riskscore raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One rule broken by the event data.

    Attributes
    ----------
    table : str
        The table, e.g. ``"statements"``.
    column : str or None
        The column, or ``None`` for a rule about the whole table.
    rule : str
        A short stable identifier of the rule, e.g. ``"non_negative"``.
    message : str
        What must hold and what was given.
    n_rows : int
        How many rows break the rule (0 for a rule about the table).
    account_ids : tuple
        Up to five example ``account_id`` values of offending rows.
    n_accounts : int
        How many distinct accounts the offending rows belong to.
    """

    table: str
    column: str | None
    rule: str
    message: str
    n_rows: int = 0
    account_ids: tuple[object, ...] = field(default_factory=tuple)
    n_accounts: int = 0

    @property
    def where(self) -> str:
        """``table.column`` (or the table alone)."""
        return self.table if self.column is None else f"{self.table}.{self.column}"

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        if self.n_rows:
            rows = "1 row" if self.n_rows == 1 else f"{self.n_rows:,} rows"
            text += f" [{rows}"
            if self.account_ids:
                ids = ", ".join(repr(a) if isinstance(a, str) else str(a) for a in self.account_ids)
                text += f"; account_id {ids}"
                if self.n_accounts > len(self.account_ids):
                    text += ", ..."
            text += "]"
        return text


class DataValidationError(RiskscoreError, ValueError):
    """The event data breaks the data contract.

    Every problem found is reported at once, not only the first; they are also
    available as :attr:`problems` for programs that want to act on them.
    """

    def __init__(self, problems: Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(table="?", column=None, rule="invalid", message=problems)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        n = len(self.problems)
        head = "1 problem" if n == 1 else f"{n} problems"
        lines = [f"invalid event data: {head} found"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class NotFittedError(RiskscoreError, _SklearnNotFittedError):  # type: ignore[misc]
    """An estimator was used before ``fit``.

    Subclasses scikit-learn's ``NotFittedError`` so ``check_is_fitted`` users catch it.
    """


class BundleIntegrityError(RiskscoreError):
    """A saved model bundle is incomplete, altered, or of an unknown version."""


class PolicyError(RiskscoreError, ValueError):
    """An outreach policy profile is unknown or a policy file is malformed."""


class AdditivityError(RiskscoreError, ArithmeticError):
    """Contributions do not add up to the model's margin: the explanation would be untrue."""


class AuditError(RiskscoreError):
    """An audit record is malformed or its inputs do not match their hash."""


class BatchOutputError(RiskscoreError):
    """A batch output folder is incomplete, in use by another run, or not what riskscore wrote."""
