"""Numbers and tables as people read them, and charts embedded as PNG, for the HTML report."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

__all__ = ["count", "figure", "interval", "number", "pct", "points", "table"]


def count(value: Any) -> str:
    """A whole number with thousands separators: 28,043."""
    return "" if _missing(value) else f"{float(value):,.0f}"


def pct(value: Any, places: int = 1) -> str:
    """A share in percent: 4.6%."""
    return "" if _missing(value) else f"{float(value) * 100:.{places}f}%"


def points(value: Any, places: int = 1, signed: bool = True) -> str:
    """A difference of two shares in percentage points: +2.9 pp (never "2.9%", which reads as a relative change)."""
    if _missing(value):
        return ""
    return f"{float(value) * 100:{'+' if signed else ''}.{places}f} pp"


def number(value: Any, places: int = 3) -> str:
    """A decimal figure: 0.786."""
    return "" if _missing(value) else f"{float(value):.{places}f}"


def interval(low: Any, high: Any, as_pct: bool = False) -> str:
    """A confidence interval: [0.771, 0.801] or [4.2%, 5.0%]."""
    if _missing(low) or _missing(high):
        return ""
    shown = (pct(low), pct(high)) if as_pct else (number(low), number(high))
    return f"[{shown[0]}, {shown[1]}]"


def table(
    frame: pd.DataFrame,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    index: bool = True,
    text: bool = False,
) -> str:
    """An HTML table; each column through its formatter (counts for integers, three places for floats).

    ``text=True`` for a table of words (settings, descriptions): cells are left-aligned.
    """
    shown = frame.copy()
    formats = dict(formats or {})
    for col in shown.columns:
        if col in formats:
            shown[col] = shown[col].map(formats[col])
        elif pd.api.types.is_integer_dtype(shown[col].dtype):
            shown[col] = shown[col].map(count)
        elif pd.api.types.is_float_dtype(shown[col].dtype):
            shown[col] = shown[col].map(number)
    return shown.to_html(border=0, classes="t left" if text else "t", escape=True, index=index, na_rep="")


def figure(fig: Any, alt: str, reading: str) -> str:
    """The chart as an embedded PNG with its one-line reading under it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(reading)}</figcaption></figure>"
    )


def _missing(value: Any) -> bool:
    try:
        return value is None or math.isnan(float(value))
    except (TypeError, ValueError):
        return True
