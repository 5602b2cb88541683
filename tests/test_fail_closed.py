"""Issue #17, fail closed: each harm found by probing, reproduced and now refused or survived."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from tests.outreach_cases import ny, one, sh

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


# --------------------------------------------------------------- 2. everything that goes into a message is linted


def test_a_lender_text_with_threats_is_refused() -> None:
    now = ny("2026-03-04 12:00")
    assert "Acme" in one("us-regf", now, lender={"name": "Acme Bank", "contact": "555-0100"})["message"]
    with pytest.raises(rs.PolicyError, match=r"lender contact .*breaks US\.BAN\.THREAT.*'arrest'"):
        one("us-regf", now, lender={"name": "Acme", "contact": "pay now or we arrest you"})
    with pytest.raises(rs.PolicyError, match=r"lender name .*breaks CN\.BAN\.THREAT.*'报警'"):
        one("cn-2026", sh("2026-03-04 12:00"), {"timezone": "Asia/Shanghai"}, lender={"name": "报警中心"})
    with pytest.raises(ValueError, match=r"lender: unknown key\(s\) \['phone'\]"):
        one("us-regf", now, lender={"name": "Acme", "phone": "555"})
    with pytest.raises(ValueError, match="lender name must be non-empty text"):
        one("us-regf", now, lender={"name": ""})


def test_a_reason_text_with_banned_content_never_reaches_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.outreach_cases import make_case

    scores, expl, events = make_case([{"account_id": 7, "band": "F", "segment": "will_not_pay"}])
    real = rs.Explanation.reason_rows

    def poisoned(self: rs.Explanation, *args: Any, **kwargs: Any) -> pd.DataFrame:
        rows = real(self, *args, **kwargs)
        return rows.assign(text="account attribute: we will call the police")

    monkeypatch.setattr(rs.Explanation, "reason_rows", poisoned)
    with pytest.raises(rs.PolicyError, match=r"the call\.call message for account 7 breaks US\.BAN\.THREAT.*'police'"):
        rs.recommend(
            scores, expl, events, "us-regf", now=ny("2026-03-04 12:00"), capacity={"sms": 0, "app": 0, "email": 0}
        )


# ------------------------------------------------ 3. banned-content patterns run in linear time, or are refused


def _policy_with_patterns(*patterns: str) -> dict[str, Any]:
    doc = json.loads(json.dumps(rs.OutreachPolicy.load("us-regf").document))
    doc["banned"].append({"id": "X.NESTED", "category": "test", "source": "test", "patterns": list(patterns)})
    return doc


def test_nested_quantifiers_cannot_hang_loading_or_rendering() -> None:
    import subprocess
    import sys

    script = (
        "import json, sys, riskscore as rs\n"
        "doc = json.loads(sys.stdin.read())\n"
        "policy = rs.OutreachPolicy.from_dict(doc)\n"
        "from riskscore.outreach.messages import Templates\n"
        "Templates.load(policy)\n"
        "assert policy.content.clean('a' * 50000 + '!')\n"
        "print('ok')\n"
    )
    doc = _policy_with_patterns(r"(?i)^(\w+\s?)*$", "(a+)+$")
    # Python's re takes longer than the age of the universe on these; RE2 is linear.
    done = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(doc), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_pattern_the_linear_engine_cannot_run_is_refused_on_load(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(rs.PolicyError, match=r"X\.NESTED.*pattern '\(a\)\\\\1'.*linear-time engine.*backreferences"):
        rs.OutreachPolicy.from_dict(_policy_with_patterns(r"(a)\1"))
    with pytest.raises(rs.PolicyError, match=r"X\.NESTED.*pattern '\(\?=x\)'"):
        rs.OutreachPolicy.from_dict(_policy_with_patterns("(?=x)"))
    with pytest.raises(rs.PolicyError, match=r"X\.NESTED.*a pattern must be non-empty text; got 3"):
        rs.OutreachPolicy.from_dict(_policy_with_patterns(3))  # type: ignore[arg-type]
    assert "re2" not in capfd.readouterr().err  # the engine's own log stays quiet


# ---------------------------------------------- 4. nonsense values are refused when loaded or passed, with where


def _treatments_with(**sections: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(rs.outreach.Treatments.load().document))
    for name, values in sections.items():
        doc[name] = {**doc.get(name, {}), **values}
    return doc


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (
            {"offer": {"max_term_months": 1.5, "min_term_months": 30}},
            r"offer\.max_term_months must be a whole number; got 1\.5.*min_term_months \(30\) must not exceed",
        ),
        ({"offer": {"min_instalment": float("inf")}}, r"offer\.min_instalment must be a finite number; got inf"),
        ({"offer": {"recent_cycles": 0}}, r"offer\.recent_cycles must be > 0; got 0"),
        ({"offer": {"max_term": 12}}, r"\[offer\] has unknown key\(s\) \['max_term'\]"),
        ({"costs": {"effect": {"call": float("nan")}}}, r"costs\.effect\.call must be a number in \[0, 1\].*got nan"),
        ({"costs": {"effect": {"call": 1.7}}}, r"costs\.effect\.call must be a number in \[0, 1\]"),
        ({"costs": {"effect": {"visit": 0.1}}}, r"costs\.effect\.visit: not an action"),
        ({"costs": {"cost": {"sms": -1}}}, r"costs\.cost\.sms must be a finite number >= 0; got -1"),
        ({"costs": {"lgd": True}}, r"costs\.lgd must be a number in \[0, 1\]; got True"),
    ],
)
def test_nonsense_treatment_settings_are_refused(tmp_path: Path, sections: dict[str, Any], message: str) -> None:
    path = tmp_path / "treatments.json"
    path.write_text(json.dumps(_treatments_with(**sections)))
    with pytest.raises(rs.PolicyError, match=rf"{path.name}: .*{message}"):
        rs.outreach.Treatments.load(path)


def test_a_nan_effect_passed_as_costs_is_refused() -> None:
    with pytest.raises(rs.PolicyError, match=r"costs\.effect\.reminder must be a number in \[0, 1\].*nan"):
        one("us-regf", ny("2026-03-04 12:00"), costs={"effect": {"reminder": float("nan")}})


def _edited_policy(edit: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(rs.OutreachPolicy.load("us-regf").document))
    edit(doc)
    return doc


def _rule(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in doc["rules"] if r["kind"] == kind)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["policy"].update(planning_horizon_hours=float("nan")),
            r"planning_horizon_hours must be a finite number > 0; got nan",
        ),
        (
            lambda d: d["policy"].update(planning_horizon_hours=float("inf")),
            r"planning_horizon_hours must be a finite number > 0; got inf",
        ),
        (lambda d: _rule(d, "offer_cooldown").update(days=-90), r"days must be >= 0; got -90"),
        (lambda d: _rule(d, "attempt_cap").update(window="0h"), r"window must be 'day' or a positive number of hours"),
        (lambda d: _rule(d, "attempt_cap").update(channels=["call", 3]), r"channels must be a list of non-empty texts"),
    ],
)
def test_nonsense_policy_values_are_refused_on_load(tmp_path: Path, edit: Any, message: str) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(_edited_policy(edit)))
    with pytest.raises(rs.PolicyError, match=rf"{path.name}: .*{message}"):
        rs.OutreachPolicy.load(path)


@pytest.mark.parametrize("hours", [float("nan"), float("inf"), -1.0])
def test_nan_or_infinite_quiet_hours_are_refused_on_load(hours: float) -> None:
    doc = json.loads(json.dumps(rs.OutreachPolicy.load("us-regf").document))
    rule = _rule(doc, "quiet_after_conversation")
    rule["hours"] = hours
    what = "must be >= 0; got -1.0" if hours == -1 else f"must be a finite number; got {hours}"
    with pytest.raises(rs.PolicyError, match=rf"rule {rule['id']}: hours {what}"):
        rs.OutreachPolicy.from_dict(doc)


@pytest.mark.parametrize("bad", [1.7, -0.3, float("nan")])
def test_a_pd_outside_zero_one_is_refused(bad: float) -> None:
    from tests.outreach_cases import make_case

    scores, expl, events = make_case([{"account_id": 1}, {"account_id": 2}])
    scores.loc[scores.index[1], "pd"] = bad
    with pytest.raises(ValueError, match=r"pd must be a probability in \[0, 1\].*accounts \[2\]"):
        rs.recommend(scores, expl, events, "us-regf", now=ny("2026-03-04 12:00"))


def test_an_explanation_of_other_rows_or_another_model_is_refused(portfolio: dict[str, Any]) -> None:
    scores, explanation, events, now = (portfolio[k] for k in ("scores", "explanation", "events", "now"))
    ok = rs.recommend(scores, explanation, events, "us-regf", now=now)
    assert len(ok) == len(scores)
    # The same rows, their contributions and values moved to other accounts (a sort or a join gone wrong).
    shuffled = np.random.default_rng(0).permutation(len(explanation))
    moved = rs.Explanation(
        values=explanation.values.iloc[shuffled].set_axis(explanation.values.index),
        base_value=explanation.base_value,
        margin=explanation.margin.iloc[shuffled].set_axis(explanation.values.index),
        data=explanation.data.iloc[shuffled].set_axis(explanation.values.index),
        catalogue=explanation.catalogue,
        pd_=explanation.pd_.iloc[shuffled].set_axis(explanation.values.index),
        model_version=explanation.model_version,
    )
    with pytest.raises(ValueError, match=r"the explanation does not match the scores for \d+ of \d+ accounts"):
        rs.recommend(scores, moved, events, "us-regf", now=now)
    other = rs.Explanation(**{**vars(explanation), "model_version": "sha256:0000000000000000"})
    with pytest.raises(ValueError, match=r"the explanation is of model sha256:0+ but the scores are of model"):
        rs.recommend(scores, other, events, "us-regf", now=now)


# ------------------------------- 13. a bundle is what its files say, all of them, and optionally signed


def _reseal(bundle: Path) -> None:
    """Recompute every hash after an edit, as a forger would."""
    from riskscore._io import sha256_file

    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = {n: sha256_file(bundle / n) for n in ("model.txt", "catalogue.csv")}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    names = ("catalogue.csv", "manifest.json", "model.txt")
    (bundle / "SHA256SUMS").write_text("".join(f"{sha256_file(bundle / n)}  {n}\n" for n in names))


def _edit_manifest(bundle: Path, edit: Any) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    _reseal(bundle)


def test_an_edited_and_resealed_manifest_is_caught(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path
) -> None:
    model, _ = sample_model
    model.save(tmp_path / "b")
    assert rs.RiskModel.load(tmp_path / "b").version_ == model.version_

    def swap(m: dict[str, Any]) -> None:
        names = m["features"]["names"]
        names[0], names[1] = names[1], names[0]

    _edit_manifest(tmp_path / "b", swap)
    with pytest.raises(rs.BundleIntegrityError, match=r"not the same names or order.*the manifest was edited"):
        rs.RiskModel.load(tmp_path / "b")
    model.save(tmp_path / "c")
    _edit_manifest(tmp_path / "c", lambda m: m["training"].update(trees=m["training"]["trees"] - 1))
    with pytest.raises(rs.BundleIntegrityError, match=r"records \d+ trees and model.txt holds \d+"):
        rs.RiskModel.load(tmp_path / "c")
    model.save(tmp_path / "d")
    _edit_manifest(tmp_path / "d", lambda m: m["holdout_metrics"].update(auc=0.99))
    assert rs.RiskModel.load(tmp_path / "d").version_ != model.version_  # version_ covers every file
    model.save(tmp_path / "e")
    catalogue = pd.read_csv(tmp_path / "e" / "catalogue.csv")
    catalogue.loc[0, "description"] = "a description changed by hand"
    catalogue.to_csv(tmp_path / "e" / "catalogue.csv", index=False, lineterminator="\n")
    _reseal(tmp_path / "e")
    assert rs.RiskModel.load(tmp_path / "e").version_ != model.version_
    model.save(tmp_path / "f")
    (tmp_path / "f" / "model.txt").write_text("tree\nnot a model at all\n")
    _reseal(tmp_path / "f")
    with pytest.raises(rs.BundleIntegrityError, match=r"model\.txt is not a LightGBM model"):
        rs.RiskModel.load(tmp_path / "f")


def test_a_symbolic_link_inside_a_bundle_is_refused(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path
) -> None:
    model, _ = sample_model
    bundle = model.save(tmp_path / "b")
    elsewhere = tmp_path / "catalogue-elsewhere.csv"
    (bundle / "catalogue.csv").rename(elsewhere)
    (bundle / "catalogue.csv").symlink_to(elsewhere)
    with pytest.raises(rs.BundleIntegrityError, match=r"\['catalogue.csv'\] are symbolic links"):
        rs.RiskModel.load(bundle)


def test_a_signed_bundle_loads_only_with_its_key(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path
) -> None:
    model, _ = sample_model
    key = "correct horse battery staple"
    bundle = model.save(tmp_path / "signed", key=key)
    assert rs.RiskModel.load(bundle, key=key).version_ == model.version_
    assert rs.RiskModel.load(bundle).version_ == model.version_  # without a key nothing is verified
    with pytest.raises(rs.BundleIntegrityError, match="does not verify with the key given"):
        rs.RiskModel.load(bundle, key="another key of enough length")
    _edit_manifest(bundle, lambda m: m["holdout_metrics"].update(auc=0.99))
    with pytest.raises(rs.BundleIntegrityError, match="does not verify with the key given"):
        rs.RiskModel.load(bundle, key=key)
    unsigned = model.save(tmp_path / "unsigned")
    with pytest.raises(rs.BundleIntegrityError, match="carries no SIGNATURE"):
        rs.RiskModel.load(unsigned, key=key)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        model.save(tmp_path / "weak", key="short")
    assert not (tmp_path / "weak").exists()
    # Replacing a signed bundle with overwrite keeps it a bundle riskscore recognises.
    model.save(bundle, overwrite=True, key=key)
    assert rs.RiskModel.load(bundle, key=key).version_ == model.version_


def test_the_command_line_signs_and_verifies_with_the_key_from_the_environment(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from riskscore.cli import main

    model, X = sample_model
    unsigned = model.save(tmp_path / "unsigned")
    monkeypatch.setenv("RISKSCORE_BUNDLE_KEY", "a key of at least sixteen bytes")
    account, as_of = X.index[0]
    data = str(rs.datasets.sample_dir())
    code = main(["explain", "--model", str(unsigned), "--data", data, "--account", str(account), "--as-of",
                 str(as_of.date())])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "carries no SIGNATURE" in err and len(err.strip().splitlines()) == 1


# -------------------------------------------------- 14. an account is never scored before it existed


def test_explain_before_the_account_opened_is_refused(
    sample_model: tuple[rs.RiskModel, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from riskscore.cli import main

    events = rs.datasets.load_sample()
    first = events.accounts.sort_values("open_date").iloc[-1]
    before = (first["open_date"] - pd.Timedelta(days=30)).date()
    builder = rs.FeatureBuilder().fit(events)
    with pytest.raises(rs.DataValidationError, match=r"observations.as_of: must be after the account's open_date"):
        builder.transform(events, pd.DataFrame({"account_id": [first["account_id"]], "as_of": [before]}))
    with pytest.raises(rs.DataValidationError, match="after the account's open_date"):  # opening day too
        builder.transform(events, pd.DataFrame({"account_id": [first["account_id"]], "as_of": [first["open_date"]]}))
    bundle = tmp_path / "bundle"
    code = main(["train", "--data", str(rs.datasets.sample_dir()), "--start", "2023-06-01", "--end", "2024-06-01",
                 "--out", str(bundle)])  # fmt: skip
    assert code == 0
    capsys.readouterr()
    code = main(["explain", "--model", str(bundle), "--data", str(rs.datasets.sample_dir()), "--account",
                 str(first["account_id"]), "--as-of", str(before)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and "after the account's open_date" in captured.err and not captured.out
    assert len(captured.err.strip().splitlines()) == 1


# --------------------------------- 12. identifiers, free text and personal details are never features


def test_identifiers_and_free_text_never_become_features(sample_xy: dict[str, Any], tmp_path: Path) -> None:
    events = sample_xy["events"]
    accounts = events.accounts.copy()
    n = len(accounts)
    rng = np.random.default_rng(0)
    first = np.array(["Jane", "John", "Wei", "Li", "Maria", "Ahmed", "Olga", "Kenji"])
    last = np.array(["Doe", "Smith", "Zhang", "Wang", "Garcia", "Khan", "Ivanova", "Sato", "Brown", "Lee"])
    accounts["customer_name"] = [f"{a} {b}" for a, b in zip(rng.choice(first, n), rng.choice(last, n), strict=True)]
    accounts["national_id"] = rng.permutation(n) + 10**8
    accounts["crm_ref"] = rng.permutation(n) + 5 * 10**8  # nothing in its name gives it away
    accounts["email"] = "someone@example.com"  # one value: its name alone rules it out
    accounts["branch_code"] = [f"B{int(v):04d}" for v in rng.integers(0, 400, n)]  # free-form, many levels
    accounts["region"] = rng.choice(["north", "south", "east"], n)
    accounts.loc[accounts.index[:3], "region"] = "Jane Doe's street"  # a rare value: never stored
    rich = rs.EventData(**{**events.tables, "accounts": accounts}, protected=events.protected)
    builder = rs.FeatureBuilder().fit(rich)
    names = list(builder.catalogue_.index)
    for col in ("customer_name", "national_id", "crm_ref", "email", "branch_code"):
        assert not any(col in f for f in names), col
        assert col in builder.excluded_
    assert "its name says" in builder.excluded_["customer_name"]
    assert "its name says" in builder.excluded_["national_id"]
    assert "every one of its 2,000 values is different" in builder.excluded_["crm_ref"]
    assert "distinct values (more than 20)" in builder.excluded_["branch_code"]
    assert "acct_region" in names and builder.fitted_["account"]["categorical"]["region"] == ["east", "north", "south"]
    record = json.dumps(builder.to_dict())
    assert "Jane" not in record and "street" not in record and "example.com" not in record
    obs = rs.observation_dates(rich, start="2024-03-01", end="2024-06-01")
    X = builder.transform(rich, obs)
    y = rs.make_labels(rich, obs)
    known = y.notna().to_numpy()
    model = rs.RiskModel().fit(X[known], y[known].astype(int).set_axis(X[known].index), builder=builder)
    bundle = model.save(tmp_path / "bundle")
    for file in bundle.iterdir():
        text = file.read_text(encoding="utf-8")
        assert "Jane" not in text and "Doe" not in text and "example.com" not in text, file.name


# ----------------------------------------------- 7. a CSV round trip keeps every digit; ids never wrap


def test_a_csv_round_trip_keeps_sub_second_timestamps(tmp_path: Path) -> None:
    events = _small_events()
    precise = rs.EventData(
        **{
            **events.tables,
            "transactions": pd.DataFrame(
                {
                    "account_id": [1, 1, 2],
                    "timestamp": pd.to_datetime(
                        ["2024-01-05 10:00:00.123456789", "2024-01-05 10:00:00.5", "2024-01-06 00:00:00"],
                        format="ISO8601",
                    ),
                    "amount": [10.0, 0.1 + 0.2, 1e-7],
                }
            ),
        }
    )
    precise.to_dir(tmp_path, format="csv")
    back = rs.EventData.from_dir(tmp_path)
    assert back.equals(precise)
    assert back.transactions["timestamp"].iloc[0] == pd.Timestamp("2024-01-05 10:00:00.123456789")


@pytest.mark.parametrize(
    "ids", [[2**63, 5], [2**64 - 1, 5], [1e19, 5.0], [2.0**60, 5.0]], ids=["2^63", "2^64-1", "1e19", "2^60 float"]
)
def test_ids_a_signed_64_bit_integer_cannot_hold_exactly_are_refused(ids: list[Any]) -> None:
    accounts = pd.DataFrame({"account_id": ids, "open_date": ["2024-01-01"] * 2, "credit_limit": [1.0, 1.0]})
    statements = pd.DataFrame(
        {"account_id": ids, "statement_date": ["2024-02-01"] * 2, "balance": 1.0, "payment": 0.0, "dpd": 0}
    )
    with pytest.raises(
        rs.DataValidationError,
        match=r"accounts\.account_id: account_id (must fit a signed 64-bit|stored as floats must be below 2\^53)",
    ):
        rs.EventData(accounts=accounts, statements=statements)
    text = rs.EventData(accounts=accounts.assign(account_id=[str(int(v)) for v in ids]),
                        statements=statements.assign(account_id=[str(int(v)) for v in ids]))  # fmt: skip
    assert text.accounts["account_id"].tolist() == sorted(str(int(v)) for v in ids)


def test_observation_dates_without_any_event_row_asks_for_a_start() -> None:
    events = _small_events()
    empty = rs.EventData(
        accounts=events.accounts, statements=events.statements.iloc[:0], transactions=events.transactions.iloc[:0]
    )
    with pytest.raises(ValueError, match=r"the events hold no statement, instalment or transaction.*give start="):
        rs.observation_dates(empty)
    grid = rs.observation_dates(empty, start="2024-03-01", end="2024-03-01", eligible="all")
    assert sorted(grid["account_id"]) == [1, 2]


# --------------------------------------------- error quality: policy files that are not what they seem


def test_policy_files_with_a_bom_a_date_or_deep_nesting(tmp_path: Path) -> None:
    shipped = (Path(rs.outreach.__file__).parent / "policies" / "us-regf.toml").read_bytes()
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + shipped)
    assert rs.OutreachPolicy.load(bom).id == "us-regf"  # a byte-order mark is not content
    dated = tmp_path / "dated.toml"
    dated.write_bytes(shipped.replace(b'version = "', b'released = 2026-01-01\nversion = "', 1))
    with pytest.raises(rs.PolicyError, match=r"dated\.toml: policy\.released must be text.*got date 2026-01-01"):
        rs.OutreachPolicy.load(dated)
    deep = tmp_path / "deep.json"
    deep.write_text('{"policy": ' + "[" * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(rs.PolicyError, match=r"deep\.json: not a valid policy file: nested too deeply"):
        rs.OutreachPolicy.load(deep)
    nested = tmp_path / "nested.json"
    nested.write_text('{"policy": ' + "[" * 40 + "]" * 40 + "}")
    with pytest.raises(rs.PolicyError, match=r"nested\.json: policy.* is nested more than 16 levels"):
        rs.OutreachPolicy.load(nested)
