"""Issue #16, item 1: the HTML report a model-risk reviewer reads, checked against evaluate on the same samples."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore.evaluate import auc_interval
from riskscore.model.samples import holdout_start, sample_of
from riskscore.report.build import SECTIONS


@pytest.fixture(scope="module")
def built(sample_xy: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A model trained on 2023-06..2024-06 as `riskscore train` does, and its report on the whole sample."""
    X, y = sample_xy["X"], sample_xy["y"]
    dates = X.index.get_level_values("as_of")
    window = np.asarray((dates >= "2023-06-01") & (dates <= "2024-06-01"))
    model = rs.RiskModel(random_state=0).fit(X[window], y[window], builder=sample_xy["builder"])
    out = tmp_path_factory.mktemp("report") / "report.html"
    rs.report(model, sample_xy["events"], out, explain_rows=500)
    return {"model": model, "text": out.read_text(encoding="utf-8"), "X": X, "y": y}


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def test_the_headline_is_out_of_time_and_equals_evaluate_on_those_rows(built: dict[str, Any]) -> None:
    model, X, y = built["model"], built["X"], built["y"]
    sample = sample_of(model, X.index.get_level_values("as_of"))
    oot = sample == "out of time"
    assert oot.any() and not np.asarray(X.index.get_level_values("as_of")[oot] <= "2024-06-01").any()
    p = model.predict_proba(X[oot])[:, 1]
    expected = rs.evaluate(y[oot], p).summary
    auc, low, high = auc_interval(y[oot], p)
    assert auc == pytest.approx(expected["auc"], abs=1e-12)
    summary = _plain(built["text"].split('id="summary"')[1].split("</section>")[0])
    assert f"Out of time (2024-07 to {X.index.get_level_values('as_of').max():%Y-%m}" in summary
    assert f"{int(expected['n']):,} observations" in summary and f"{int(expected['positives']):,} reaching" in summary
    assert f"AUC {expected['auc']:.3f} [{low:.3f}, {high:.3f}]" in summary
    assert f"KS {expected['ks']:.3f}" in summary and f"Brier {expected['brier']:.4f}" in summary


def test_every_month_names_its_sample_and_psi_is_against_the_development_rows(built: dict[str, Any]) -> None:
    model, X = built["model"], built["X"]
    text = _plain(built["text"].split('id="performance-over-time"')[1].split("</section>")[0])
    held = holdout_start(model)
    assert held is not None and pd.Timestamp("2023-06-01") < held <= pd.Timestamp("2024-06-01")
    assert "2023-06-01 development" in text and f"{held:%Y-%m-%d} hold-out" in text and "2024-06-01 hold-out" in text
    assert "2024-07-01 out of time" in text and "2023-05-01 before training" in text
    # PSI of the PD per out-of-time month, against the development rows (the population the trees were grown on).
    dates = X.index.get_level_values("as_of")
    sample = sample_of(model, dates)
    p = model.predict_proba(X)[:, 1]
    dev = sample == "development"
    month = pd.Timestamp("2024-08-01")
    value = rs.monitor.psi(p[dev], p[np.asarray(dates == month)])
    stability = _plain(built["text"].split('id="stability-against-the-training-population"')[1].split("</section>")[0])
    assert f"Against the development rows ({int(dev.sum()):,} observations" in stability
    assert f"2024-08-01 {int((dates == month).sum()):,} {value:.3f}" in stability


def test_every_section_is_there_and_numbers_read_as_people_read_them(built: dict[str, Any]) -> None:
    text = built["text"]
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in text, title
    plain = _plain(text)
    assert "challenger AUC" in plain and "weight-of-evidence logistic scorecard" in plain
    assert "excluded: past due at as_of" in plain and "adverse-impact ratio" in plain
    assert "LightGBM learning_rate" in plain and "monotone constraints" in plain and "PAY_LOW" in plain
    assert not re.search(r"\d\.0000\b", plain) and not re.search(r"\(\d+\.\d+, \d+\.\d+\]", plain)
    assert re.search(r"\b21 to \d\d\b", plain)  # age groups as people write them, not (20.999, 33.0]
    assert "us-regf" in plain  # the policy of the accounts' zones, not a fixed one
    assert len(re.findall(r"<figcaption>", text)) == len(re.findall(r"<img ", text)) >= 8  # each chart is read
    assert "http://" not in text and "https://" not in text  # self-contained
