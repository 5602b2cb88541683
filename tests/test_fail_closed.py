"""Issue #17, fail closed: each harm found by probing, reproduced and now refused or survived."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import riskscore as rs
from tests.outreach_cases import ny, one

# --------------------------------------------------------------------------- 1. contact labels


@pytest.mark.parametrize("policy", ["cn-2026", "us-regf", "uk-conc"])
@pytest.mark.parametrize(("channel", "outcome"), [("SMS", "opt_out"), ("sms ", "OPT_OUT"), ("Sms", "Opt-Out")])
def test_an_opt_out_in_other_spelling_is_honoured(policy: str, channel: str, outcome: str) -> None:
    now = ny("2026-03-04 12:00")
    rec = one(policy, now, {"segment": "forgetful"}, [(1, "2026-02-01 12:00", channel, outcome, "inbound")])
    assert rec["channel"] != "sms"
    assert any(b["channel"] == "sms" and "opted out" in b["why"] for b in rec["blocked"])


def test_an_unknown_channel_is_refused_with_the_labels() -> None:
    now = ny("2026-03-04 12:00")
    with pytest.raises(rs.DataValidationError, match=r"contacts.channel: must be a channel of policy us-regf.*'CALL2'"):
        one("us-regf", now, {"segment": "forgetful"}, [(1, "2026-02-01 12:00", "CALL2", "opt_out", "inbound")])


def test_an_unknown_outcome_is_read_as_the_most_restrictive() -> None:
    now = ny("2026-03-04 12:00")
    known = one("cn-2026", now, {"segment": "forgetful"}, [(1, "2026-02-01 12:00", "sms", "delivered", "outbound")])
    assert known["action"] == "reminder"
    with pytest.warns(UserWarning, match=r"outcomes policy cn-2026 does not know \(\['STOP_ALL'\]\).*'cease'"):
        rec = one("cn-2026", now, {"segment": "forgetful"}, [(1, "2026-02-01 12:00", "sms", "STOP_ALL", "inbound")])
    assert rec["action"] == "none" and rec["channel"] == ""
    assert any("cease" in b["why"] for b in rec["blocked"])


def test_label_normalisation() -> None:
    from riskscore.outreach.rules import normalise_label

    assert [normalise_label(v) for v in ("OPT_OUT", "sms ", " Opt-Out", "plan  offered")] == [
        "opt_out",
        "sms",
        "opt_out",
        "plan_offered",
    ]


# ------------------------------------------------------------- 5. save never deletes what it did not write


def test_save_overwrite_replaces_only_a_bundle(sample_model: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path) -> None:
    model, _ = sample_model
    mine = tmp_path / "my-files"
    mine.mkdir()
    (mine / "thesis.docx").write_text("years of work")
    with pytest.raises(FileExistsError, match=r"is not a riskscore model bundle \(it holds \['thesis.docx'\]\)"):
        model.save(mine, overwrite=True)
    assert (mine / "thesis.docx").read_text() == "years of work"
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    with pytest.raises(FileExistsError, match="is a file, not a model bundle folder"):
        model.save(afile, overwrite=True)
    bundle = model.save(tmp_path / "bundle")
    (bundle / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(FileExistsError, match="is not a riskscore bundle manifest"):
        model.save(bundle, overwrite=True)


def test_save_overwrite_refuses_the_working_directory(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = sample_model
    bundle = model.save(tmp_path / "bundle")
    monkeypatch.chdir(bundle)
    with pytest.raises(FileExistsError, match="is the working directory"):
        model.save(".", overwrite=True)
    assert sorted(p.name for p in bundle.iterdir()) == ["SHA256SUMS", "catalogue.csv", "manifest.json", "model.txt"]


def test_save_overwrite_swaps_a_bundle_and_keeps_the_old_one_on_failure(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import riskscore.model.bundle as bundle_module

    model, _ = sample_model
    bundle = model.save(tmp_path / "bundle")
    before = (bundle / "SHA256SUMS").read_text()
    real_replace = bundle_module.os.replace
    calls = {"n": 0}

    def failing_second_rename(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the new bundle taking the old one's name
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(bundle_module.os, "replace", failing_second_rename)
    with pytest.raises(OSError, match="No space left"):
        model.save(bundle, overwrite=True)
    monkeypatch.setattr(bundle_module.os, "replace", real_replace)
    assert (bundle / "SHA256SUMS").read_text() == before  # the old bundle is back, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # nothing left beside it
    assert rs.RiskModel.load(bundle).version_ == model.version_
    model.save(bundle, overwrite=True)
    assert rs.RiskModel.load(bundle).version_ == model.version_


# --------------------------------------------------------------------------- 6. to_dir writes the whole set or nothing


def _small_events() -> rs.EventData:
    statements = {
        "account_id": [1, 2],
        "statement_date": ["2024-02-01"] * 2,
        "balance": [1.0, 2.0],
        "payment": [0.0, 1.0],
        "dpd": [0, 0],
    }
    return rs.EventData(
        accounts=pd.DataFrame({"account_id": [1, 2], "open_date": ["2024-01-01"] * 2, "credit_limit": [1000.0] * 2}),
        statements=pd.DataFrame(statements),
        transactions=pd.DataFrame({"account_id": [1], "timestamp": ["2024-01-05"], "amount": [10.0]}),
    )


def test_to_dir_failing_midway_leaves_the_old_set_loadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import riskscore.data.container as container

    old = _small_events()
    old.to_dir(tmp_path)
    new = rs.EventData(**{**old.tables, "statements": old.statements.assign(balance=[5.0, 6.0])})
    real = container.write_table
    calls = {"n": 0}

    def full_disk(df: pd.DataFrame, path: Path, *, format: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real(df, path, format=format)

    monkeypatch.setattr(container, "write_table", full_disk)
    with pytest.raises(OSError, match="No space left"):
        new.to_dir(tmp_path, overwrite=True)
    assert rs.EventData.from_dir(tmp_path).equals(old)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".writing")]


def test_a_folder_not_completely_written_or_changed_never_loads(tmp_path: Path) -> None:
    events = _small_events()
    events.to_dir(tmp_path)
    meta = tmp_path / "_eventdata.json"
    recorded = meta.read_text()
    meta.write_text(json.dumps({"state": "writing"}))  # a crash between the marker and the record
    with pytest.raises(rs.DataValidationError, match="was not completely written"):
        rs.EventData.from_dir(tmp_path)
    meta.write_text(recorded)
    assert rs.EventData.from_dir(tmp_path).equals(events)
    pd.DataFrame({"account_id": [1], "timestamp": ["2024-01-05"], "amount": [99999.0]}).to_parquet(
        tmp_path / "transactions.parquet"
    )  # one table replaced behind riskscore's back
    with pytest.raises(rs.DataValidationError, match="the folder was changed or partly rewritten"):
        rs.EventData.from_dir(tmp_path)
