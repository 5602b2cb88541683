"""The rules of the data contract across columns, tables and accounts; sorting.

:func:`validate` runs every rule on the given tables and raises one
``DataValidationError`` listing every problem found, or returns the tables
converted and sorted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from riskscore.data.convert import CONVERTERS, Checker, fmt
from riskscore.data.schema import EVENT_TABLES, NOT_BEFORE_OPEN, SCHEMA, SORT_KEYS, Column
from riskscore.errors import DataValidationError, Problem

__all__ = ["id_kind", "sorted_table", "validate"]

logger = logging.getLogger("riskscore.data")


def _check_table(table: str, frame: object, problems: list[Problem]) -> tuple[pd.DataFrame | None, set[str]]:
    """Convert and check one table on its own; returns it and the columns usable."""
    if not isinstance(frame, pd.DataFrame):
        problems.append(Problem(table, None, "type", f"must be a pandas DataFrame; got {type(frame).__name__}"))
        return None, set()
    dup = frame.columns[frame.columns.duplicated()].unique().tolist()
    if dup:
        problems.append(Problem(table, str(dup[0]), "unique_columns", f"column names must be unique; got {dup} twice"))
        return None, set()
    df = frame.copy()
    chk = Checker(table, df, problems)
    good: set[str] = set()
    for spec in SCHEMA[table]:
        if spec.name not in df.columns:
            if spec.required:
                hint = ""
                if spec.name in (df.index.names or []):
                    hint = " (it is the index: call .reset_index() first)"
                chk.add(
                    spec.name,
                    "required_column",
                    f"required column is missing{hint}; got columns {list(map(str, df.columns))}",
                )
            continue
        before = len(problems)
        converted = CONVERTERS[spec.kind](chk, spec.name, df[spec.name])
        if converted is None:
            continue
        if spec.kind == "integer":
            converted = _to_integer(chk, spec, converted)
        elif spec.kind != "id" and not spec.nullable:
            null = converted.isna().to_numpy() & df[spec.name].isna().to_numpy()
            if null.any():
                chk.add(spec.name, "not_null", "must not be empty", null)
        if spec.non_negative and converted.dtype.kind in "fi":
            neg = (converted < 0).to_numpy()
            if neg.any():
                chk.add(spec.name, "non_negative", f"must be >= 0; got {chk.first_bad(converted, neg)}", neg)
        df[spec.name] = converted
        if len(problems) == before:
            good.add(spec.name)
    return df, good


def _to_integer(chk: Checker, spec: Column, s: pd.Series) -> pd.Series:
    values = s.to_numpy(dtype="float64")
    null = np.isnan(values)
    if null.any():
        chk.add(spec.name, "not_null", "must not be empty", null)
    finite = np.isfinite(values)
    frac = finite & (values != np.round(values))
    if frac.any():
        chk.add(spec.name, "integer", f"must be a whole number; got {chk.first_bad(s, frac)}", frac)
    if null.any() or frac.any() or not finite.all():
        return s
    return s.astype("int64")


def _check_installment_payments(chk: Checker, df: pd.DataFrame, good: set[str]) -> None:
    if not {"paid_date", "amount_paid"} <= good:
        return
    no_date = df["paid_date"].isna().to_numpy()
    amount = df["amount_paid"].to_numpy()
    empty_amount = np.isnan(amount)
    paid = ~empty_amount & (amount > 0)
    bad = no_date & paid
    if bad.any():
        chk.add(
            "paid_date",
            "paid_date_iff_paid",
            f"paid_date must be given when amount_paid > 0; got amount_paid {chk.first_bad(df['amount_paid'], bad)} "
            "with no paid_date",
            bad,
        )
    bad = ~no_date & ~paid
    if bad.any():
        shown = "empty" if empty_amount[bad].any() else "0"
        chk.add(
            "paid_date",
            "paid_date_iff_paid",
            f"paid_date must be empty when nothing was paid; got paid_date "
            f"{chk.first_bad(df['paid_date'], bad)} with amount_paid {shown}",
            bad,
        )
    fill = no_date & empty_amount
    if fill.any():
        logger.info("installments: %d unpaid rows with empty amount_paid stored as 0", int(fill.sum()))
        df["amount_paid"] = df["amount_paid"].fillna(0.0)


def _check_customer_zones(chk: Checker, df: pd.DataFrame) -> None:
    """A customer's accounts must share one time zone: contact hours are the person's."""
    zones = df["timezone"].astype(object).where(df["timezone"].notna(), "(none)")
    per = pd.DataFrame({"customer": df["customer_id"].to_numpy(), "zone": zones.to_numpy()})
    counts = per.groupby("customer", sort=True)["zone"].nunique()
    split = counts.index[counts.to_numpy() > 1]
    if len(split):
        first = split[0].item() if hasattr(split[0], "item") else split[0]
        shown = sorted(str(z) for z in per.loc[per["customer"] == first, "zone"].unique())
        bad = per["customer"].isin(split).to_numpy()
        chk.add(
            "timezone",
            "customer_zone",
            f"a customer's accounts must share one time zone (contact hours are the person's); "
            f"{len(split):,} {'customer does' if len(split) == 1 else 'customers do'} not, e.g. customer_id "
            f"{first!r} has {shown}",
            bad,
        )


def _check_unique(chk: Checker, df: pd.DataFrame, keys: list[str], what: str) -> None:
    dup = df.duplicated(subset=keys, keep=False).to_numpy()
    if dup.any():
        chk.add(
            keys[-1],
            "unique",
            f"must have one row per {what}; got {int(dup.sum()):,} rows sharing a key",
            dup,
        )


# --------------------------------------------------------------------------- EventData


def validate(given: Mapping[str, object], protected: Iterable[str] | None) -> dict[str, pd.DataFrame]:
    """Every table converted, checked and sorted; one ``DataValidationError`` with every problem otherwise."""
    problems: list[Problem] = []
    tables: dict[str, pd.DataFrame] = {}
    good: dict[str, set[str]] = {}
    if "accounts" not in given:
        problems.append(Problem("accounts", None, "required_table", "the accounts table is required"))
    if not any(name in given for name in EVENT_TABLES):
        problems.append(
            Problem(
                "events",
                None,
                "required_table",
                "at least one of statements, installments, transactions must be given; got none",
            )
        )
    for name, frame in given.items():
        df, ok = _check_table(name, frame, problems)
        if df is not None:
            tables[name] = df
            good[name] = ok
    for name, df in tables.items():
        chk = Checker(name, df, problems)
        if name == "accounts" and "account_id" in good[name]:
            _check_unique(chk, df, ["account_id"], "account_id")
        if name == "accounts" and {"open_date", "close_date"} <= good[name]:
            early = (df["close_date"] < df["open_date"]).to_numpy()
            if early.any():
                chk.add(
                    "close_date",
                    "not_before_open",
                    f"must not be before open_date; got {chk.first_bad(df['close_date'], early)}",
                    early,
                )
        if name == "accounts" and {"customer_id", "timezone"} <= good[name]:
            _check_customer_zones(chk, df)
        if name == "statements" and {"account_id", "statement_date"} <= good[name]:
            _check_unique(chk, df, ["account_id", "statement_date"], "(account_id, statement_date)")
        if name == "installments":
            _check_installment_payments(chk, df, good[name])
    if "accounts" in tables:
        _check_against_accounts(tables, good, problems)
    protected = list(protected or ())
    if "accounts" in tables:
        missing = [c for c in protected if c not in tables["accounts"].columns]
        if missing:
            problems.append(
                Problem(
                    "accounts",
                    str(missing[0]),
                    "protected_column",
                    f"protected attributes must be columns of accounts; got {missing}",
                )
            )
    if problems:
        raise DataValidationError(problems)
    for name, df in tables.items():
        tables[name] = sorted_table(df, SORT_KEYS[name])
    return tables


def sorted_table(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``df`` stably sorted by ``keys`` (NaT last), without copying when already sorted."""
    arrays = []
    for key in keys:
        col = df[key]
        if pd.api.types.is_integer_dtype(col.dtype):
            arrays.append(col.to_numpy(dtype=np.int64))
        elif pd.api.types.is_datetime64_dtype(col.dtype):
            values = col.to_numpy().view(np.int64).copy()
            values[np.isnat(col.to_numpy())] = np.iinfo(np.int64).max  # NaT last
            arrays.append(values)
        else:
            arrays.append(pd.factorize(col, sort=True)[0].astype(np.int64))
    if len(df) > 1:
        ordered = np.zeros(len(df) - 1, dtype=bool)  # already strictly ordered by an earlier key
        in_order = True
        for values in arrays:
            step = np.diff(values)
            if ((~ordered) & (step < 0)).any():
                in_order = False
                break
            ordered |= step > 0
        if not in_order:
            order = np.lexsort(arrays[::-1])
            return df.take(order).reset_index(drop=True)
    return df.reset_index(drop=True)


