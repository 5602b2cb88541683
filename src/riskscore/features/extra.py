"""The lender's own columns of an event table: which become features, how, and with what expected direction.

A column outside a table's data contract is summarised when it is usable: a
number, or a text code with a few frequent levels (a status). Protected
attributes, identifiers, personal details and free text never are; each column
left out is reported with the reason (the builder's ``excluded_``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskscore.data.schema import SCHEMA
from riskscore.features.account import MIN_LEVEL_ROWS, frequent_levels, unusable
from riskscore.features.names import level_token

__all__ = ["OwnColumns", "check_directions", "contract_columns", "level_codes", "own_columns"]


def contract_columns(table: str) -> frozenset[str]:
    """The columns the data contract defines for ``table`` (required and optional): never a lender's own."""
    return frozenset(column.name for column in SCHEMA[table])


def level_codes(column: pd.Series, levels: list[str]) -> np.ndarray:
    """The fitted level of each row's code (-1: missing or a level unseen at fit)."""
    return np.asarray(pd.Categorical(column.astype("string"), categories=levels).codes, dtype=np.int64)


@dataclass
class OwnColumns:
    """The usable own columns of one table: numbers, text codes (with their levels), and those left out."""

    numeric: list[str] = field(default_factory=list)
    coded: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def own_columns(
    name: str,
    table: pd.DataFrame,
    excluded: Collection[str],
    chosen: Sequence[str] | None = None,
    option: str = "",
) -> OwnColumns:
    """Classify the columns of ``table`` outside the data contract (or the ``chosen`` ones, which must be usable).

    ``name`` is the table's name (``skipped`` keys are ``"<name>.<column>"``);
    ``option`` the builder option that chose the columns, named in the error
    raised when a chosen column cannot be used.
    """
    found = OwnColumns()
    problems: list[str] = []
    contract = contract_columns(name)
    for col in [c for c in table.columns if c not in contract] if chosen is None else list(chosen):
        if col in contract:
            problems.append(f"{col!r} is a contract column with features of its own")
            continue
        if col not in table.columns:
            problems.append(f"{col!r} is not a {name} column")
            continue
        series = table[col]
        why = "a protected attribute: never a feature" if col in excluded else unusable(str(col), series)
        if why is None and not (
            pd.api.types.is_numeric_dtype(series.dtype)
            or isinstance(series.dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(series.dtype)
        ):
            why = f"dtype {series.dtype} is neither numeric nor text"
        if why is None and not pd.api.types.is_numeric_dtype(series.dtype):
            levels = frequent_levels(series)
            if len(levels) < 2:
                why = f"fewer than two values held by at least {MIN_LEVEL_ROWS} rows each"
            elif len({level_token(v) for v in levels}) < len(levels):
                why = f"two of its {len(levels)} levels read the same as a feature-name part"
            else:
                found.coded[str(col)] = levels
                continue
        if why is not None:
            if chosen is not None:
                problems.append(f"{col!r}: {why}")
            found.skipped[f"{name}.{col}"] = why
            continue
        found.numeric.append(str(col))
    if problems:
        raise ValueError(f"{option or name} must be usable non-contract columns of {name}; {'; '.join(problems)}")
    return found


def check_directions(
    directions: Mapping[str, int], numeric: Mapping[str, Collection[str]]
) -> dict[str, dict[str, int]]:
    """The caller's expected directions per table and column, each checked against the numeric own columns used.

    ``directions`` maps ``"<table>.<column>"`` (or a bare column, for every table
    using it) to +1 (higher means riskier), -1 or 0; ``numeric`` the numeric own
    columns each table turns into features. Returns ``{table: {column: direction}}``.
    """
    out: dict[str, dict[str, int]] = {table: {} for table in numeric}
    problems: list[str] = []
    for key, value in directions.items():
        if isinstance(value, bool) or value not in (-1, 0, 1):
            problems.append(f"{key!r}: the direction must be -1, 0 or +1; got {value!r}")
            continue
        table, _, column = str(key).rpartition(".")
        tables = [table] if table else [t for t, cols in numeric.items() if column in cols]
        if table and column not in numeric.get(table, ()):
            tables = []
        if not tables:
            usable = sorted(f"{t}.{c}" for t, cols in numeric.items() for c in cols)
            problems.append(f"{key!r} is not a numeric own column the builder uses (usable: {usable[:12] or 'none'})")
            continue
        for t in tables:
            out[t][column] = int(value)
    if problems:
        raise ValueError(f"directions: {'; '.join(problems)}")
    return out
