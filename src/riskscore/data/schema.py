"""The data contract's schema: tables, columns, kinds, time columns and sort keys.

The one description of the event tables (DESIGN.md section 1) that validation,
file reading and batch scoring all use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "EVENT_TABLES",
    "NOT_BEFORE_OPEN",
    "SCHEMA",
    "SORT_KEYS",
    "TABLES",
    "TIME_COLUMN",
    "Column",
    "Kind",
    "required_columns",
]

TABLES: tuple[str, ...] = ("accounts", "statements", "installments", "transactions", "contacts")
"""The table names of the data contract, in the order they are described."""

EVENT_TABLES = ("statements", "installments", "transactions")
"""The tables of events that make an account's history (at least one is required)."""

Kind = Literal["id", "date", "number", "integer", "category", "timezone"]


@dataclass(frozen=True)
class Column:
    """One column of the contract: its name, kind, and whether it is required, nullable, >= 0."""

    name: str
    kind: Kind
    required: bool
    nullable: bool = False
    non_negative: bool = False


def _c(name: str, kind: Kind, *, required: bool = True, **kw: bool) -> Column:
    return Column(name, kind, required, **kw)


SCHEMA: dict[str, tuple[Column, ...]] = {
    "accounts": (
        _c("account_id", "id"),
        _c("open_date", "date"),
        _c("credit_limit", "number", non_negative=True),
        _c("product", "category", required=False, nullable=True),
        _c("timezone", "timezone", required=False, nullable=True),
        _c("close_date", "date", required=False, nullable=True),
        _c("customer_id", "id", required=False),
    ),
    "statements": (
        _c("account_id", "id"),
        _c("statement_date", "date"),
        _c("balance", "number"),
        _c("payment", "number"),
        _c("dpd", "integer", non_negative=True),
        _c("min_due", "number", required=False, nullable=True, non_negative=True),
        _c("credit_limit", "number", required=False, nullable=True, non_negative=True),
    ),
    "installments": (
        _c("account_id", "id"),
        _c("due_date", "date"),
        _c("amount_due", "number", non_negative=True),
        _c("paid_date", "date", nullable=True),
        _c("amount_paid", "number", nullable=True, non_negative=True),
        _c("instalment_no", "integer", required=False, non_negative=True),
    ),
    "transactions": (
        _c("account_id", "id"),
        _c("timestamp", "date"),
        _c("amount", "number"),
        _c("category", "category", required=False, nullable=True),
        _c("channel", "category", required=False, nullable=True),
    ),
    "contacts": (
        _c("account_id", "id"),
        _c("timestamp", "date"),
        _c("channel", "category"),
        _c("outcome", "category"),
        _c("direction", "category", required=False, nullable=True),
    ),
}

# The time at which each table's rows become known (DESIGN.md section 1); events are
# sorted by it within an account, and none may lie before the account's open_date.
TIME_COLUMN: dict[str, str] = {
    "accounts": "open_date",
    "statements": "statement_date",
    "installments": "due_date",
    "transactions": "timestamp",
    "contacts": "timestamp",
}
SORT_KEYS: dict[str, list[str]] = {
    "accounts": ["account_id"],
    "statements": ["account_id", "statement_date"],
    "installments": ["account_id", "due_date", "paid_date"],
    "transactions": ["account_id", "timestamp"],
    "contacts": ["account_id", "timestamp"],
}
NOT_BEFORE_OPEN: dict[str, tuple[str, ...]] = {
    "statements": ("statement_date",),
    "installments": ("due_date", "paid_date"),
    "transactions": ("timestamp",),
    "contacts": ("timestamp",),
}


def required_columns(table: str) -> list[str]:
    """The columns ``table`` must have."""
    return [c.name for c in SCHEMA[table] if c.required]
