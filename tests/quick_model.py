"""A deliberately small, independent labeller and feature set used to check that
the synthetic portfolio is learnable but not trivial.

It does not use riskscore's own builders on purpose: it checks the generator,
so it must not share code (and bugs) with what the generator will be used to test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import riskscore as rs

HORIZON = pd.Timedelta(days=90)


def _loan_state(inst: pd.DataFrame, as_of: pd.DataFrame) -> pd.DataFrame:
    """Per (account, as_of): unpaid overdue instalments and late history, using only the past."""
    per = inst.groupby(["account_id", "due_date"], as_index=False).agg(
        amount_due=("amount_due", "first"),
        paid=("amount_paid", "sum"),
        last_paid=("paid_date", "max"),
    )
    m = as_of.merge(per, on="account_id")
    m = m[m["due_date"] < m["as_of"]]
    settled = (m["paid"] >= m["amount_due"] - 0.01) & (m["last_paid"] < m["as_of"])
    days_late = (m["last_paid"] - m["due_date"]).dt.days.where(settled, (m["as_of"] - m["due_date"]).dt.days)
    recent = m["due_date"] >= m["as_of"] - pd.Timedelta(days=365)
    g = m.assign(
        overdue=~settled,
        late=(days_late > 0) & recent,
        days_late=days_late.where(recent, 0).clip(lower=0),
    ).groupby(["account_id", "as_of"])
    return g.agg(overdue=("overdue", "sum"), late_count=("late", "sum"), late_max=("days_late", "max")).reset_index()


def observations_and_labels(events: rs.EventData) -> pd.DataFrame:
    end = events.data_end
    acc = events.accounts
    months = pd.date_range(acc["open_date"].min().to_period("M").to_timestamp(), end, freq="MS")
    months = months[months >= events.statements["statement_date"].min() + pd.Timedelta(days=60)]
    obs = acc[["account_id", "open_date", "product"]].merge(pd.DataFrame({"as_of": months}), how="cross")
    obs = obs[obs["open_date"] + pd.Timedelta(days=60) <= obs["as_of"]].drop(columns="open_date")
    obs = obs.sort_values(["as_of", "account_id"], ignore_index=True)

    st = events.statements.sort_values("statement_date")
    st = st.assign(
        prev_balance=st.groupby("account_id")["balance"].shift(1),
        util=st["balance"] / st["credit_limit"],
    )
    st["pay_ratio"] = (st["payment"] / st["prev_balance"].where(st["prev_balance"] > 0)).clip(0, 2)
    st["late"] = (st["dpd"] > 0).astype(float)
    roll = st.groupby("account_id")
    st["late_12"] = roll["late"].transform(lambda s: s.rolling(12, min_periods=1).sum())
    st["dpd_max_6"] = roll["dpd"].transform(lambda s: s.rolling(6, min_periods=1).max())
    st["util_chg_3"] = st["util"] - roll["util"].shift(3)
    st["pay_ratio_3"] = roll["pay_ratio"].transform(lambda s: s.rolling(3, min_periods=1).mean())
    st["known"] = st["statement_date"] + pd.Timedelta(days=1)  # known strictly after its date
    cols = ["account_id", "known", "dpd", "util", "pay_ratio", "late_12", "dpd_max_6", "util_chg_3", "pay_ratio_3"]
    feats = pd.merge_asof(
        obs.sort_values("as_of"),
        st[cols].sort_values("known"),
        left_on="as_of",
        right_on="known",
        by="account_id",
        allow_exact_matches=True,
    )
    tx = events.transactions
    cash = tx[tx["channel"].isin(["atm", "cash_advance"])][["account_id", "timestamp", "amount"]]
    c = feats[["account_id", "as_of"]].merge(cash, on="account_id")
    c = c[(c["timestamp"] < c["as_of"]) & (c["timestamp"] >= c["as_of"] - HORIZON)]
    cash_90 = c.groupby(["account_id", "as_of"])["amount"].sum().rename("cash_90")
    feats = feats.merge(cash_90, on=["account_id", "as_of"], how="left")
    feats["cash_90"] = feats["cash_90"].fillna(0.0)

    inst = events.installments
    loans = _loan_state(inst, feats.loc[feats["product"] == "loan", ["account_id", "as_of"]])
    feats = feats.merge(loans, on=["account_id", "as_of"], how="left")

    # Current at as_of: last statement dpd == 0 (cards), no overdue instalment (loans).
    card_cur = (feats["product"] == "card") & (feats["dpd"] == 0)
    loan_cur = (feats["product"] == "loan") & (feats["overdue"].fillna(0) == 0) & feats["late_count"].notna()
    feats = feats[card_cur | loan_cur].copy()

    # Label: 30+ dpd within [as_of, as_of + 90 days).
    bad_stmt = events.statements.loc[events.statements["dpd"] >= 30, ["account_id", "statement_date"]]
    per = inst.groupby(["account_id", "due_date"], as_index=False).agg(
        amount_due=("amount_due", "first"), paid=("amount_paid", "sum"), last_paid=("paid_date", "max")
    )
    hit = per["due_date"] + pd.Timedelta(days=30)
    unpaid_at_30 = (per["paid"] < per["amount_due"] - 0.01) | (per["last_paid"] >= hit)
    bad_inst = pd.DataFrame({"account_id": per["account_id"], "statement_date": hit})[unpaid_at_30]
    bad = pd.concat([bad_stmt, bad_inst]).rename(columns={"statement_date": "bad_day"})
    b = feats[["account_id", "as_of"]].merge(bad, on="account_id")
    b = b[(b["bad_day"] >= b["as_of"]) & (b["bad_day"] < b["as_of"] + HORIZON)]
    positives = set(zip(b["account_id"], b["as_of"], strict=True))
    feats["y"] = [int((a, d) in positives) for a, d in zip(feats["account_id"], feats["as_of"], strict=True)]
    feats = feats[feats["as_of"] + HORIZON - pd.Timedelta(days=1) <= end]
    return feats.reset_index(drop=True)


FEATURES = [
    "util",
    "pay_ratio",
    "late_12",
    "dpd_max_6",
    "util_chg_3",
    "pay_ratio_3",
    "cash_90",
    "late_count",
    "late_max",
    "is_card",
]


def out_of_time_auc(frame: pd.DataFrame) -> tuple[float, float]:
    """(90-day 30+ rate among current observations, out-of-time AUC of LightGBM)."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    frame = frame.assign(is_card=(frame["product"] == "card").astype(int))
    dates = np.sort(frame["as_of"].unique())
    cut = dates[int(len(dates) * 0.65)]
    train, test = frame[frame["as_of"] < cut], frame[frame["as_of"] >= cut]
    model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=50, verbose=-1)
    model.fit(train[FEATURES], train["y"])
    auc = roc_auc_score(test["y"], model.predict_proba(test[FEATURES])[:, 1])
    return float(frame["y"].mean()), float(auc)
