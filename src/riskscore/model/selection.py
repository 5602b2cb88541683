"""Cross-validation over time: train on earlier ``as_of`` dates, test on later ones, a label horizon apart.

scikit-learn's ``TimeSeriesSplit`` splits rows, not dates, and knows no label
horizon: an observation's target looks ``horizon`` days ahead, so a training
row dated within ``horizon`` of the test period has seen part of the test
period's outcomes. :class:`AsOfSplit` splits the distinct ``as_of`` dates into
``n_splits + 1`` consecutive blocks; fold ``k`` tests on block ``k`` and trains
on every date at least ``gap`` before the block's first date.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["AsOfSplit"]


class AsOfSplit:
    """A scikit-learn splitter over the ``as_of`` level: expanding training window, a gap of the label horizon.

    Parameters
    ----------
    n_splits : int, default=5
        Folds; the dates are cut into ``n_splits + 1`` consecutive blocks.
    gap : str or Timedelta, default="90D"
        Least time between a training ``as_of`` and the first test ``as_of``:
        the label horizon, so no training label window reaches into the test
        period.

    Examples
    --------
    >>> import pandas as pd
    >>> idx = pd.MultiIndex.from_product([[1, 2], pd.date_range("2024-01-01", periods=12, freq="MS")],
    ...                                  names=["account_id", "as_of"])
    >>> X = pd.DataFrame({"x": range(24)}, index=idx)
    >>> [(len(a), len(b)) for a, b in AsOfSplit(n_splits=3, gap="90D").split(X)]
    [(2, 6), (8, 6), (14, 6)]
    """

    def __init__(self, n_splits: int = 5, gap: str | pd.Timedelta = "90D") -> None:
        self.n_splits = n_splits
        self.gap = gap

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds."""
        return int(self.n_splits)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Positions of the training and test rows of each fold.

        The dates come from ``X``'s ``as_of`` index level, or from ``groups``
        (one date per row) when ``X`` has none.
        """
        if isinstance(self.n_splits, bool) or not isinstance(self.n_splits, (int, np.integer)) or self.n_splits < 2:
            raise ValueError(f"n_splits must be a whole number >= 2; got {self.n_splits!r}")
        try:
            gap: pd.Timedelta | None = pd.Timedelta(self.gap)
        except (TypeError, ValueError):
            gap = None
        if gap is None or pd.isna(gap) or gap < pd.Timedelta(0):
            raise ValueError(f"gap must be a duration of zero or more such as '90D'; got {self.gap!r}")
        dates = _dates(X, groups)
        unique = np.unique(dates)
        if len(unique) < self.n_splits + 1:
            raise ValueError(
                f"AsOfSplit(n_splits={self.n_splits}) needs at least {self.n_splits + 1} distinct as_of dates; "
                f"the data has {len(unique)}"
            )
        blocks = np.array_split(unique, self.n_splits + 1)
        rows = np.arange(len(dates))
        for k, block in enumerate(blocks[1:], start=1):
            train = rows[dates <= block[0] - gap.to_timedelta64()]
            if not len(train):
                raise ValueError(
                    f"AsOfSplit fold {k} tests from {pd.Timestamp(block[0]).date()} and no as_of lies {gap.days} days "
                    "or more before it: use fewer splits, a shorter gap, or more dates"
                )
            test = rows[(dates >= block[0]) & (dates <= block[-1])]
            yield train, test


def _dates(X: Any, groups: Any) -> np.ndarray:
    index = getattr(X, "index", None)
    if isinstance(index, pd.MultiIndex) and "as_of" in (index.names or []):
        return np.asarray(index.get_level_values("as_of"), dtype="datetime64[ns]")
    if groups is not None:
        values = pd.to_datetime(pd.Series(np.asarray(groups)), errors="coerce")
        if values.isna().any():
            raise ValueError("AsOfSplit: groups must be one date per row (the as_of of each observation)")
        return values.to_numpy(dtype="datetime64[ns]")
    raise ValueError(
        "AsOfSplit needs the as_of of each row: X indexed by (account_id, as_of), as FeatureBuilder gives it, "
        "or groups=the as_of dates"
    )
