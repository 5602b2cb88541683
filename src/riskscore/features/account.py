"""Account features (prefix ``acct_``): tenure, credit limit, product, static attributes.

Static attributes of ``accounts`` are known at ``open_date`` and passed through:
numbers as numbers, text as categoricals with the levels seen at fit in at least
``MIN_LEVEL_ROWS`` accounts. Protected attributes are never passed through (see
``FeatureBuilder``), nor are operational columns (``timezone``, ``close_date``),
other dates, or columns that identify a person or hold free text (by name, an
integer column unique per account, a text column with more than ``MAX_LEVELS``
values): the builder reports them in ``excluded_`` with the reason. The credit limit at
``as_of`` is the one on the latest statement before it when statements carry
``credit_limit``, else the account's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.features import engine as E
from riskscore.features._base import Context, FeatureSpec, FitOptions, Window
from riskscore.features.names import account_feature_name

NAME = "account"
TABLE = "accounts"

# Columns with a meaning of their own: never passed through as static attributes.
OPERATIONAL = frozenset({"account_id", "customer_id", "open_date", "credit_limit", "product", "timezone", "close_date"})

MAX_LEVELS = 20
"""A text column with more distinct values than this is an identifier or free text: never a feature."""
MIN_LEVEL_ROWS = 30
"""A level of a text column is kept only when at least this many accounts have it (rarer ones read as missing)."""

# Names that say a column identifies a person or holds a personal detail: never a feature, whatever its values.
_PERSONAL = re.compile(
    r"(^|_)(id|ids|uuid|guid|key|name|names|first_?name|last_?name|surname|email|e_?mail|phone|mobile|tel|fax|"
    r"address|addr|street|city_?address|zip|zip_?code|postcode|postal_?code|ssn|sin|nin|national|national_?id|"
    r"passport|licen[cs]e|iban|bic|swift|card_?number|account_?number|number|no|dob|birth|birthday|birth_?date|"
    r"ip|device|imei|comment|comments|note|notes|remark|remarks|description|free_?text|text)($|_)",
    re.IGNORECASE,
)


def unusable(column: str, series: pd.Series) -> str | None:
    """Why an extra column may not become a feature (an identifier, personal data, free text), or None.

    The reason names the column and counts only, never its values: it is
    reported and stored in model manifests.
    """
    if _PERSONAL.search(column):
        return "its name says it identifies a person or holds free text or a personal detail: never a feature"
    n = int(series.notna().sum())
    distinct = int(series.nunique(dropna=True))
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if numeric:
        if pd.api.types.is_integer_dtype(series.dtype) and n >= 100 and distinct == n:
            return f"every one of its {n:,} values is different: an identifier, never a feature"
        return None
    if distinct > MAX_LEVELS:
        return f"{distinct:,} distinct values (more than {MAX_LEVELS}): an identifier or free text, never a feature"
    return None


def frequent_levels(series: pd.Series) -> list[str]:
    """The levels of a text column that at least ``MIN_LEVEL_ROWS`` rows have, sorted."""
    counts = series.dropna().astype(str).value_counts()
    return sorted(str(v) for v in counts.index[counts.to_numpy() >= MIN_LEVEL_ROWS])


def fit(events: EventData, options: FitOptions) -> dict[str, Any]:
    """Choose the static columns to pass through and learn categorical levels.

    Columns this family cannot use are reported under ``skipped`` (column -> why).
    """
    accounts, excluded, statements = events.accounts, options.excluded, events.statements
    numeric: list[str] = []
    categorical: dict[str, list[Any]] = {}
    skipped: dict[str, str] = {}
    for col in accounts.columns:
        if col in OPERATIONAL or col in excluded:
            continue
        series = accounts[col]
        why = unusable(str(col), series)
        if why is not None:
            skipped[col] = why
        elif pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
            numeric.append(col)
        elif isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(series.dtype):
            levels = frequent_levels(series)
            if len(levels) < 2:
                skipped[col] = f"fewer than two values held by at least {MIN_LEVEL_ROWS} accounts each"
            else:
                categorical[col] = levels
        else:
            skipped[col] = f"dtype {series.dtype} is neither numeric nor text"
    products = sorted({str(v) for v in accounts["product"].dropna().unique()}) if "product" in accounts else None
    return {
        "numeric": numeric,
        "categorical": categorical,
        "skipped": skipped,
        "products": products,
        "limit_history": statements is not None and "credit_limit" in statements.columns,
    }


def specs(windows: Sequence[Window], fitted: dict[str, Any]) -> list[FeatureSpec]:
    """The catalogue entries of this family, in output order."""
    out = [
        FeatureSpec("acct_tenure_days", NAME, None, "days since the account was opened", -1, "account_age"),
        FeatureSpec("acct_credit_limit", NAME, None, "credit limit at the scoring date", -1, "credit_limit"),
    ]
    if fitted["limit_history"]:
        for w in windows:
            days = w.label[:-1]
            out.append(
                FeatureSpec(
                    f"acct_limit_change_{w.label}",
                    NAME,
                    w.label,
                    f"relative change of the credit limit over the last {days} days",
                    -1,
                    "credit_limit",
                )
            )
    if fitted["products"] is not None:
        out.append(FeatureSpec("acct_product", NAME, None, "product (card, loan, ...)", 0, "product"))
    sign = fitted.get("directions", {})
    for col in fitted["numeric"]:
        out.append(
            FeatureSpec(
                account_feature_name(col), NAME, None, f"account attribute {col}", sign.get(col, 0), "customer_profile"
            )
        )
    for col in fitted["categorical"]:
        out.append(
            FeatureSpec(account_feature_name(col), NAME, None, f"account attribute {col}", 0, "customer_profile")
        )
    return out


def compute(ctx: Context) -> dict[str, Any]:
    """Every feature of this family, per observation in sorted order."""
    accounts = ctx.events.accounts
    obs = ctx.obs
    fitted = ctx.fitted
    opened = ctx.timeline.offsets(accounts["open_date"].to_numpy())[obs.code]
    out: dict[str, Any] = {"acct_tenure_days": (obs.as_of - opened) / E.DAY}
    limit = accounts["credit_limit"].to_numpy(dtype=np.float64)[obs.code]
    if fitted["limit_history"]:
        st, _code, index = ctx.table("statements", "statement_date")
        own = st["credit_limit"].to_numpy(dtype=np.float64)
        start, hi = index.start(obs), index.before(obs)
        latest = E.last(own, start, hi)
        limit = np.where(np.isnan(latest), limit, latest)
        for w in ctx.windows:
            lo = index.before(obs, w.seconds)
            earlier = E.first(own, lo, hi)
            out[f"acct_limit_change_{w.label}"] = E.safe_div(E.last(own, lo, hi) - earlier, earlier)
    out["acct_credit_limit"] = limit
    if fitted["products"] is not None:
        out["acct_product"] = _categorical(accounts["product"], fitted["products"], obs.code)
    for col in fitted["numeric"]:
        out[account_feature_name(col)] = accounts[col].to_numpy(dtype=np.float64)[obs.code]
    for col, levels in fitted["categorical"].items():
        out[account_feature_name(col)] = _categorical(accounts[col], levels, obs.code)
    return out


def _categorical(column: pd.Series, levels: list[Any], code: np.ndarray) -> Any:
    """``column`` as a categorical with the fitted levels (unseen values empty), rows ``code``."""
    text = column.astype(object).where(column.notna(), None).map(lambda v: None if v is None else str(v))
    codes = np.asarray(pd.Index(levels).get_indexer(text), dtype=np.int64)
    return pd.Categorical.from_codes(codes[code], dtype=pd.CategoricalDtype(levels))
