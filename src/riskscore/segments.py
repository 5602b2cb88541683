"""Borrower situation behind a score: forgetful, cannot pay, will not pay, or unknown.

The segment says what kind of outreach can help, so it must rest on facts a
collector can check. Each rule below is a named piece of *evidence* read from the
same point-in-time feature values the reasons quote; the segment follows from
which evidence holds:

``forgetful``
    sporadic short lateness that cured, with at most one weak sign of strain
    (or, with no lateness on record, payments well above the minimum and no
    sign of strain at all: capacity intact) -> a reminder before the due date.
``cannot_pay``
    signs of strain: payments down to the minimum, utilisation rising or at the
    limit, cash advances, instalments slipping a few days under pressure ->
    a repayment plan.
``will_not_pay``
    paying well, no strain, and a spending spree that runs the balance up ->
    a call.
``unknown``
    not enough history or no evidence either way.

Every threshold is a field of :class:`SegmentRules`, never a constant in code.
Features are looked up by name; when the builder ran with other windows, the
window closest to the one asked for is used, and evidence whose features are
missing simply does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from riskscore.features.names import split_window, velocity_windows

__all__ = ["EVIDENCE", "SEGMENTS", "SegmentRules", "segment_rows"]

SEGMENTS: tuple[str, ...] = ("forgetful", "cannot_pay", "will_not_pay", "unknown")
"""The possible segments, in this order as a pandas categorical."""

EVIDENCE: dict[str, str] = {
    "short_lateness": "late on a card statement in the last year, or an instalment paid more than a few days late",
    "minimum_payments": "last card payment at or below the minimum share of the balance",
    "rising_utilisation": "card utilisation or balance rising over the last 90 days",
    "high_utilisation": "card at or near its limit over the last 90 days",
    "cash_advances": "cash advances or ATM withdrawals on the card in the last 90 days",
    "instalment_slips": "instalments paid a few days late (a sign of tight cash)",
    "paying_well": "card payments well above the minimum",
    "spending_spree": "spending or balance running up fast",
    "no_history": "no statement or instalment history yet",
}
"""Evidence codes a segment can cite, with what each means."""

_STRAIN = ("minimum_payments", "rising_utilisation", "high_utilisation", "cash_advances", "instalment_slips")


@dataclass(frozen=True)
class SegmentRules:
    """Thresholds of the segment rules (defaults documented in docs/architecture.md).

    Attributes
    ----------
    minimum_ratio : float, default=0.08
        A card payment of at most this share of the statement balance is a
        minimum payment.
    paying_ratio : float, default=0.15
        Mean payment share over 180 days from which a borrower pays well.
    rising_slope : float, default=0.05
        Utilisation slope per 30 days over 90 days above which utilisation rises.
    rising_growth : float, default=0.20
        Relative balance growth over 90 days above which the balance rises.
    high_utilisation : float, default=0.95
        Mean utilisation over 90 days from which the card is at its limit.
    slip_days : int, default=10
        Instalments paid late by at most this many days are slips (tight cash);
        later ones count as forgotten.
    spree_velocity : float, default=1.5
        Spending of the last 30 days against the 90-day average from which
        spending runs up.
    spree_growth : float, default=0.10
        Relative balance growth over 90 days that counts as a spree for a
        borrower who pays well.
    forgetful_max_strain : int, default=1
        Lateness with at most this many signs of strain is forgetfulness.
    """

    minimum_ratio: float = 0.08
    paying_ratio: float = 0.15
    rising_slope: float = 0.05
    rising_growth: float = 0.20
    high_utilisation: float = 0.95
    slip_days: int = 10
    spree_velocity: float = 1.5
    spree_growth: float = 0.10
    forgetful_max_strain: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise ValueError(f"SegmentRules.{f.name} must be a finite number >= 0; got {value!r}")


def _feature(data: pd.DataFrame, name: str) -> pd.Series:
    """Feature ``name`` as floats; the nearest window of the same stem if absent; NaN if none."""
    if name in data.columns:
        return data[name].astype(np.float64)
    stem, wanted = split_window(name)
    if wanted is not None:
        candidates = []
        for col in data.columns:
            col_stem, days = split_window(str(col))
            if days is not None and col_stem == stem and velocity_windows(str(col)) is None:
                candidates.append((abs(days - wanted), -days, str(col)))
        if candidates:
            return data[min(candidates)[2]].astype(np.float64)
    return pd.Series(np.nan, index=data.index)


def _velocity(data: pd.DataFrame) -> pd.Series:
    """Short-window spending against the next window (``txn_amount_velocity_*``), shortest pair."""
    found = sorted((w[0], str(c)) for c in data.columns if (w := velocity_windows(str(c))))
    return data[found[0][1]].astype(np.float64) if found else pd.Series(np.nan, index=data.index)


def evidence_frame(data: pd.DataFrame, rules: SegmentRules) -> pd.DataFrame:
    """One boolean column per evidence code (see :data:`EVIDENCE`), indexed like ``data``."""
    card = _feature(data, "stmt_history_count").fillna(0) > 0
    loan = _feature(data, "inst_history_count").fillna(0) > 0
    ratio_last = _feature(data, "stmt_pay_ratio_last")
    ratio_mean = _feature(data, "stmt_pay_ratio_mean_180d")
    growth = _feature(data, "stmt_balance_growth_90d")
    slope = _feature(data, "stmt_util_slope_90d")
    utilisation = _feature(data, "stmt_util_mean_90d")
    cash = _feature(data, "txn_cash_advance_share_90d").fillna(0) + _feature(data, "txn_atm_share_90d").fillna(0)
    card_late = _feature(data, "stmt_late_count_365d").fillna(0) > 0
    loan_late = _feature(data, "inst_late_count_365d").fillna(0) > 0
    late_days = _feature(data, "inst_days_late_max_365d").fillna(0)
    # Comparisons with NaN are False: evidence needs its facts.
    evidence = {
        "short_lateness": (card & card_late) | (loan & loan_late & (late_days > rules.slip_days)),
        "minimum_payments": card & (ratio_last <= rules.minimum_ratio),
        "rising_utilisation": card & ((slope > rules.rising_slope) | (growth > rules.rising_growth)),
        "high_utilisation": card & (utilisation >= rules.high_utilisation),
        "cash_advances": card & (cash > 0),
        "instalment_slips": loan & loan_late & (late_days <= rules.slip_days),
        "paying_well": card & (ratio_mean >= rules.paying_ratio) & (ratio_last > rules.minimum_ratio),
        "spending_spree": card & ((_velocity(data) >= rules.spree_velocity) | (growth > rules.spree_growth)),
        "no_history": ~card & ~loan,
    }
    return pd.DataFrame({k: np.asarray(v, dtype=bool) for k, v in evidence.items()}, index=data.index)


def segment_rows(data: pd.DataFrame, rules: SegmentRules | None = None) -> pd.DataFrame:
    """Segment and evidence for each row of feature values.

    Returns
    -------
    DataFrame
        Indexed like ``data``: ``segment`` (categorical over :data:`SEGMENTS`)
        and ``evidence`` (a tuple of the evidence codes that hold and support
        the segment, in the order of :data:`EVIDENCE`).
    """
    rules = SegmentRules() if rules is None else rules
    ev = evidence_frame(data, rules)
    strain = ev[list(_STRAIN)].sum(axis=1).to_numpy()
    late = ev["short_lateness"].to_numpy()
    paying = ev["paying_well"].to_numpy()
    spree = ev["spending_spree"].to_numpy()
    conditions = [
        late & (strain <= rules.forgetful_max_strain),
        paying & spree,
        strain >= 1,
        late,
        paying & (strain == 0),
    ]
    choices = ["forgetful", "will_not_pay", "cannot_pay", "forgetful", "forgetful"]
    labels = np.select(conditions, choices, default="unknown")
    # The evidence each segment cites: the facts that support it.
    support: dict[str, tuple[str, ...]] = {
        "forgetful": ("short_lateness", "paying_well"),
        "cannot_pay": _STRAIN,
        "will_not_pay": ("paying_well", "spending_spree"),
        "unknown": ("no_history",),
    }
    columns = list(ev.columns)
    # Evidence as bit sets: what holds, kept where the segment cites it; few distinct sets.
    weights = np.left_shift(np.int64(1), np.arange(len(columns), dtype=np.int64))
    held = ev.to_numpy().astype(np.int64) @ weights
    allowed_bits = {s: int(sum(w for c, w in zip(columns, weights, strict=True) if c in support[s])) for s in support}
    mask = np.zeros(len(labels), dtype=np.int64)
    for name, bits in allowed_bits.items():
        mask[labels == name] = bits
    bitsets = held & mask
    distinct, inverse = np.unique(bitsets, return_inverse=True)
    as_tuple = [tuple(c for c, w in zip(columns, weights, strict=True) if int(b) & int(w)) for b in distinct]
    cited = [as_tuple[k] for k in inverse.tolist()]
    return pd.DataFrame(
        {"segment": pd.Categorical(labels, categories=SEGMENTS), "evidence": pd.Series(cited, dtype=object).to_numpy()},
        index=data.index,
    )
