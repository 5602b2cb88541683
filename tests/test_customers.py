"""Issue #13, first part: the data contract knows the customer behind the accounts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import riskscore as rs
from tests.outreach_cases import make_case, ny


def _accounts(**columns: Any) -> pd.DataFrame:
    base = {"account_id": [1, 2, 3], "open_date": ["2024-01-01"] * 3, "credit_limit": [1000.0] * 3}
    return pd.DataFrame({**base, **columns})


def _statements() -> pd.DataFrame:
    return pd.DataFrame(
        {"account_id": [1, 2, 3], "statement_date": ["2024-02-01"] * 3, "balance": 1.0, "payment": 0.0, "dpd": 0}
    )


def test_without_customer_id_every_account_is_its_own_customer() -> None:
    events = rs.EventData(accounts=_accounts(), statements=_statements())
    assert events.customers.to_dict() == {1: 1, 2: 2, 3: 3}
    shared = rs.EventData(accounts=_accounts(customer_id=["c1", "c1", "c2"]), statements=_statements())
    assert shared.customers.to_dict() == {1: "c1", 2: "c1", 3: "c2"}


@pytest.mark.parametrize(
    ("customer_id", "message"),
    [
        ([7, "7", 8], r"accounts\.customer_id: customer_id must be all integers or all text"),
        ([7, None, 8], r"accounts\.customer_id: must not be empty"),
        ([7.5, 7.0, 8.0], r"accounts\.customer_id: customer_id must be whole numbers or text"),
        ([2**63, 1, 2], r"accounts\.customer_id: customer_id must fit a signed 64-bit integer"),
    ],
)
def test_customer_ids_are_ids_of_one_kind(customer_id: list[Any], message: str) -> None:
    with pytest.raises(rs.DataValidationError, match=message):
        rs.EventData(accounts=_accounts(customer_id=customer_id), statements=_statements())


def test_a_customers_accounts_must_share_one_time_zone() -> None:
    zones = ["Asia/Shanghai", "Europe/London", "Asia/Shanghai"]
    with pytest.raises(
        rs.DataValidationError,
        match=r"accounts\.timezone: a customer's accounts must share one time zone.*customer_id 9 has "
        r"\['Asia/Shanghai', 'Europe/London'\].*account_id 1, 2\]",
    ):
        rs.EventData(accounts=_accounts(customer_id=[9, 9, 10], timezone=zones), statements=_statements())
    with pytest.raises(rs.DataValidationError, match=r"customer_id 9 has \['\(none\)', 'Asia/Shanghai'\]"):
        rs.EventData(
            accounts=_accounts(customer_id=[9, 9, 10], timezone=["Asia/Shanghai", None, "Europe/London"]),
            statements=_statements(),
        )
    fine = rs.EventData(accounts=_accounts(customer_id=[9, 10, 9], timezone=zones), statements=_statements())
    assert fine.customers.to_dict() == {1: 9, 2: 10, 3: 9}


def test_customer_id_is_never_a_feature_and_changes_no_feature(sample_xy: dict[str, Any]) -> None:
    events = sample_xy["events"]
    accounts = events.accounts
    # Pairs of accounts in the same time zone share a customer.
    rank = accounts.groupby("timezone", observed=True, dropna=False).cumcount().to_numpy()
    zone = pd.factorize(accounts["timezone"])[0]
    accounts = accounts.assign(customer_id=[f"c{z}-{r // 2}" for z, r in zip(zone, rank, strict=True)])
    assert accounts["customer_id"].nunique() < len(accounts)
    with_customers = rs.EventData(**{**events.tables, "accounts": accounts}, protected=events.protected)
    obs = rs.observation_dates(events, start="2024-03-01", end="2024-06-01")
    plain = rs.FeatureBuilder().fit(events).transform(events, obs)
    shared = rs.FeatureBuilder().fit(with_customers).transform(with_customers, obs)
    pd.testing.assert_frame_equal(plain, shared)  # bit for bit


def _with_customers(events: rs.EventData, customers: list[Any] | None, **flags: list[Any]) -> rs.EventData:
    accounts = events.accounts.assign(**flags)
    if customers is not None:
        accounts = accounts.assign(customer_id=customers)
    return rs.EventData(**{**events.tables, "accounts": accounts})


@pytest.mark.parametrize("flag", ["cease", "deceased", "bankrupt", "vulnerable"])
def test_a_flag_on_one_account_applies_to_all_the_customers_accounts(flag: str) -> None:
    scores, expl, events = make_case([{"account_id": 1}, {"account_id": 2}, {"account_id": 3}])
    now = ny("2026-03-04 12:00")
    flagged = {flag: [True, False, False]}
    kw: dict[str, Any] = {"now": now, "control_share": 0.0}
    apart = rs.recommend(scores, expl, _with_customers(events, None, **flagged), "us-regf", **kw)
    together = rs.recommend(scores, expl, _with_customers(events, [7, 7, 8], **flagged), "us-regf", **kw)
    # Without a shared customer only account 1 is held back; with one, account 2 is too, account 3 is not.
    assert apart.set_index("account_id").loc[2, "action"] == "reminder"
    by_account = together.set_index("account_id")
    assert by_account.loc[2, "action"] == by_account.loc[1, "action"] != "reminder"
    assert by_account.loc[2, "blocked"] == by_account.loc[1, "blocked"]
    assert by_account.loc[3, "action"] == "reminder"


def test_a_missing_flag_on_one_account_holds_back_the_customer() -> None:
    scores, expl, events = make_case([{"account_id": 1}, {"account_id": 2}])
    cease = pd.array([pd.NA, False], dtype="boolean")
    together = rs.recommend(scores, expl, _with_customers(events, [7, 7], cease=cease), "us-regf",
                            now=ny("2026-03-04 12:00"))  # fmt: skip
    assert (together["action"] != "reminder").all()


def test_customer_flags_leave_other_values_to_the_rules() -> None:
    from riskscore.outreach.inputs import customer_flags

    accounts = pd.DataFrame({"account_id": [1, 2, 3], "customer_id": [5, 5, 6], "cease": ["yes", "no", "no"]})
    assert customer_flags(accounts) is accounts  # not a flag column: the rules refuse it with their message
    accounts = accounts.assign(cease=[False, True, False], dispute=np.array([False, False, False]))
    spread = customer_flags(accounts)
    assert spread["cease"].tolist() == [True, True, False] and spread["dispute"].tolist() == [False] * 3
