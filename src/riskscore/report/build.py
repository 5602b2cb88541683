"""``report()``: the grid, target and scores rebuilt as ``train`` built them, and the HTML around the sections."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore._io import atomic_text
from riskscore.report import sections
from riskscore.report.format import count, figure, interval, number, pct, table

__all__ = ["SECTIONS", "report"]

SECTIONS: tuple[str, ...] = (
    "Summary",
    "Data and target",
    "Samples",
    "Performance over time",
    "Discrimination and calibration out of time",
    "Bands",
    "Stability against the training population",
    "Excluded population",
    "What drives the scores",
    "Fairness by protected attribute",
    "Model settings",
    "Reason-code catalogue",
    "Outreach policy in force",
    "Limitations",
)
"""The report's sections, in order (an "Outreach results" section follows the catalogue when decisions are given)."""


def report(
    model: Any,
    events: Any,
    out: str | os.PathLike[str],
    *,
    start: Any = None,
    end: Any = None,
    policy: Any = "auto",
    explain_rows: int = 3000,
    lang: str = "en",
    decisions: Any = None,
) -> Path:
    """Write the HTML report of ``model`` (a RiskModel or a bundle path) on ``events`` to ``out``.

    Parameters
    ----------
    model : RiskModel or path
        A fitted model that carries its FeatureBuilder (``fit(..., builder=)``).
    events : EventData or path
    out : path
        The HTML file (written through a temporary file renamed into place).
    start, end : date-like, optional
        The monthly ``as_of`` range evaluated; the whole data by default.
    policy : "auto", OutreachPolicy, name, path or None, default="auto"
        The outreach policy shown: ``"auto"`` takes the shipped profile of the
        accounts' most frequent time zone; None leaves the section out.
    explain_rows : int, default=3000
        Out-of-time rows (the riskiest) explained for the drivers and reasons.
    lang : {"en", "zh"}, default="en"
        Language of the reason texts.
    decisions : DataFrame or path, optional
        Outreach decisions (``recommend`` or ``score_batch`` output, or an
        audit log) to read out against their control group.

    Returns
    -------
    Path
        The report file.
    """
    import riskscore.plots as plots
    from riskscore.data import EventData
    from riskscore.evaluate import evaluate
    from riskscore.labels import make_labels, observation_dates
    from riskscore.model import RiskModel
    from riskscore.model.params import points_scale
    from riskscore.model.samples import SAMPLES, sample_of
    from riskscore.monitor import psi, stability
    from riskscore.outreach import Treatments
    from riskscore.outreach.readout import decisions_frame

    model = model if isinstance(model, RiskModel) else RiskModel.load(model)
    if model.builder_ is None:
        raise ValueError("the model carries no FeatureBuilder: fit it with fit(X, y, builder=builder) and save it")
    events = events if isinstance(events, EventData) else EventData.from_dir(events)
    rules = _policy(policy, events)
    decided = None if decisions is None else decisions_frame(decisions)  # read once: fairness and the read-out
    target = model.manifest_.get("target", {})
    horizon, threshold = str(target.get("horizon", "90D")), int(target.get("dpd_threshold", 30))
    obs = observation_dates(events, start=start, end=end)
    if obs.empty:
        raise ValueError("no current account at any month start in the range: nothing to report")
    labels = make_labels(events, obs, horizon=horizon, dpd_threshold=threshold)
    known = labels.notna().to_numpy()
    if known.sum() < 50 or labels[known].nunique() < 2:
        raise ValueError("fewer than 50 observations with a complete target window, or only one class: no report")
    X = model.builder_.transform(events, obs.loc[known])
    y = labels[known].astype(int).set_axis(X.index)
    p = model.predict_proba(X)[:, 1]
    scores = model.scale(p, X.index)
    sample = sample_of(model, X.index.get_level_values("as_of"))
    oot = sample == "out of time"
    metrics = sections.sample_metrics(y, p, sample, SAMPLES)
    # The headline sample: out of time, else the hold-out, else (said plainly) every row, in sample.
    chosen = next((s for s in ("out of time", "hold-out") if s in metrics.index), None)
    headline = chosen or "in-sample"
    head_mask = sample == chosen if chosen else np.ones(len(y), dtype=bool)
    parts: list[str] = []

    def section(title: str, body: str) -> None:
        anchor = title.lower().replace(" ", "-")
        parts.append(f'<section id="{html.escape(anchor)}"><h2>{html.escape(title)}</h2>\n{body}</section>')

    # Summary: out-of-time figures first, as a reviewer reads them.
    if headline in metrics.index:
        m = metrics.loc[headline]
        lead = (
            f"<p class='lead'>Out of time ({html.escape(str(m['months']))}, {count(m['observations'])} observations "
            f"of accounts current at a month start, {count(m['defaults'])} reaching {threshold}+ days past due within "
            f"{horizon}): <b>AUC {number(m['AUC'])}</b> {interval(*m['AUC 95% CI'])}, KS {number(m['KS'])}, Brier "
            f"{number(m['Brier'], 4)}, calibration error {pct(m['calibration error'], 2)}; observed default rate "
            f"{pct(m['default rate'], 2)} against a mean PD of {pct(m['mean PD'], 2)}.</p>"
        )
        if headline != "out of time":
            lead = lead.replace("Out of time", "No out-of-time month in the data; on the hold-out")
    else:
        lead = (
            "<p class='lead'>No out-of-time or hold-out month with both outcomes in the range: every figure below "
            "is in sample and says nothing of the model's performance on new data.</p>"
        )
    section(
        "Summary",
        lead + "<p>Figures over development months are in sample and read high; the sample of every "
        "figure is named.</p>",
    )

    training = model.manifest_.get("training", {})
    months = pd.DatetimeIndex(np.sort(X.index.get_level_values("as_of").unique()))
    facts = pd.DataFrame(
        {
            "value": [
                f"{months[0]:%Y-%m-%d} to {months[-1]:%Y-%m-%d} "
                f"({len(months)} month starts with a complete target window)",
                f"accounts open and current (0 days past due) at a month start: {count(len(obs))} observations, "
                f"{count(int(known.sum()))} with a complete {horizon} window",
                f"{target.get('name', labels.name)}: reaches {threshold}+ days past due "
                f"within [as_of, as_of + {horizon})",
                f"{pct(y.mean(), 2)} of the observations with a complete window",
                f"as_of {training.get('first_as_of')} to {training.get('last_as_of')}: "
                f"{training.get('rows', 0):,} rows, "
                f"hold-out {training.get('holdout')}",
                f"every feature uses only events strictly before as_of; protected attributes are never features "
                f"({', '.join(events.protected) or 'none marked'})",
            ]
        },
        index=["data window", "population", "target", "default rate", "training", "point in time"],
    )
    section("Data and target", table(facts, text=True))

    try:
        card, challenger = sections.challenger(X, y, sample, SAMPLES)
        about = (
            f"The challenger is a weight-of-evidence logistic scorecard on the {len(card.features_)} features "
            "of highest information value, fitted on the development rows only."
        )
        card_table = "<p>Challenger features (information value on the development rows, coefficient):</p>" + table(
            card.iv_[["iv", "coefficient"]].assign(
                description=model.catalogue_["description"].reindex(card.iv_.index).to_numpy()
            )
        )
    except ValueError as exc:  # no development rows with both outcomes in the range
        challenger = pd.DataFrame({"challenger AUC": [], "challenger AUC 95% CI": []})
        about, card_table = f"No challenger: {exc}.", ""
    both = metrics.join(challenger, how="left")
    shown = both.assign(
        **{
            "rate 95% CI": both["rate 95% CI"].map(lambda v: interval(v[0], v[1], as_pct=True)),
            "AUC 95% CI": both["AUC 95% CI"].map(lambda v: interval(*v)),
            "challenger AUC 95% CI": both["challenger AUC 95% CI"].map(
                lambda v: interval(*v) if isinstance(v, tuple) else ""
            ),
        }
    )
    rates = {
        "default rate": lambda v: pct(v, 2),
        "mean PD": lambda v: pct(v, 2),
        "calibration error": lambda v: pct(v, 2),
        "Brier": lambda v: number(v, 4),
        "lift at 10%": lambda v: f"{number(v, 1)}x",
    }
    section(
        "Samples",
        "<p>Development: the months the trees were grown on; hold-out: the later training months kept for early "
        "stopping and calibration; out of time: every month after the training window. 95% intervals: Wilson for "
        f"rates, DeLong for AUC. {html.escape(about)}</p>" + table(shown, rates) + card_table,
    )

    evaluation = evaluate(y, p, by="as_of")
    by_month = evaluation.by_period
    assert by_month is not None
    month_sample = sample_of(model, by_month.index)
    month_table = by_month[["n", "positives", "rate", "auc", "ks", "brier", "ece"]].assign(sample=month_sample)
    month_table.index = [f"{d:%Y-%m-%d}" for d in pd.DatetimeIndex(by_month.index)]
    section(
        "Performance over time",
        figure(
            plots.performance_over_time(by_month, month_sample),
            "AUC per month by sample",
            "AUC of each month's observations, coloured by sample: in-sample months read high; the out-of-time "
            "points are the model's performance on new data.",
        )
        + table(
            month_table[["sample", "n", "positives", "rate", "auc", "ks", "brier", "ece"]]
            .rename(
                columns={
                    "n": "observations",
                    "positives": "defaults",
                    "rate": "default rate",
                    "auc": "AUC",
                    "ks": "KS",
                    "ece": "calibration error",
                    "brier": "Brier",
                }
            )
            .rename_axis("as_of"),
            {
                "default rate": lambda v: pct(v, 2),
                "calibration error": lambda v: pct(v, 2),
                "Brier": lambda v: number(v, 4),
            },
        ),
    )

    yh, ph = y[head_mask], p[head_mask]
    section(
        "Discrimination and calibration out of time",
        ("" if headline == "out of time" else f"<p>No out-of-time rows in the range: {headline} rows.</p>")
        + figure(
            plots.roc_ks(yh, ph),
            "ROC and KS",
            f"ROC curve and KS on the {headline} rows: the further above "
            "the diagonal, the better the PD ranks defaulters first.",
        )
        + figure(
            plots.calibration(yh, ph),
            "calibration",
            "Mean predicted PD against the observed default rate "
            "in ten equal-count bins: a calibrated PD lies on the diagonal.",
        )
        + figure(
            plots.gains(yh, ph),
            "gains and lift",
            "Share of the defaulters caught by targeting the riskiest "
            "share of accounts, and the lift over random targeting.",
        ),
    )

    bands, band_time = sections.band_table(model, scores, y, sample)
    band_time.index = [f"{d:%Y-%m-%d}" for d in pd.DatetimeIndex(band_time.index)]
    band_formats = {
        "PD from": lambda v: pct(v),
        "PD below": lambda v: pct(v),
        "share": lambda v: pct(v),
        "observed default rate": lambda v: pct(v, 2),
        "mean PD": lambda v: pct(v, 2),
    }
    section(
        "Bands",
        f"<p>Bands are fixed PD ranges; points rise by {points_scale(model)['pdo']:g} each time the odds of "
        f"not defaulting double. Accounts, observed default rate and mean PD over the {headline} rows:</p>"
        + table(bands, band_formats)
        + figure(
            plots.score_distribution(scores[head_mask]),
            "accounts and PD per band",
            f"Accounts per band and the spread of the PD within each, {headline} rows.",
        )
        + "<p>Observed default rate per band and month:</p>"
        + table(band_time.rename_axis("as_of"), {c: (lambda v: pct(v, 1)) for c in band_time.columns}),
    )

    dev = sample == "development"
    gain = pd.Series(model.booster_.feature_importance("gain"), index=model.booster_.feature_name())
    top = [f for f in gain.sort_values(ascending=False).index if f in X.columns][:15]
    numeric_top = [f for f in top if pd.api.types.is_numeric_dtype(X[f].dtype)]
    rows: list[dict[str, Any]] = []
    later = pd.DatetimeIndex(np.unique(X.index.get_level_values("as_of")[oot]))
    for month in later:
        now = np.asarray(X.index.get_level_values("as_of") == month)
        value = psi(p[dev], p[now])
        assert isinstance(value, float)
        rows.append({"as_of": f"{month:%Y-%m-%d}", "observations": int(now.sum()), "PSI of the PD": value})
    score_psi = pd.DataFrame(rows).set_index("as_of") if rows else pd.DataFrame()
    drift = stability(X.loc[dev, numeric_top], X.loc[head_mask, numeric_top]) if dev.any() else pd.DataFrame()
    drift = drift.rename(
        columns={"expected_missing": "missing (development)", "actual_missing": f"missing ({headline})"}
    )
    section(
        "Stability against the training population",
        f"<p>Against the development rows ({count(int(dev.sum()))} observations, the population the trees were "
        "grown on). PSI below 0.10: stable; 0.10 to 0.25: watch; above 0.25: shifted.</p>"
        + (table(score_psi, {"PSI of the PD": lambda v: number(v)}) if rows else "<p>No out-of-time month.</p>")
        + (
            f"<p>The {len(numeric_top)} features the model uses most (by gain), {headline} rows against "
            "development:</p>"
            + table(drift, {"missing (development)": pct, f"missing ({headline})": pct})
            + figure(
                plots.psi_by_feature(drift, top=15),
                "PSI by feature",
                "PSI of each feature against the development rows; the dashed lines mark 0.10 and 0.25.",
            )
            if len(drift)
            else ""
        ),
    )

    excluded = sections.exclusions(events, start, end, obs, known)
    section(
        "Excluded population",
        "<p>Only accounts open and current at as_of are scored (the model predicts falling behind, so accounts "
        "already past due are collections cases, not scored). Observations whose target window runs past the data "
        "are scored but cannot be measured. Neither group is in any figure above.</p>"
        + table(excluded, {"excluded share": lambda v: pct(v)}),
    )

    riskiest = X.loc[head_mask].loc[scores[head_mask].nlargest(min(explain_rows, int(head_mask.sum())), "pd").index]
    expl = model.explain(riskiest)
    reasons = expl.reason_codes(lang=lang)
    importance = pd.DataFrame({"gain share": gain / gain.sum(), "mean |contribution|": expl.values.abs().mean()})
    importance = importance.sort_values("gain share", ascending=False).head(15)
    importance["description"] = model.catalogue_["description"].reindex(importance.index).to_numpy()
    section(
        "What drives the scores",
        f"<p>{count(len(riskiest))} riskiest {headline} observations explained exactly (TreeSHAP).</p>"
        + table(importance, {"gain share": lambda v: pct(v)})
        + figure(
            plots.beeswarm(expl, max_features=12),
            "contributions",
            "Each dot is one observation's "
            "contribution of a feature to the log-odds; its colour, the feature's value (red high, blue low).",
        )
        + figure(
            plots.reason_frequency(reasons),
            "leading reasons",
            "How often each reason code is the principal reason given to these borrowers.",
        ),
    )

    flagged = scores["band"].isin(Treatments.load().contacted_bands(scores["band"].unique())).to_numpy()
    groups = sections.fairness(events, scores, y, flagged, decided)
    body = (
        "<p>Attributes supplied for monitoring only (never features). Per group: AUC, mean PD against the "
        "observed default rate, the share in the bands that call for contact, and the adverse-impact ratio "
        "(each group's share not flagged over the highest group's; below 0.80 fails the four-fifths rule).</p>"
    )
    for col, frame in groups.items():
        body += f"<p><b>{html.escape(col)}</b></p>" + table(
            frame,
            {
                "default rate": lambda v: pct(v, 2),
                "mean PD": lambda v: pct(v, 2),
                "PD - default rate": lambda v: pct(v, 2),
                "in contact bands": lambda v: pct(v),
                "contacted (decisions)": lambda v: pct(v),
                "adverse-impact ratio": lambda v: number(v, 2),
            },
        )
    section(
        "Fairness by protected attribute",
        body if groups else "<p>No protected attribute is marked in the event data: fairness cannot be checked.</p>",
    )

    section("Model settings", table(sections.settings(model), text=True))
    section("Reason-code catalogue", _catalogue(model))
    if decided is not None:
        from riskscore.report.outreach import outreach

        parts.append(outreach(decided, events, horizon, threshold))
    if rules is not None:
        section(
            "Outreach policy in force",
            f"<p><b>{html.escape(rules.id)}</b> ({html.escape(rules.version)}): "
            f"{html.escape(rules.description)}</p>" + table(rules.to_frame().set_index("id"), text=True),
        )
    else:
        why = "none was given" if policy is None else "the accounts' zones are in no shipped profile's jurisdiction"
        section("Outreach policy in force", f"<p>No policy shown: {why} (give policy= a profile name or file).</p>")
    section("Limitations", _limitations(metrics, excluded, groups, horizon))
    document = _document(model, "\n".join(parts))
    target_path = Path(out)
    atomic_text(target_path, document)
    return target_path


