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


def test_waterfall(explained: tuple[rs.Explanation, pd.DataFrame], tmp_path: Path) -> None:
    expl, reasons = explained
    account, as_of = expl.values.index[0]
    fig = plots.waterfall(expl, account, as_of, max_features=8)
    assert isinstance(fig, Figure)
    texts = " ".join(t.get_text() for t in fig.texts)
    first = reasons[(reasons["account_id"] == account) & (reasons["as_of"] == as_of)]["text"].iloc[0]
    assert first in texts  # the account's reasons are printed under the chart
    ax = fig.axes[0]
    assert len(ax.patches) == 9  # 8 features and the rest
    _saved(fig, tmp_path / "waterfall.png")


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
