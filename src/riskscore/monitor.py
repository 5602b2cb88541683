"""Monitoring a model in production: population stability and collection KPIs.

``psi`` compares a distribution now (``actual``) with the one the model was
built on (``expected``): bins are quantiles of the expected sample (categories
for text or categorical data, and a bin of their own for missing values), and
bin shares are smoothed (``smoothing`` counts added to every bin) so an empty
bin never gives an infinite index. Common reading: below 0.10 stable, 0.10 to
0.25 a shift worth a look, above 0.25 a shift that needs action.

``stability`` does it per feature (characteristic stability),
``reason_stability`` for the frequencies of reason codes, and the collection
KPIs read the event tables: ``dpd_buckets`` and ``roll_rates`` (transitions
between days-past-due buckets month to month), ``cure_rate`` and
``contact_kpis`` (contact, connect and opt-out rates per month).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "BUCKETS",
    "contact_kpis",
    "cure_rate",
    "dpd_buckets",
    "psi",
    "psi_level",
    "reason_stability",
    "roll_rates",
    "stability",
]

PSI_LEVELS: tuple[float, float] = (0.10, 0.25)
"""Below the first: ``stable``; below the second: ``watch``; else ``shift``."""

BUCKETS: dict[str, tuple[int, int]] = {
    "current": (0, 0),
    "1-29": (1, 29),
    "30-59": (30, 59),
    "60-89": (60, 89),
    "90+": (90, 10**9),
}
"""Days-past-due buckets (US Metro 2 style with an early 1-29 bucket); pass others as a dict."""


def _bins(expected: pd.Series, actual: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Counts per bin of both samples and the bin labels."""
    categorical = (
        isinstance(expected.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(expected.dtype)
        or pd.api.types.is_string_dtype(expected.dtype)
        or pd.api.types.is_bool_dtype(expected.dtype)
    )
    if categorical:
        levels = sorted({str(v) for v in pd.concat([expected, actual]).dropna()})
        e = expected.dropna().astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
        a = actual.dropna().astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
        labels = levels
    else:
        ev = expected.to_numpy(dtype=np.float64, na_value=np.nan)
        av = actual.to_numpy(dtype=np.float64, na_value=np.nan)
        known = ev[~np.isnan(ev)]
        if len(known):
            inner = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1], method="linear"))
        else:
            inner = np.array([])
        edges = np.concatenate([[-np.inf], inner, [np.inf]])
        # Bins are (edge_i, edge_i+1]: a value equal to a quantile falls in the lower bin.
        e = np.bincount(np.searchsorted(edges, ev[~np.isnan(ev)], side="left") - 1, minlength=len(edges) - 1)
        a = np.bincount(np.searchsorted(edges, av[~np.isnan(av)], side="left") - 1, minlength=len(edges) - 1)
        e, a = e[: len(edges) - 1], a[: len(edges) - 1]
        labels = [f"({lo:.6g}, {hi:.6g}]" for lo, hi in itertools.pairwise(edges)]
    e_missing, a_missing = int(expected.isna().sum()), int(actual.isna().sum())
    if e_missing or a_missing:
        e, a = np.append(e, e_missing), np.append(a, a_missing)
        labels = [*labels, "missing"]
    return np.asarray(e, dtype=np.float64), np.asarray(a, dtype=np.float64), labels


