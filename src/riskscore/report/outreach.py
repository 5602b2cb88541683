"""The report's outreach-results section: the read-out of decisions against their control group."""

from __future__ import annotations

from typing import Any

from riskscore.report.format import figure, number, pct, points, table

__all__ = ["outreach"]


def outreach(decisions: Any, events: Any, horizon: str, threshold: int) -> str:
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
        "(control rate - treated rate, in percentage points), with a 95% interval that is cluster-robust over "
        "customers; a group too small to say anything shows only the smallest uplift it could detect (mde).</p>"
    )
    return (
        '<section id="outreach-results"><h2>Outreach results (contacted against held out)</h2>'
        + reading
        + table(
            shown,
            {
                "rate_treated": pct,
                "rate_control": pct,
                "uplift": points,
                "ci_low": points,
                "ci_high": points,
                "mde": lambda v: points(v, signed=False),
                "p_value": lambda v: number(v, 3),
                "contacts_per_averted": lambda v: number(v, 1),
            },
        )
        + figure(
            plots.readout(cells),
            "uplift per treatment and segment with 95% intervals",
            "Uplift (control rate minus treated rate) per treatment and segment with its 95% interval; an "
            "interval crossing zero shows no measurable effect.",
        )
        + "</section>"
    )
