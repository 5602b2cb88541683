"""riskscore.plots: headless figures that render to real PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
from matplotlib.figure import Figure

import riskscore as rs
from riskscore import plots
from riskscore.reasons import load_reason_catalogue

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def explained(sample_model: tuple[rs.RiskModel, pd.DataFrame]) -> tuple[rs.Explanation, pd.DataFrame]:
    model, X = sample_model
    rows = X.loc[model.score(X).nlargest(300, "pd").index]
    expl = model.explain(rows)
    return expl, expl.reason_codes()


def _saved(fig: Figure, path: Path) -> bytes:
    fig.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 2000
    return data


def test_waterfall_bars_are_the_reasons_of_reason_codes(
    explained: tuple[rs.Explanation, pd.DataFrame], tmp_path: Path
) -> None:
    """Issue #16: the chart showed raw feature bars while the texts under it were grouped reasons."""
    expl, reasons = explained
    i = int(expl.pd_.to_numpy().argsort()[len(expl) // 2])  # a middling PD of the riskiest rows
    account, as_of = expl.values.index[i]
    fig = plots.waterfall(expl, account, as_of, max_reasons=8)
    assert isinstance(fig, Figure)
    texts = " ".join(t.get_text() for t in fig.texts)
    mine = reasons[(reasons["account_id"] == account) & (reasons["as_of"] == as_of)]
    assert mine["text"].iloc[0] in texts  # the account's reasons are printed under the chart
    ax = fig.axes[0]
    widths = [bar.get_width() for bar in ax.patches]
    labels = [t.get_text() for t in ax.get_yticklabels()]  # in the order of the bars, top down
    assert len(widths) <= 9  # at most 8 reasons and the rest
    # The first bars are reason_codes' reasons, in its order and with its values, numbered as the texts.
    catalogue = load_reason_catalogue()
    for k, row in enumerate(mine.itertuples()):
        assert widths[k] == pytest.approx(row.contribution, abs=1e-12)
        assert labels[k] == f"{row.rank}. {catalogue.reasons[row.reason_code]['title']['en']}"
    # Every bar together adds up from the base value to the margin; the title carries the calibrated PD and band.
    assert sum(widths) == pytest.approx(float(expl.margin.iloc[i]) - expl.base_value, abs=1e-9)
    score = expl.pd_.iloc[i]
    assert 0.001 < score < 0.999
    assert f"PD {score:.1%} (calibrated)" in ax.get_title() and f"band {expl.band_.iloc[i]}" in ax.get_title()
    assert f"{expl.points_.iloc[i]:.0f} points" in ax.get_title()
    _saved(fig, tmp_path / "waterfall.png")


def test_a_chinese_waterfall_draws_every_character(
    explained: tuple[rs.Explanation, pd.DataFrame], tmp_path: Path
) -> None:
    """Issue #16: `--lang zh` drew the Chinese as empty boxes. Every character drawn is in the font used."""
    import warnings

    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font
    from matplotlib.text import Text

    expl, _ = explained
    account, as_of = expl.values.index[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font"
        fig = plots.waterfall(expl, account, as_of, lang="zh")
        fig.savefig(tmp_path / "zh.png", dpi=60)
    drawn = [t for t in fig.findobj(Text) if t.get_text()]
    chinese = "".join(t.get_text() for t in drawn)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese) and "违约概率" in chinese
    for text in drawn:
        path = font_manager.findfont(text.get_fontproperties(), fallback_to_default=False)
        charmap = FT2Font(path).get_charmap()
        missing = {ch for ch in text.get_text() if not ch.isspace() and ord(ch) not in charmap}
        assert not missing, f"{text.get_text()!r} drawn with {path} lacks {missing}"


def test_beeswarm_and_reason_frequency(explained: tuple[rs.Explanation, pd.DataFrame], tmp_path: Path) -> None:
    expl, reasons = explained
    fig = plots.beeswarm(expl, max_features=10)
    assert len(fig.axes[0].get_yticklabels()) == 10
    _saved(fig, tmp_path / "beeswarm.png")
    fig = plots.reason_frequency(reasons)
    bars = fig.axes[0].patches
    counts = reasons[reasons["rank"] == 1]["reason_code"].value_counts()
    assert sorted(round(b.get_width()) for b in bars) == sorted(counts.head(15).tolist())
    _saved(fig, tmp_path / "reasons.png")


def test_model_and_stability_charts(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], sample_xy: dict[str, object], tmp_path: Path
) -> None:
    model, X = sample_model
    y = sample_xy["y"]
    p = model.predict_proba(X)[:, 1]
    report = rs.evaluate(y, p)
    fig = plots.roc_ks(y, p)
    roc, ks = fig.axes
    assert f"AUC {report.summary['auc']:.3f}" in roc.get_legend().get_texts()[0].get_text()
    assert f"KS {report.summary['ks']:.3f}" in " ".join(t.get_text() for t in ks.get_legend().get_texts())
    _saved(fig, tmp_path / "roc.png")
    fig = plots.calibration(y, p, bins=10)
    observed = fig.axes[0].lines[1]
    assert len(observed.get_xdata()) == 10
    _saved(fig, tmp_path / "calibration.png")
    fig = plots.gains(y, p)
    captured = fig.axes[0].lines[0].get_ydata()
    assert captured[-1] == pytest.approx(1.0) and (pd.Series(captured).diff().dropna() >= 0).all()
    _saved(fig, tmp_path / "gains.png")
    scores = model.score(X)
    fig = plots.score_distribution(scores)
    assert sorted(round(b.get_height()) for b in fig.axes[0].patches) == sorted(scores["band"].value_counts())
    _saved(fig, tmp_path / "bands.png")
    as_of = X.index.get_level_values("as_of")
    table = rs.monitor.stability(X[as_of < "2023-07-01"], X[as_of >= "2024-07-01"])
    fig = plots.psi_by_feature(table, top=12)
    widths = sorted(b.get_width() for b in fig.axes[0].patches)
    assert widths == pytest.approx(sorted(table["psi"].head(12)))
    _saved(fig, tmp_path / "psi.png")
    with pytest.raises(ValueError, match="same length"):
        plots.roc_ks([0, 1], [0.2])