def psi(
    expected: Any, actual: Any, bins: int = 10, smoothing: float = 0.5, return_table: bool = False
) -> float | pd.DataFrame:
    """Population stability index of ``actual`` against ``expected``.

    Parameters
    ----------
    expected, actual : array-like
        Numbers (binned at the quantiles of ``expected``) or labels (one bin
        per label); missing values form a bin of their own.
    bins : int, default=10
        Quantile bins (fewer when the expected sample has ties).
    smoothing : float, default=0.5
        Added to every bin's count in both samples before taking shares, so an
        empty bin gives a finite index.
    return_table : bool, default=False
        Return the per-bin table (counts, shares, contributions) instead.

    Returns
    -------
    float or DataFrame
        ``sum((a - e) * ln(a / e))`` over bins of the smoothed shares.

    Examples
    --------
    >>> round(psi([1, 2, 3, 4], [1, 2, 3, 4], bins=2), 6)
    0.0
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a whole number >= 1; got {bins!r}")
    if smoothing <= 0:
        raise ValueError(f"smoothing must be > 0 (it keeps empty bins finite); got {smoothing!r}")
    e_series, a_series = pd.Series(expected), pd.Series(actual)
    if e_series.notna().sum() + e_series.isna().sum() == 0 or len(a_series) == 0:
        raise ValueError("psi needs values in both samples")
    e, a, labels = _bins(e_series, a_series, int(bins))
    e_share = (e + smoothing) / (e.sum() + smoothing * len(e))
    a_share = (a + smoothing) / (a.sum() + smoothing * len(a))
    contribution = (a_share - e_share) * np.log(a_share / e_share)
    if return_table:
        return pd.DataFrame(
            {
                "expected": e.astype(np.int64),
                "actual": a.astype(np.int64),
                "expected_share": e_share,
                "actual_share": a_share,
                "psi": contribution,
            },
            index=pd.Index(labels, name="bin"),
        )
    return float(contribution.sum())


def stability(expected: pd.DataFrame, actual: pd.DataFrame, bins: int = 10, smoothing: float = 0.5) -> pd.DataFrame:
    """Characteristic stability: the PSI of every feature both frames share, largest first.

    Returns
    -------
    DataFrame
        Indexed by feature: ``psi``, ``expected_missing``, ``actual_missing``
        (shares of missing values), ``level`` (``stable`` < 0.10 <= ``watch``
        < 0.25 <= ``shift``).
    """
    shared = [c for c in expected.columns if c in actual.columns]
    if not shared:
        raise ValueError("the two frames share no column")
    rows = []
    for col in shared:
        value = psi(expected[col], actual[col], bins=bins, smoothing=smoothing)
        rows.append(
            {
                "feature": col,
                "psi": value,
                "expected_missing": float(expected[col].isna().mean()),
                "actual_missing": float(actual[col].isna().mean()),
            }
        )
    out = pd.DataFrame(rows).set_index("feature")
    out["level"] = pd.Categorical(out["psi"].map(psi_level), categories=["stable", "watch", "shift"])
    return out.sort_values("psi", ascending=False, kind="stable")


def psi_level(value: float) -> str:
    """``stable`` (PSI below 0.10), ``watch`` (below 0.25) or ``shift``: the usual reading of a PSI."""
    low, high = PSI_LEVELS
    return "stable" if value < low else "watch" if value < high else "shift"


def reason_stability(
    expected: pd.DataFrame, actual: pd.DataFrame, rank: int | None = 1, smoothing: float = 0.5
) -> pd.DataFrame:
    """How the frequencies of reason codes moved, from two ``reason_codes()`` tables.

    ``rank=1`` compares the leading reasons; ``None`` every reason shown.
    Returns the per-reason table of :func:`psi` (shares and contributions);
    ``out.attrs["psi"]`` holds the total.
    """
    if rank is not None:
        expected, actual = expected[expected["rank"] == rank], actual[actual["rank"] == rank]
    table = psi(expected["reason_code"], actual["reason_code"], smoothing=smoothing, return_table=True)
    assert isinstance(table, pd.DataFrame)
    table.index.name = "reason_code"
    table.attrs["psi"] = float(table["psi"].sum())
    return table.sort_values("psi", ascending=False, kind="stable")


def dpd_buckets(events: Any, dates: Any, buckets: dict[str, tuple[int, int]] | None = None) -> pd.DataFrame:
    """The days-past-due bucket of every open account at each date (the scoring grid's status).

    Returns
    -------
    DataFrame
        ``account_id``, ``as_of``, ``dpd``, ``bucket`` (categorical, in bucket order).
    """
    from riskscore.features.status import dpd_at, sorted_context
    from riskscore.labels import observation_dates

    buckets = dict(BUCKETS if buckets is None else buckets)
    frames = []
    for day in pd.DatetimeIndex(dates):
        obs = observation_dates(events, freq="D", start=day, end=day, eligible="all")
        frames.append(obs[["account_id", "as_of"]])
    grid = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["account_id", "as_of"])
    if grid.empty:
        return grid.assign(dpd=pd.Series(dtype=float), bucket=pd.Categorical([], categories=list(buckets)))
    from riskscore.features.engine import account_codes

    code = account_codes(events.accounts["account_id"], grid["account_id"])
    as_of = grid["as_of"].to_numpy(dtype="datetime64[ns]")
    ctx = sorted_context(events, code, as_of)
    dpd = np.empty(len(grid))
    dpd[ctx.obs.order] = dpd_at(ctx)
    grid["dpd"] = dpd
    label = np.full(len(grid), None, dtype=object)
    for name, (lo, hi) in buckets.items():
        label[(dpd >= lo) & (dpd <= hi)] = name
    if pd.isna(label).any():
        raise ValueError(f"buckets {buckets} do not cover every dpd value (e.g. {dpd[pd.isna(label)][:3]})")
    grid["bucket"] = pd.Categorical(label, categories=list(buckets))
    return grid


def roll_rates(events: Any, start: Any, end: Any, buckets: dict[str, tuple[int, int]] | None = None) -> pd.DataFrame:
    """Month-to-month transitions between dpd buckets, from ``start`` to ``end`` (month starts).

    Returns
    -------
    DataFrame
        Rows: the bucket at a month start; columns: the bucket a month later
        (accounts open at both dates); values: shares of the row (each row sums
        to 1); ``out.attrs["counts"]`` holds the counts.
    """
    dates = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="MS")
    if len(dates) < 2:
        raise ValueError(f"roll rates need at least two month starts from {start} to {end}")
    status = dpd_buckets(events, dates, buckets)
    nxt = status.assign(as_of=status["as_of"] - pd.DateOffset(months=1))
    pairs = status.merge(nxt, on=["account_id", "as_of"], suffixes=("", "_next"))
    counts = pd.crosstab(pairs["bucket"], pairs["bucket_next"], dropna=False)
    rates = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
    rates.attrs["counts"] = counts
    return rates


def cure_rate(
    events: Any, start: Any, end: Any, months: int = 3, buckets: dict[str, tuple[int, int]] | None = None
) -> pd.Series:
    """Share of accounts in each delinquent bucket at a month start that are current ``months`` later."""
    dates = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="MS")
    later = dates + pd.DateOffset(months=months)
    status = dpd_buckets(events, dates.append(later).unique(), buckets)
    now = status[status["as_of"].isin(dates)]
    then = status.assign(as_of=status["as_of"] - pd.DateOffset(months=months))
    pairs = now.merge(then, on=["account_id", "as_of"], suffixes=("", "_later"))
    first = pairs["bucket"].cat.categories[0]
    pairs = pairs[pairs["bucket"] != first]
    cured = (pairs["bucket_later"] == first).groupby(pairs["bucket"], observed=False).mean()
    cured.name = f"cure_rate_{months}m"
    return cured.drop(first, errors="ignore")


def contact_kpis(events: Any, start: Any, end: Any) -> pd.DataFrame:
    """Per month: accounts open, contacted, attempts, connected, opt-outs and the rates.

    ``contact_rate`` = accounts with an outbound contact / accounts open at the
    month start; ``connect_rate`` = connected / outbound attempts (attempt or
    connected); ``opt_out_rate`` = accounts opting out / accounts contacted.
    """
    contacts = events.contacts
    if contacts is None:
        raise ValueError("contact KPIs need the contacts table")
    months = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="MS")
    rows = []
    from riskscore.labels import observation_dates

    for month in months:
        nxt = month + pd.DateOffset(months=1)
        inside = contacts[(contacts["timestamp"] >= month) & (contacts["timestamp"] < nxt)]
        outcome = inside["outcome"].astype(str)
        direction = (
            inside["direction"].astype(str)
            if "direction" in inside.columns
            else pd.Series("outbound", index=inside.index)
        )
        outbound = outcome.isin(["attempt", "connected"]) & (direction != "inbound")
        open_now = len(observation_dates(events, freq="D", start=month, end=month, eligible="all"))
        contacted = inside.loc[outbound, "account_id"].nunique()
        attempts = int(outbound.sum())
        connected = int((outbound & (outcome == "connected")).sum())
        opted = inside.loc[outcome == "opt_out", "account_id"].nunique()
        rows.append(
            {
                "month": month,
                "accounts_open": open_now,
                "accounts_contacted": contacted,
                "attempts": attempts,
                "connected": connected,
                "opt_outs": opted,
                "contact_rate": contacted / open_now if open_now else np.nan,
                "connect_rate": connected / attempts if attempts else np.nan,
                "opt_out_rate": opted / contacted if contacted else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("month")