def id_kind(dtype: Any) -> str:
    """``"integer"`` or ``"text"``: the two kinds an id column may have."""
    return "integer" if pd.api.types.is_integer_dtype(dtype) else "text"


def _check_against_accounts(
    tables: dict[str, pd.DataFrame], good: dict[str, set[str]], problems: list[Problem]
) -> None:
    accounts = tables["accounts"]
    if "account_id" not in good["accounts"]:
        return
    ids = accounts["account_id"]
    open_date = None
    if "open_date" in good["accounts"]:
        open_date = pd.Series(accounts["open_date"].to_numpy(), index=ids.to_numpy())
        if not open_date.index.is_unique:
            open_date = open_date[~open_date.index.duplicated()]
    for name, df in tables.items():
        if name == "accounts" or "account_id" not in good[name]:
            continue
        chk = Checker(name, df, problems)
        ev_ids = df["account_id"]
        if id_kind(ev_ids.dtype) != id_kind(ids.dtype):
            chk.add(
                "account_id",
                "dtype",
                f"account_id must have the type of accounts.account_id ({ids.dtype}); got {ev_ids.dtype}",
            )
            continue
        known = ev_ids.isin(ids).to_numpy()
        if not known.all():
            chk.add(
                "account_id",
                "known_account",
                f"every account_id must exist in accounts; got unknown account_id {chk.first_bad(ev_ids, ~known)}",
                ~known,
            )
        if open_date is None:
            continue
        opened = open_date.reindex(ev_ids.to_numpy()).to_numpy()
        for col in NOT_BEFORE_OPEN[name]:
            if col not in good[name]:
                continue
            when = df[col].to_numpy()
            early = known & ~np.isnat(when) & (when < opened)
            if early.any():
                chk.add(
                    col,
                    "not_before_open",
                    f"must not be before the account's open_date; got {chk.first_bad(df[col], early)} "
                    f"for an account opened {fmt(pd.Timestamp(opened[early][0]))}",
                    early,
                )


# --------------------------------------------------------------------------- files