def _policy(policy: Any, events: Any) -> Any:
    from riskscore.outreach import OutreachPolicy
    from riskscore.outreach.policy import profile_for_zone

    if policy is None:
        return None
    if isinstance(policy, OutreachPolicy):
        return policy
    if isinstance(policy, str) and policy == "auto":
        zones = events.accounts["timezone"].dropna().astype(str)
        name = profile_for_zone(str(zones.value_counts().index[0])) if len(zones) else None
        return None if name is None else OutreachPolicy.load(name)
    return OutreachPolicy.load(policy)


def _catalogue(model: Any) -> str:
    from riskscore.reasons import load_reason_catalogue

    cat = load_reason_catalogue()
    used = model.catalogue_["group"].map(lambda g: cat.group_reason.get(str(g), cat.fallback["code"]))
    per = used.value_counts()
    rows = [
        {
            "code": code,
            "title": entry["title"]["en"],
            "title (zh)": entry["title"]["zh"],
            "features in the model": int(per.get(code, 0)),
        }
        for code, entry in sorted(cat.reasons.items())
    ]
    return (
        f"<p>Reason catalogue version {html.escape(cat.version)}: every feature belongs to one reason; a "
        "reason's contribution is the sum of its features'; at most four reasons that raise the risk are "
        "given per score, each quoting the account's own value.</p>" + table(pd.DataFrame(rows).set_index("code"))
    )


