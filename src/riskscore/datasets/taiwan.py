"""The UCI "default of credit card clients" data (Taiwan, 2005) as event tables."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from riskscore.data import EventData
from riskscore.errors import DataValidationError, Problem

__all__ = ["TAIWAN_PROTECTED", "load_taiwan"]


_TAIWAN_MONTHS = ("2005-09-30", "2005-08-31", "2005-07-31", "2005-06-30", "2005-05-31", "2005-04-30")
_TAIWAN_STATUS = ("PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6")
TAIWAN_PROTECTED: tuple[str, ...] = ("sex", "education", "marriage", "age")


def load_taiwan(csv_path: str | os.PathLike[str]) -> tuple[EventData, pd.Series]:
    """The UCI "default of credit card clients" data (Taiwan, 2005) as event tables.

    Mapping (see the data's ``SOURCE.md`` for the oddities):

    * ``accounts``: ``account_id`` = ``ID``; ``credit_limit`` = ``LIMIT_BAL``;
      ``product`` = ``"card"``; ``SEX``, ``EDUCATION``, ``MARRIAGE`` and ``AGE``
      kept with their raw codes as ``sex``, ``education``, ``marriage``, ``age``
      and marked protected (``events.protected``): never features. The data has
      no account dates, so ``open_date`` is 2005-04-01, the first day the data
      covers.
    * ``statements``: six per account, ``statement_date`` the last day of each
      month April–September 2005 (month index k = 1 is September, 6 is April);
      ``balance`` = ``BILL_AMTk`` (negative = credit balance); ``payment`` =
      ``PAY_AMTk``, the amount paid during month k, which settles the previous
      month's bill ``BILL_AMT(k+1)`` (oddity 7), exactly the contract's meaning of
      ``payment`` (paid during the cycle ending at ``statement_date``, against the
      previous balance); ``dpd`` = 30 × months of delay for status 1..9 and 0 for
      -2, -1 and 0; the raw status in ``pay_status`` (categories -2, -1, 0 are
      not an ordinal scale, and month 1 seems coded differently from months 2-6).
    * ``target``: ``default payment next month`` (October 2005) as an ``int64``
      Series named ``default_next_month``, indexed by ``account_id``.

    Parameters
    ----------
    csv_path : path
        The CSV with the real column names as its header (``ID, LIMIT_BAL, ...``).

    Returns
    -------
    events : EventData
    target : Series

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataValidationError
        If columns are missing or values are not the expected codes.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"Taiwan credit-card CSV not found: {path}")
    raw = pd.read_csv(path)
    needed = ["ID", "LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "default payment next month"]
    needed += list(_TAIWAN_STATUS) + [f"BILL_AMT{k}" for k in range(1, 7)] + [f"PAY_AMT{k}" for k in range(1, 7)]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise DataValidationError(
            [Problem("taiwan", str(missing[0]), "required_column", f"required columns are missing: {missing}")]
        )
    status = raw[list(_TAIWAN_STATUS)].to_numpy()
    if not np.isin(status, np.arange(-2, 10)).all():
        bad = status[~np.isin(status, np.arange(-2, 10))][0]
        raise DataValidationError(
            [Problem("taiwan", "PAY_0", "status_code", f"repayment status must be -2..9; got {bad}")]
        )
    n = len(raw)
    ids = raw["ID"].to_numpy()
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "open_date": pd.Timestamp("2005-04-01"),
            "credit_limit": raw["LIMIT_BAL"].astype("float64"),
            "product": "card",
            "sex": raw["SEX"].to_numpy(),
            "education": raw["EDUCATION"].to_numpy(),
            "marriage": raw["MARRIAGE"].to_numpy(),
            "age": raw["AGE"].to_numpy(),
        }
    )
    parts = []
    for k in range(1, 7):
        code = raw[_TAIWAN_STATUS[k - 1]].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "account_id": ids,
                    "statement_date": np.full(n, np.datetime64(_TAIWAN_MONTHS[k - 1], "ns")),
                    "balance": raw[f"BILL_AMT{k}"].astype("float64"),
                    "payment": raw[f"PAY_AMT{k}"].astype("float64"),
                    "dpd": np.where(code > 0, 30 * code, 0).astype(np.int64),
                    "pay_status": code.astype(np.int64),
                }
            )
        )
    statements = pd.concat(parts, ignore_index=True)
    events = EventData(accounts=accounts, statements=statements, protected=TAIWAN_PROTECTED)
    target = pd.Series(
        raw["default payment next month"].to_numpy(dtype=np.int64),
        index=pd.Index(ids, name="account_id"),
        name="default_next_month",
    )
    return events, target
