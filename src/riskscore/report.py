"""One self-contained HTML model report: what a model risk committee reads.

``report(model, events, out)`` rebuilds the scoring grid and target on
``events`` with the model's own FeatureBuilder and writes one HTML file with
every chart embedded as a PNG (``data:`` URI), so it can be mailed or archived
alone: the data window and target definition, the training record, metrics
(overall and per month) with ROC/KS, calibration and gains, the score
distribution by band, the features and reasons that drive the scores, the
stability of scores and features between the first and the last months, a
check of score and default rate by each protected attribute (monitoring only;
never a feature), and the outreach policy in force.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore._io import atomic_text

__all__ = ["report"]


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(fig: Any, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{_png(fig)}">'


def _table(frame: pd.DataFrame, floatfmt: str = "{:.4f}") -> str:
    shown = frame.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col].dtype):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else floatfmt.format(v))
    return shown.to_html(border=0, classes="t", escape=True)


def report(
    model: Any,
    events: Any,
    out: str | os.PathLike[str],
    *,
    start: Any = None,
    end: Any = None,
    policy: Any = "cn-2026",
    explain_rows: int = 3000,
    lang: str = "en",
    decisions: Any = None,
) -> Path:
    """Write the HTML report of ``model`` (a RiskModel or a bundle path) on ``events`` to ``out``.

    Parameters
    ----------
    model : RiskModel or path
        A fitted model that carries its FeatureBuilder.
    events : EventData or path
    out : path
        The HTML file (written through a temporary file renamed into place).
    start, end : date-like, optional
        The monthly ``as_of`` range evaluated; the whole data by default.
    policy : OutreachPolicy, name or path, default="cn-2026"
        The outreach policy shown.
    explain_rows : int, default=3000
        Rows (the riskiest) explained for the feature and reason sections.
    lang : {"en", "zh"}, default="en"
        Language of the reason texts.
    decisions : DataFrame or path, optional
        Outreach decisions (``recommend`` or ``score_batch`` output, or an
        audit log) to read out against their control group in an
        "Outreach results" section.

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
    from riskscore.monitor import psi, stability
    from riskscore.outreach import OutreachPolicy

    model = model if isinstance(model, RiskModel) else RiskModel.load(model)
    if model.builder_ is None:
        raise ValueError("the model carries no FeatureBuilder: fit it with fit(X, y, builder=builder) and save it")
    events = events if isinstance(events, EventData) else EventData.from_dir(events)
    rules = policy if isinstance(policy, OutreachPolicy) else OutreachPolicy.load(policy)
    target = model.manifest_.get("target", {})
    horizon = str(target.get("horizon", "90D"))
    threshold = int(target.get("dpd_threshold", 30))
    obs = observation_dates(events, start=start, end=end)
    if obs.empty:
        raise ValueError("no current account at any month start in the range: nothing to report")
    y = make_labels(events, obs, horizon=horizon, dpd_threshold=threshold)
    X = model.builder_.transform(events, obs)
    known = y.notna().to_numpy()
    if known.sum() < 50 or y[known].nunique() < 2:
        raise ValueError("fewer than 50 observations with a complete target window, or only one class: no report")
    Xk, yk = X[known], y[known].astype(int).set_axis(X[known].index)
    p = model.predict_proba(Xk)[:, 1]
    evaluation = evaluate(yk, p, by="as_of")
    scores = model.score(X)
    dates = X.index.get_level_values("as_of")
    months = np.sort(dates.unique())
    first, last = dates <= months[min(2, len(months) - 1)], dates >= months[max(len(months) - 3, 0)]
    sections: list[str] = []

    def section(title: str, body: str) -> None:
        sections.append(f"<h2>{html.escape(title)}</h2>\n{body}")

    training = model.manifest_.get("training", {})
    window = pd.DataFrame(
        {
            "value": [
                f"{pd.Timestamp(months[0]):%Y-%m-%d} to {pd.Timestamp(months[-1]):%Y-%m-%d} "
                f"({len(months)} month starts)",
                f"{len(X):,} observations of accounts current at a month start; {int(known.sum()):,} with a complete "
                f"window",
                f"{target.get('name', y.name)}: {threshold}+ days past due within {horizon} of as_of",
                f"{yk.mean():.2%} of complete windows",
                f"as_of {training.get('first_as_of')} to {training.get('last_as_of')}, "
                f"{training.get('rows', 0):,} rows, hold-out {training.get('holdout')}",
                f"{model.booster_.num_trees()} trees, {X.shape[1]} features, calibration {model.calibration}, "
                f"{model.version_}",
            ]
        },
        index=["data window", "population", "target", "default rate", "training", "model"],
    )
    section("Data and target", _table(window))
    summary = pd.DataFrame([evaluation.summary]).T.rename(columns={0: "value"})
    section(
        "Performance",
        _table(summary)
        + "<p>Per month (as_of):</p>"
        + _table(evaluation.by_period if evaluation.by_period is not None else pd.DataFrame())
        + _img(plots.roc_ks(yk, p), "ROC and KS")
        + _img(plots.calibration(yk, p), "calibration")
        + _img(plots.gains(yk, p), "gains and lift"),
    )
    section("Scores", _img(plots.score_distribution(scores), "accounts and PD per band"))
    riskiest = X.loc[scores.nlargest(min(explain_rows, len(X)), "pd").index]
    expl = model.explain(riskiest)
    reasons = expl.reason_codes(lang=lang)
    importance = expl.values.abs().mean().sort_values(ascending=False).head(15).to_frame("mean |contribution|")
    importance["description"] = model.catalogue_["description"].reindex(importance.index)
    section(
        f"What drives the scores ({len(riskiest):,} riskiest observations explained)",
        _table(importance)
        + _img(plots.beeswarm(expl, max_features=12), "contributions")
        + _img(plots.reason_frequency(reasons), "leading reasons"),
    )
    score_psi = psi(scores.loc[first, "pd"], scores.loc[last, "pd"])
    drift = stability(X[first], X[last])
    section(
        "Stability (first three months against the last three)",
        f"<p>PSI of the PD: <b>{score_psi:.4f}</b> (below 0.10 stable, 0.10-0.25 watch, above 0.25 shift).</p>"
        + _table(drift.head(15))
        + _img(plots.psi_by_feature(drift, top=15), "PSI by feature"),
    )
    section("Protected attributes (monitoring only, never features)", _protected(events, X, scores, y))
    if decisions is not None:
        section("Outreach results (contacted against held out)", _outreach(decisions, events, horizon, threshold))
    section(
        f"Outreach policy in force: {rules.id} ({rules.version})",
        f"<p>{html.escape(rules.description)}</p>" + _table(rules.to_frame().set_index("id")),
    )
    body = "\n".join(sections)
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>riskscore model report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table.t{{border-collapse:collapse;margin:0.5em 0;font-size:0.85em}}
table.t td,table.t th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
img{{max-width:100%;display:block;margin:0.8em 0}}</style></head>
<body><h1>riskscore model report</h1>
<p>Generated {pd.Timestamp.now(tz="UTC"):%Y-%m-%d %H:%M UTC} by riskscore for model {model.version_}.</p>
{body}
</body></html>
"""
    target_path = Path(out)
    atomic_text(target_path, document)
    return target_path


def _outreach(decisions: Any, events: Any, horizon: str, threshold: int) -> str:
    """The read-out per treatment and per treatment and segment, with its chart."""
    import riskscore.plots as plots
    from riskscore.outreach import readout

    by_action = readout(decisions, events, horizon=horizon, by=("action",), dpd_threshold=threshold)
    cells = readout(decisions, events, horizon=horizon, by=("action", "segment"), dpd_threshold=threshold)
    treated, control = (int(by_action[c].iloc[-1]) for c in ("treated", "control"))  # the "all" row
    shown = by_action[["treated", "control", "contacts", "rate_treated", "rate_control", "uplift", "ci_low",
                       "ci_high", "p_value", "mde", "contacts_per_averted"]]  # fmt: skip
    reading = (
        f"<p>Every decision drew a random control group: {treated:,} accounts assigned a treatment "
        f"and not held out against {control:,} held out from the same treatment. The uplift is the "
        f"drop in the share reaching {threshold}+ days past due within {horizon} of the decision "
        "(control rate - treated rate), with a 95% interval that is cluster-robust over customers; a group too "
        "small to say anything shows only the smallest uplift it could detect (mde).</p>"
    )
    return reading + _table(shown) + _img(plots.readout(cells), "uplift per treatment and segment with 95% intervals")


def _protected(events: Any, X: pd.DataFrame, scores: pd.DataFrame, y: pd.Series) -> str:
    protected = [c for c in events.protected if c in events.accounts.columns]
    if not protected:
        return "<p>No protected attribute is marked in the event data.</p>"
    parts = []
    ids = X.index.get_level_values("account_id")
    for col in protected:
        values = events.accounts.set_index("account_id")[col].reindex(ids)
        if pd.api.types.is_numeric_dtype(values.dtype) and values.nunique() > 8:
            groups = pd.qcut(values, q=4, duplicates="drop").astype(str)
        else:
            groups = values.astype(str)
        frame = pd.DataFrame(
            {"group": groups.to_numpy(), "pd": scores["pd"].to_numpy(), "y": y.astype("float64").to_numpy()}
        )
        table = frame.groupby("group", observed=True).agg(
            observations=("pd", "size"), mean_pd=("pd", "mean"), default_rate=("y", "mean")
        )
        parts.append(f"<p><b>{html.escape(col)}</b>: mean PD and observed default rate by group.</p>" + _table(table))
    return "\n".join(parts)