def _limitations(
    metrics: pd.DataFrame,
    excluded: pd.DataFrame,
    groups: dict[str, Any],
    horizon: str,
) -> str:
    items = []
    if "out of time" in metrics.index:
        months_text = str(metrics.loc["out of time", "months"])
        items.append(
            f"Out-of-time evidence covers {months_text} only "
            f"({count(metrics.loc['out of time', 'observations'])} observations); later drift is unmeasured."
        )
    else:
        items.append("There is no out-of-time month in the data: the model's performance on new data is unmeasured.")
    items.append(f"The target needs {horizon} of data after as_of: the latest months are scored but not measured.")
    share = excluded["excluded: past due at as_of"].sum() / max(int(excluded["accounts open"].sum()), 1)
    items.append(
        f"{pct(share)} of the open account-months were past due at as_of and are neither scored nor "
        "validated (no reject inference)."
    )
    small = [f"{col}: {g}" for col, frame in groups.items() for g, n in frame["observations"].items() if n < 500]
    if small:
        items.append("Groups with fewer than 500 observations have wide intervals: " + ", ".join(map(str, small[:8])))
    items.append(
        "Monotone constraints follow the catalogue's risk directions where the training rows agree; "
        "elsewhere the model may learn non-monotone effects (see Model settings)."
    )
    items.append("Reasons explain the model's margin before calibration; the isotonic calibration keeps their order.")
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _document(model: Any, body: str) -> str:
    contents = "".join(f'<li><a href="#{s.lower().replace(" ", "-")}">{html.escape(s)}</a></li>' for s in SECTIONS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>riskscore model report</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222;line-height:1.4}}
table.t{{border-collapse:collapse;margin:0.5em 0;font-size:0.85em}}
table.t td,table.t th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
table.t th{{background:#f4f4f4}} table.left td{{text-align:left}}
p.lead{{font-size:1.1em;background:#f4f8fb;padding:0.6em;border-left:4px solid #2471a3}}
figure{{margin:1em 0}} figcaption{{font-size:0.85em;color:#555}} img{{max-width:100%;display:block}}</style></head>
<body><h1>riskscore model report</h1>
<p>Model {html.escape(str(model.version_))}; generated {pd.Timestamp.now(tz="UTC"):%Y-%m-%d %H:%M UTC}.</p>
<ol>{contents}</ol>
{body}
</body></html>
"""
