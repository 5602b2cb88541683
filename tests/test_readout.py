"""Issue #14, item 3: the read-out of an outreach experiment against its held-out control group."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from riskscore.outreach import readout

AS_OF = pd.Timestamp("2024-06-01")
NOW = pd.Timestamp("2024-06-01 10:00", tz="America/New_York")


@pytest.fixture(scope="module")
def experiment(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], sample_xy: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """Decisions on the sample at 2024-06-01 with a large control group, and their audit log."""
    model, _ = sample_model
    events = sample_xy["events"]
    obs = rs.observation_dates(events, start=AS_OF, end=AS_OF)
    X = sample_xy["builder"].transform(events, obs)
    scores = model.score(X)
    log = tmp_path_factory.mktemp("readout") / "audit.jsonl"
    decisions = rs.recommend(scores, model.explain(X), events, "us-regf", now=NOW, control_share=0.4, seed=5,
                             audit=log)  # fmt: skip
    return events, decisions, log


def test_rates_and_uplift_are_those_of_the_events(experiment: Any) -> None:
    events, decisions, _ = experiment
    out = readout(decisions, events, horizon="90D", by=("action",))
    assert list(out.columns) == list(rs.outreach.READOUT_COLUMNS)
    assert out.index[-1] == "all"
    y = rs.make_labels(events, decisions[["account_id", "as_of"]]).to_numpy(dtype=float)
    arm = decisions["treatment"].to_numpy()
    control = decisions["control"].to_numpy()
    for action in out.index[:-1]:
        treated, held = (arm == action) & ~control, (arm == action) & control
        row = out.loc[action]
        assert (row["treated"], row["control"]) == (treated.sum(), held.sum())
        assert row["rate_treated"] == pytest.approx(y[treated].mean()) if treated.any() else True
        if row["enough"]:
            assert row["uplift"] == pytest.approx(y[held].mean() - y[treated].mean())
            assert row["ci_low"] < row["uplift"] < row["ci_high"] and 0 <= row["p_value"] <= 1
        else:
            assert np.isnan(row["uplift"]) and row["mde"] > 0
    # Rows assigned no treatment (held out from nothing) are in no comparison, nor in "all".
    assert "none" not in out.index
    assigned = arm != "none"
    total = out.loc["all"]
    assert total["treated"] == (assigned & ~control).sum() and total["control"] == (assigned & control).sum()
    contacted = (decisions["action"] != "none") & assigned
    assert total["contacts"] == decisions.loc[contacted, "contact_id"].nunique()
    # Held-out rows count under the action they were held out from ("none" when no option was allowed anyway).
    held_from = decisions.loc[decisions["control"], "treatment"]
    assert (held_from != "none").mean() > 0.5 and (decisions.loc[decisions["control"], "action"] == "none").all()
    treated = decisions[~decisions["control"] & (decisions["action"] != "none")]
    assert (treated["treatment"] == treated["action"]).mean() > 0.9  # capacity moves a few to a later option


def test_the_audit_log_reads_out_the_same(experiment: Any) -> None:
    events, decisions, log = experiment
    from_frame = readout(decisions, events, by=("action", "segment"))
    from_log = readout(log, events, by=("action", "segment"))
    pd.testing.assert_frame_equal(from_frame, from_log)
    assert from_frame.index.names == ["action", "segment"] and from_frame.index[-1] == ("all", "")


def test_a_day_decided_twice_in_one_log_is_refused_and_one_run_reads_out(
    experiment: Any,
    sample_model: tuple[rs.RiskModel, pd.DataFrame],
    sample_xy: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events, _, log = experiment
    model, _ = sample_model
    twice = tmp_path / "audit.jsonl"
    shutil.copy(log, twice)
    obs = rs.observation_dates(events, start=AS_OF, end=AS_OF)
    X = sample_xy["builder"].transform(events, obs)
    rs.recommend(model.score(X), model.explain(X), events, "us-regf", now=NOW, control_share=0.4, seed=6, audit=twice)
    frame = rs.outreach.decisions_frame(twice)
    runs = frame["run_id"].unique()
    assert len(runs) == 2
    with pytest.raises(ValueError, match=r"repeat an account and as_of.* from 2 runs of one day \(run_id"):
        readout(twice, events)
    first = frame[frame["run_id"] == runs[0]]
    pd.testing.assert_frame_equal(readout(first, events), readout(log, events))
    # On the command line: --run-id picks the run; a run the log does not hold, or no audit log, is refused.
    from riskscore.cli import main

    data = str(rs.datasets.sample_dir())
    code = main(["readout", "--decisions", str(twice), "--data", data])
    assert code == 2 and "riskscore readout --run-id" in capsys.readouterr().err
    target = tmp_path / "one.csv"
    code = main(["readout", "--decisions", str(twice), "--data", data, "--run-id", str(runs[0]), "--by", "action",
                 "--out", str(target)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    expected = readout(log, events, by=("action",))
    np.testing.assert_allclose(pd.read_csv(target, index_col=0)["uplift"].to_numpy(float), expected["uplift"],
                               rtol=1e-9)  # fmt: skip
    code = main(["readout", "--decisions", str(twice), "--data", data, "--run-id", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and "--run-id nope: not a run of" in err and str(runs[1]) in err and "Traceback" not in err
    flat = tmp_path / "recs.parquet"
    first.drop(columns=["offer", "reasons", "blocked"]).to_parquet(flat)
    code = main(["readout", "--decisions", str(flat), "--data", data, "--run-id", str(runs[0])])
    assert code == 2 and "is not an audit log" in capsys.readouterr().err


def test_without_an_effect_the_interval_covers_zero_at_its_level(experiment: Any) -> None:
    """The generator does not respond to outreach: the true uplift is 0 for any random split of the accounts."""
    events, decisions, _ = experiment
    rng = np.random.default_rng(0)
    covered, shown = 0, 0
    for _ in range(40):
        split = decisions.assign(control=rng.random(len(decisions)) < 0.5, treatment="reminder")
        row = readout(split, events, by=()).loc["all"]
        assert row["enough"]
        shown += 1
        covered += row["ci_low"] <= 0 <= row["ci_high"]
    assert covered / shown >= 0.85  # 95% intervals: about 38 of 40


def test_customers_are_the_unit_of_the_interval(experiment: Any) -> None:
    events, decisions, _ = experiment
    split = decisions.assign(control=np.arange(len(decisions)) % 2 == 0, treatment="reminder")
    single = split.assign(customer_id=np.arange(len(split)))
    alone = readout(single, events, by=()).loc["all"]
    # The sample's real customers (accounts of one person move together): a wider interval than per account.
    real = readout(split, events, by=()).loc["all"]
    assert real["uplift"] == pytest.approx(alone["uplift"])
    assert real["ci_high"] - real["ci_low"] > alone["ci_high"] - alone["ci_low"]
    # Pairing accounts into customers of two only widens the interval as far as the pairs' outcomes agree:
    # pairs of held-out with held-out and treated with treated, matched on the outcome, double the variance
    # of the mean of independent accounts (a cluster of two equal outcomes counts as one account).
    reached = rs.make_labels(events, single[["account_id", "as_of"]]).to_numpy(dtype=int)
    order = np.lexsort((reached, single["control"].to_numpy()))
    paired = single.iloc[order].assign(customer_id=np.arange(len(single)) // 2)
    out = readout(paired, events, by=()).loc["all"]
    width = (out["ci_high"] - out["ci_low"]) / (alone["ci_high"] - alone["ci_low"])
    assert out["uplift"] == pytest.approx(alone["uplift"]) and 1.3 < width < 1.45  # about sqrt(2)


def test_small_groups_get_the_minimum_detectable_effect(experiment: Any) -> None:
    events, decisions, _ = experiment
    few = decisions.head(40).assign(control=[True] * 5 + [False] * 35, treatment="call")
    row = readout(few, events, by=()).loc["all"]
    assert not row["enough"] and np.isnan(row["uplift"]) and np.isnan(row["ci_low"])
    assert 0 < row["mde"] < 1


def test_bad_input_is_refused_with_the_problem(experiment: Any, tmp_path: Path) -> None:
    events, decisions, _ = experiment
    with pytest.raises(ValueError, match="no control group"):
        readout(decisions.assign(control=False), events)
    with pytest.raises(ValueError, match=r"not in events\.accounts, e\.g\. \[999999"):
        readout(pd.concat([decisions, decisions.head(1).assign(account_id=999999)]), events)
    with pytest.raises(ValueError, match=r"horizon 90D of .* decisions runs past the data .* on or before 2024-10"):
        readout(decisions.assign(as_of=pd.Timestamp("2024-12-01")), events)
    with pytest.raises(ValueError, match=r"missing \['treatment'\]"):
        readout(decisions.drop(columns="treatment"), events)
    with pytest.raises(ValueError, match=r"pass riskscore\.read_scores"):
        readout(tmp_path, events)
    # Nothing guessed: a horizon that is no duration, text where control must be True/False, an undated row,
    # a decision counted twice, events that are no EventData.
    with pytest.raises(ValueError, match=r"horizon must be a positive whole number of days such as '90D'; got 'abc'"):
        readout(decisions, events, horizon="abc")
    as_text = decisions.assign(control=decisions["control"].map({True: "yes", False: "no"}))
    first = decisions["account_id"].iloc[0]
    with pytest.raises(ValueError, match=rf"control must be True/False .* e\.g\. \[\({first}, 'no'\)"):
        readout(as_text, events)
    with pytest.raises(ValueError, match=r"control must be True/False .* 1 rows are not"):
        readout(decisions.assign(control=decisions["control"].astype(object).where(decisions.index > 0)), events)
    assert readout(decisions.assign(control=decisions["control"].astype(int)), events).equals(
        readout(decisions, events)
    )
    with pytest.raises(ValueError, match=rf"as_of is missing on 1 rows, e\.g\. account_id \[{first}\]"):
        readout(decisions.assign(as_of=decisions["as_of"].where(decisions.index > 0)), events)
    with pytest.raises(ValueError, match=rf"2 rows that repeat an account and as_of, e\.g\. account_id \[{first}\]"):
        readout(pd.concat([decisions, decisions.head(1)]), events)
    with pytest.raises(TypeError, match="events must be an EventData"):
        readout(decisions, "events.parquet")


def test_the_readout_command(experiment: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from riskscore.cli import main

    events, decisions, log = experiment
    data = rs.datasets.sample_dir()
    flat = tmp_path / "recs.parquet"
    decisions.drop(columns=["offer", "reasons", "blocked"]).to_parquet(flat)
    for source in (log, flat):
        target = tmp_path / f"{source.stem}.csv"
        code = main(
            ["readout", "--decisions", str(source), "--data", str(data), "--by", "action", "--out", str(target)]
        )
        printed = capsys.readouterr().out
        assert code == 0, printed
        assert "read-out over 90D after each decision" in printed and "pts [" in printed and "all" in printed
        written = pd.read_csv(target, index_col=0)
        expected = readout(decisions, events, by=("action",))
        assert list(written.index) == list(expected.index)
        np.testing.assert_allclose(written["uplift"].to_numpy(float), expected["uplift"].to_numpy(float), rtol=1e-9)
    code = main(["readout", "--decisions", str(tmp_path / "nope.jsonl"), "--data", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and "no such file" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as stopped:
        main(["readout", "--decisions", str(log), "--data", str(data), "--horizon", "3M"])
    assert stopped.value.code == 2 and "argument --horizon: must be" in capsys.readouterr().err


def test_the_report_reads_the_experiment_out(experiment: Any, sample_xy: dict[str, Any], tmp_path: Path) -> None:
    """Issue #14, item 6: given decisions, the HTML report has an outreach-results section with the read-out."""
    events, decisions, log = experiment
    model = rs.RiskModel(params={"n_estimators": 60}, random_state=0).fit(
        sample_xy["X"], sample_xy["y"], builder=sample_xy["builder"]
    )
    out = rs.report(model, events, tmp_path / "r.html", start="2024-01-01", end="2024-06-01", policy="us-regf",
                    explain_rows=200, decisions=log)  # fmt: skip
    text = out.read_text(encoding="utf-8")
    assert "Outreach results (contacted against held out)" in text
    table = readout(decisions, events, by=("action",))
    treated, control = int(table["treated"].iloc[-1]), int(table["control"].iloc[-1])
    assert f"{treated:,} accounts assigned a treatment and not held out against {control:,} held out" in text
    assert "uplift per treatment and segment with 95% intervals" in text
    # The uplift is a difference of two rates: shown in percentage points, never as a percent (a relative change).
    pooled = table.loc["all"]
    assert f"<td>{pooled['uplift'] * 100:+.1f} pp</td>" in text and f"<td>{pooled['mde'] * 100:.1f} pp</td>" in text
    assert f"<td>{pooled['rate_control']:.1%}</td>" in text
