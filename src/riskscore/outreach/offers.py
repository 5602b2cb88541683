"""Repayment-plan offers sized on what the borrower has been paying, and money formatting."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["money", "plan_offers"]


def plan_offers(
    exposure: np.ndarray, recent: np.ndarray, offer: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repayment plans for many accounts: (instalment, term in months, total); total NaN when nothing is owed.

    The instalment starts from the borrower's recent monthly payments (at least
    ``min_instalment``), the term is what clears the balance at that pace,
    clipped to [``min_term_months``, ``max_term_months``], and the instalment is
    then the balance over the term, rounded up to the cent.
    """
    total = np.where(np.isfinite(exposure) & (exposure > 0), exposure, np.nan)
    base = np.maximum(float(offer["min_instalment"]), np.where(np.isfinite(recent), recent, 0.0))
    with np.errstate(invalid="ignore"):
        term = np.clip(np.ceil(total / base), offer["min_term_months"], offer["max_term_months"])
        instalment = np.ceil(np.round(total / term * 100, 6)) / 100
    return instalment, term, np.round(total, 2)


def money(value: float, currency: str) -> str:
    """An amount as a message shows it (``¥1,234.50``), or "the amount due" when unknown."""
    return f"{currency}{value:,.2f}" if np.isfinite(value) else "the amount due"
