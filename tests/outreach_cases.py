"""Hand-described outreach cases shared by the outreach tests: accounts, scores, explanations, events."""

from __future__ import annotations

from typing import Any

import pandas as pd

import riskscore as rs
from riskscore.features import describe
from tests.test_segments import CALM_CARD

AS_OF = pd.Timestamp("2026-03-01")

# Feature values that make each segment: the calm card of tests/test_segments.py, varied.
CARD = {**CALM_CARD, "inst_late_count_365d": 0.0, "inst_days_late_max_365d": 0.0}
SEGMENT_VALUES = {
    "forgetful": {**CARD, "stmt_late_count_365d": 2.0},
    "cannot_pay": {**CARD, "stmt_pay_ratio_last": 0.03, "stmt_pay_ratio_mean_180d": 0.04, "stmt_util_mean_90d": 1.0},
    "will_not_pay": {**CARD, "txn_amount_velocity_30d_90d": 2.5, "stmt_balance_growth_90d": 0.5},
    "unknown": {**CARD, "stmt_history_count": 0.0},
}


def make_case(
    accounts: list[dict[str, Any]],
    contacts: list[tuple[Any, str, str, str, str | None]] = (),  # type: ignore[assignment]
) -> tuple[pd.DataFrame, rs.Explanation, rs.EventData]:
    """Events, scores and an explanation for hand-described accounts.

    Each account dict: ``account_id``, optional ``timezone`` (default New York; None for none),
    ``band`` (default "E"), ``pd`` (default 0.15), ``segment`` (default "forgetful"), flags.
    """
    rows, stmts, values = [], [], []
    for a in accounts:
        rows.append(
            {
                "account_id": a["account_id"],
                "open_date": pd.Timestamp("2024-01-01"),
                "credit_limit": 5000.0,
                "timezone": a.get("timezone", "America/New_York"),
                **{k: a[k] for k in rs.outreach.FLAGS if k in a},
            }
        )
        for m in range(3):
            stmts.append(
                {
                    "account_id": a["account_id"],
                    "statement_date": AS_OF - pd.DateOffset(months=3 - m) + pd.Timedelta(days=4),
                    "balance": 1200.0,
                    "payment": 300.0,
                    "dpd": 0,
                    "min_due": 36.0,
                }
            )
        values.append(SEGMENT_VALUES[a.get("segment", "forgetful")])
    contact_frame = None
    if contacts:
        contact_frame = pd.DataFrame(contacts, columns=["account_id", "timestamp", "channel", "outcome", "direction"])
        contact_frame["timestamp"] = pd.to_datetime(contact_frame["timestamp"])
    events = rs.EventData(accounts=pd.DataFrame(rows), statements=pd.DataFrame(stmts), contacts=contact_frame)
    index = pd.MultiIndex.from_arrays([[a["account_id"] for a in accounts], [AS_OF] * len(accounts)])
    index = index.set_names(["account_id", "as_of"])
    data = pd.DataFrame(values, index=index)
    contributions = pd.DataFrame(0.0, index=index, columns=data.columns)
    contributions["stmt_pay_ratio_last"] = 0.4
    contributions["stmt_late_count_365d"] = 0.2
    explanation = rs.Explanation(
        values=contributions,
        base_value=-3.0,
        margin=contributions.sum(axis=1) - 3.0,
        data=data,
        catalogue=describe(list(data.columns)),
    )
    scores = pd.DataFrame(
        {"pd": [a.get("pd", 0.15) for a in accounts], "points": 600, "band": [a.get("band", "E") for a in accounts]},
        index=index,
    )
    return scores, explanation, events


def one(policy: str, now: Any, account: dict[str, Any] | None = None, contacts: Any = (), **kw: Any) -> pd.Series:
    scores, expl, events = make_case([{"account_id": 1, **(account or {})}], contacts)
    return rs.recommend(scores, expl, events, policy, now=now, **kw).iloc[0]


def ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/New_York")


def sh(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Shanghai")
