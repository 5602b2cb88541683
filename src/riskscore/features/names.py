"""The feature-name grammar: how names are built and the one place they are parsed.

A feature is named ``<prefix>_<stem>[_<window>]``: ``stmt_dpd_max_90d``,
``txn_amount_velocity_30d_90d`` (a short and a long window), ``acct_<column>``
for a static account column, ``stmt_extra_<column>_<statistic>[_<window>]`` for
a lender's own statement field, ``txn_extra_<column>_<statistic>_<window>`` for
one of its transaction fields. Windows are whole days (``90d``). The builder,
the reason catalogue and the segment rules read names only through these
functions, so the grammar lives here and nowhere else.
"""

from __future__ import annotations

import re

__all__ = [
    "account_column",
    "account_feature_name",
    "feature_name",
    "level_token",
    "split_window",
    "statement_extra",
    "transaction_extra",
    "velocity_windows",
    "window_days",
]

_TRAILING_WINDOW = re.compile(r"_(?P<days>\d+)d(?:_(?P<long>\d+)d)?$")
_ANY_WINDOW = re.compile(r"_(\d+)d(?=_|$)")
_EXTRA = re.compile(
    r"^stmt_extra_(?P<column>.+?)_(?P<stat>last|prev|change|mean|min|max|count_[0-9a-z]+)(?:_(?P<days>\d+)d)?$"
)
_TXN_EXTRA = re.compile(r"^txn_extra_(?P<column>.+?)_(?P<stat>sum|mean|count_[0-9a-z]+)_(?P<days>\d+)d$")
_VELOCITY = re.compile(r"^txn_amount_velocity_(\d+)d_(\d+)d$")


def feature_name(prefix: str, stem: str, window_label: str | None = None) -> str:
    """``<prefix>_<stem>`` and ``_<window>`` when windowed."""
    return f"{prefix}_{stem}_{window_label}" if window_label else f"{prefix}_{stem}"


def window_days(name: str) -> list[int]:
    """Every window length (days) a name mentions: ``[30, 90]`` for ``txn_amount_velocity_30d_90d``."""
    return [int(d) for d in _ANY_WINDOW.findall(name)]


def split_window(name: str) -> tuple[str, int | None]:
    """The name without its trailing window(s), and the (first) window in days; ``None`` when unwindowed.

    >>> split_window("stmt_dpd_max_90d")
    ('stmt_dpd_max', 90)
    >>> split_window("txn_amount_velocity_30d_90d")
    ('txn_amount_velocity', 30)
    >>> split_window("acct_credit_limit")
    ('acct_credit_limit', None)
    """
    match = _TRAILING_WINDOW.search(name)
    if match is None:
        return name, None
    return name[: match.start()], int(match["days"])


def statement_extra(name: str) -> tuple[str, str] | None:
    """``(column, statistic)`` of a ``stmt_extra_*`` feature, else None.

    >>> statement_extra("stmt_extra_pay_status_mean_90d")
    ('pay_status', 'mean')
    >>> statement_extra("stmt_extra_status_code_count_late_90d")  # statements whose code was "late"
    ('status_code', 'count_late')
    """
    match = _EXTRA.match(name)
    return (match["column"], match["stat"]) if match else None


def transaction_extra(name: str) -> tuple[str, str] | None:
    """``(column, statistic)`` of a ``txn_extra_*`` feature (a lender's own transaction field), else None.

    >>> transaction_extra("txn_extra_fee_sum_30d")
    ('fee', 'sum')
    >>> transaction_extra("txn_extra_entry_mode_count_chip_90d")
    ('entry_mode', 'count_chip')
    """
    match = _TXN_EXTRA.match(name)
    return (match["column"], match["stat"]) if match else None


def velocity_windows(name: str) -> tuple[int, int] | None:
    """``(short, long)`` windows in days of a spending-velocity feature, else None."""
    match = _VELOCITY.match(name)
    return (int(match[1]), int(match[2])) if match else None


def level_token(level: object) -> str:
    """A level of a lender's code as a name part: lower case letters and digits (``-1`` reads ``m1``)."""
    text = re.sub(r"^-(?=\d)", "m", str(level).strip().lower())
    token = re.sub(r"[^0-9a-z]+", "", text) or "blank"
    return "l" + token if re.fullmatch(r"\d+d", token) else token


def account_feature_name(column: str) -> str:
    """``acct_`` plus the column name in lower snake case."""
    return "acct_" + re.sub(r"[^0-9a-z]+", "_", str(column).lower()).strip("_")


def account_column(name: str) -> str | None:
    """The (snake-cased) account column behind an ``acct_`` feature, else None."""
    return name[5:] if name.startswith("acct_") else None
