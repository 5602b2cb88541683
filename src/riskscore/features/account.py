"""Account features (prefix ``acct_``): tenure, credit limit, product, static attributes.

Static attributes of ``accounts`` are known at ``open_date`` and passed through:
numbers as numbers, text as categoricals with the levels seen at fit. Protected
attributes are never passed through (see ``FeatureBuilder``), nor are operational
columns (``timezone``, ``close_date``) or other dates. The credit limit at
``as_of`` is the one on the latest statement before it when statements carry
``credit_limit``, else the account's.
"""

from __future__ import annotations

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
OPERATIONAL = frozenset({"account_id", "open_date", "credit_limit", "product", "timezone", "close_date"})


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
        if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
            numeric.append(col)
        elif isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(series.dtype):
            levels = sorted({str(v) for v in series.dropna().unique()})
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
    for col in fitted["numeric"]:
        out.append(
            FeatureSpec(account_feature_name(col), NAME, None, f"account attribute {col}", 0, "customer_profile")
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
