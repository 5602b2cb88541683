"""Exact explanations: equal to shap's TreeExplainer, additive on every row, bounded in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shap  # a test dependency: the reference implementation

import riskscore as rs


@pytest.fixture(scope="module")
def fitted(sample_model: tuple[rs.RiskModel, pd.DataFrame]) -> tuple[rs.RiskModel, pd.DataFrame]:
    return sample_model


def test_contributions_equal_shap_tree_explainer(fitted: tuple[rs.RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    rows = X.sample(1500, random_state=0)
    assert isinstance(rows["acct_product"].dtype, pd.CategoricalDtype)  # a categorical feature
    assert rows.isna().any().sum() > 20  # and many features with NaN
    expl = model.explain(rows)
    explainer = shap.TreeExplainer(model.booster_, feature_perturbation="tree_path_dependent")
    expected = explainer.shap_values(rows)
    np.testing.assert_allclose(expl.values.to_numpy(), expected, rtol=0, atol=1e-6)
    assert expl.base_value == pytest.approx(float(np.ravel(explainer.expected_value)[0]), abs=1e-9)


def test_additive_on_every_row_and_chunk_independent(fitted: tuple[rs.RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    rows = X.head(700)
    expl = model.explain(rows)
    np.testing.assert_allclose(expl.values.sum(axis=1) + expl.base_value, model.predict_raw(rows), atol=1e-6)
    np.testing.assert_array_equal(expl.margin.to_numpy(), model.predict_raw(rows))
    small = model.explain(rows, chunk_size=37)
    np.testing.assert_array_equal(small.values.to_numpy(), expl.values.to_numpy())
    assert expl.values.index.equals(rows.index) and list(expl.values.columns) == list(rows.columns)
    pd.testing.assert_frame_equal(expl.data, model.conform(rows)[0])
    with pytest.raises(ValueError, match="chunk_size must be a positive number of rows; got 0"):
        model.explain(rows, chunk_size=0)


def test_a_broken_sum_raises(fitted: tuple[rs.RiskModel, pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    model, X = fitted
    real = model.booster_.predict

    def shifted(data: object, **kw: object) -> np.ndarray:
        out = real(data, **kw)
        return out + 0.01 if kw.get("raw_score") else out

    monkeypatch.setattr(model.booster_, "predict", shifted)
    with pytest.raises(
        rs.AdditivityError, match=r"must equal the margin within 1e-06; got a gap of 0\.01 on row \d \(3 rows\)"
    ):
        model.explain(X.head(3))


def test_views(fitted: tuple[rs.RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    rows = X.head(4)
    expl = model.explain(rows)
    assert len(expl) == 4 and "4 rows" in repr(expl)
    long = expl.to_frame()
    assert list(long.columns) == ["account_id", "as_of", "feature", "value", "contribution"]
    assert len(long) == 4 * rows.shape[1]
    first = long[(long["account_id"] == rows.index[1][0]) & (long["as_of"] == rows.index[1][1])]
    np.testing.assert_array_equal(first["contribution"].to_numpy(), expl.values.iloc[1].to_numpy())
    account, as_of = rows.index[2]
    one = expl.for_account(account, as_of)
    assert one["contribution"].is_monotonic_decreasing
    assert one.loc["stmt_dpd_max_90d", "group"] == "recent_delinquency"
    assert one["contribution"].sum() == pytest.approx(expl.margin.iloc[2] - expl.base_value)
    with pytest.raises(KeyError, match="matches 0 explained rows; explain it first"):
        expl.for_account(-1)
    sx = expl.to_shap()
    assert isinstance(sx, shap.Explanation)
    assert sx.values.shape == (4, rows.shape[1]) and sx.feature_names == list(rows.columns)
    np.testing.assert_array_equal(sx.base_values, np.full(4, expl.base_value))


# --------------------------------------------------------------------------- reason codes


def test_every_feature_the_builders_emit_has_exactly_one_reason() -> None:
    from riskscore.features import FAMILIES
    from riskscore.features._base import Window
    from riskscore.reasons import load_reason_catalogue

    cat = load_reason_catalogue()
    windows = (Window("30d", 30 * 86_400), Window("90d", 90 * 86_400))
    full = {
        "repayment": {"min_due": True, "extra": ["status"]},
        "instalment": {},
        "spending": {"has_channel": True, "categories": ["any"], "essential": []},
        "customer": {"cards": True},
        "account": {
            "numeric": ["income"],
            "categorical": {"region": []},
            "skipped": {},
            "products": [],
            "limit_history": True,
        },
    }
    specs = [s for name, module in FAMILIES.items() for s in module.specs(windows, full[name])]
    assert len(specs) > 90
    for spec in specs:
        code = cat.reason_for(spec.name, spec.group)
        assert code in cat.reasons, f"{spec.name} (group {spec.group}) has no reason of its own"
        assert cat.what(spec.name, spec.description, "zh") != spec.name, f"{spec.name} has no Chinese wording"
    for name in ("acct_age", "acct_sex", "acct_marital_status", "AGE", "acct_Date_Of_Birth"):
        assert cat.reason_for(name, "customer_profile") is None


def test_reason_codes(fitted: tuple[rs.RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    risky = X.loc[model.score(X).sort_values("pd", ascending=False).index[:200]]
    expl = model.explain(risky)
    reasons = expl.reason_codes()
    assert list(reasons.columns) == ["account_id", "as_of", "rank", "reason_code", "text", "contribution", "features"]
    per_row = reasons.groupby(["account_id", "as_of"])
    assert per_row.size().max() <= 4 and per_row.size().min() >= 1
    assert (reasons["contribution"] > 0).all()
    for _, group in per_row:
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group["contribution"].is_monotonic_decreasing
    # A reason's contribution is the sum of its features' contributions.
    first = reasons.iloc[0]
    row = expl.values.loc[(first["account_id"], first["as_of"])]
    from riskscore.reasons import load_reason_catalogue

    cat = load_reason_catalogue()
    members = [
        f for f in expl.values.columns if cat.reason_for(f, expl.catalogue.loc[f, "group"]) == first["reason_code"]
    ]
    assert first["contribution"] == pytest.approx(row[members].sum())
    assert set(first["features"].split(", ")) <= set(members)
    # Specific texts that quote the account's values: every one holds a number.
    assert reasons["text"].str.contains(r"\d").all()
    assert not reasons["text"].str.contains("score", case=False).any()
    assert len(expl.reason_codes(top=2).groupby(["account_id", "as_of"]).size().unique()) <= 2
    assert expl.reason_codes(min_contribution=1e9).empty


def test_reason_texts_in_chinese_and_deterministic(fitted: tuple[rs.RiskModel, pd.DataFrame]) -> None:
    model, X = fitted
    rows = X.loc[model.score(X).sort_values("pd", ascending=False).index[:50]]
    expl = model.explain(rows)
    zh = expl.reason_codes(lang="zh")
    assert zh["text"].str.contains(r"[\u4e00-\u9fff]").all()
    en = expl.reason_codes(lang="en")
    assert not en["text"].str.contains(r"[\u4e00-\u9fff]").any()
    assert (zh["reason_code"] == en["reason_code"]).all()
    pd.testing.assert_frame_equal(en, model.explain(rows).reason_codes(lang="en"))
    with pytest.raises(ValueError, match=r"lang must be one of \['en', 'zh'\]; got 'fr'"):
        expl.reason_codes(lang="fr")
    with pytest.raises(ValueError, match="top must be a positive whole number; got 0"):
        expl.reason_codes(top=0)


def test_ties_break_by_reason_code_and_protected_never_cited() -> None:
    index = pd.MultiIndex.from_tuples([(1, pd.Timestamp("2024-01-01"))], names=["account_id", "as_of"])
    features = ["stmt_dpd_max_90d", "stmt_util_mean_90d", "acct_age", "txn_cash_advance_share_90d"]
    from riskscore.features import describe

    expl = rs.Explanation(
        values=pd.DataFrame([[0.5, 0.5, 2.0, -0.1]], index=index, columns=features),
        base_value=-3.0,
        margin=pd.Series([-0.1], index=index),
        data=pd.DataFrame([[35.0, 0.9, 61.0, 0.0]], index=index, columns=features),
        catalogue=describe(features),
    )
    reasons = expl.reason_codes()
    assert reasons["reason_code"].tolist() == ["DLQ_RECENT", "UTIL_HIGH"]  # equal sums: by code
    assert "acct_age" not in ", ".join(reasons["features"])
    assert reasons["text"].tolist() == [
        "Recent late payments: highest days past due in the last 90 days was 35 days",
        "High or rising card utilisation: mean utilisation in the last 90 days was 90%",
    ]
    assert expl.reason_codes(lang="zh")["text"].tolist() == [
        "近期出现逾期：近90天最高逾期天数为35天",
        "信用卡额度使用率偏高或上升：近90天平均额度使用率为90%",
    ]


def test_reason_codes_are_the_same_in_another_process(
    fitted: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path
) -> None:
    import subprocess
    import sys

    model, X = fitted
    rows = X.loc[model.score(X).sort_values("pd", ascending=False).index[:40]]
    folder = model.save(tmp_path / "bundle")
    rows.to_parquet(tmp_path / "rows.parquet")
    here = model.explain(rows).reason_codes()
    code = (
        "import pandas as pd, riskscore as rs; "
        f"m = rs.RiskModel.load({str(folder)!r}); X = pd.read_parquet({str(tmp_path / 'rows.parquet')!r}); "
        f"m.explain(X).reason_codes().to_parquet({str(tmp_path / 'there.parquet')!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "there.parquet"), here)


def test_reason_texts_never_quote_a_raw_column_and_say_when_nothing_moved(
    fitted: tuple[rs.RiskModel, pd.DataFrame],
) -> None:
    """Issue #16: "account attribute stated_income was 2100" and "rose from 104% to 104%" reached borrowers."""
    import dataclasses

    model, X = fitted
    rows = X.loc[model.score(X).sort_values("pd", ascending=False).index[:600]]
    expl = model.explain(rows)
    for lang in ("en", "zh"):
        texts = expl.reason_codes(lang=lang)["text"]
        assert not texts.str.contains(r"[A-Za-z]+_[A-Za-z_]+").any(), texts[texts.str.contains("_")].head().tolist()
    profile = expl.reason_codes()
    assert profile["text"].str.contains("income stated at application was").any()
    # A lender's column the catalogue has no words for: the reason is stated by its title alone.
    renamed = {"acct_stated_income": "acct_branch_code_x"}
    other = dataclasses.replace(
        expl,
        values=expl.values.rename(columns=renamed),
        data=expl.data.rename(columns=renamed),
        catalogue=expl.catalogue.rename(index=renamed),
    )
    for lang, title in (("en", "Account details given at application"), ("zh", "申请时提供的账户信息")):
        texts = other.reason_codes(lang=lang)
        assert not texts["text"].str.contains("branch_code").any()
        assert (texts.loc[texts["reason_code"] == "PROFILE", "text"] == title).all()
    # Utilisation up by less than the display rounds: "stayed at", not "rose from 104% to 104%".
    data = expl.data.copy()
    data["stmt_util_last"] = 1.0401
    data["stmt_util_prev"] = 1.0399
    flat = dataclasses.replace(expl, data=data)
    for lang, said in (("en", "Card utilisation stayed at 104% of the credit limit"), ("zh", "使用率维持在104%")):
        util = flat.reason_codes(lang=lang)
        util = util.loc[util["reason_code"] == "UTIL_HIGH", "text"]
        assert len(util) and util.str.contains(said).all() and not util.str.contains("104% to 104%").any()


def test_reason_contributions_add_up_and_the_explanation_carries_the_score(
    fitted: tuple[rs.RiskModel, pd.DataFrame],
) -> None:
    model, X = fitted
    rows = X.iloc[:300]
    expl = model.explain(rows)
    sums = expl.reason_contributions()
    assert np.allclose(sums.sum(axis=1) + expl.base_value, expl.margin, atol=1e-9)
    reasons = expl.reason_codes()
    looked_up = [sums.loc[(r.account_id, r.as_of), r.reason_code] for r in reasons.itertuples()]
    assert np.allclose(looked_up, reasons["contribution"], atol=1e-12)
    scores = model.score(rows)
    pd.testing.assert_series_equal(expl.pd_, scores["pd"], check_names=False)
    pd.testing.assert_series_equal(expl.points_, scores["points"], check_names=False)
    pd.testing.assert_series_equal(expl.band_, scores["band"], check_names=False)
