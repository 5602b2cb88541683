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


def test_customer_id_is_never_a_feature_and_changes_no_account_feature(sample_xy: dict[str, Any]) -> None:
    """Issue #13, item 3: without customer_id the matrix is the per-account one; with it only cust_ columns join."""
    events = sample_xy["events"]
    plain_accounts = events.accounts.drop(columns="customer_id", errors="ignore")
    plain = rs.EventData(**{**events.tables, "accounts": plain_accounts}, protected=events.protected)
    # Pairs of accounts in the same time zone share a customer.
    rank = plain_accounts.groupby("timezone", observed=True, dropna=False).cumcount().to_numpy()
    zone = pd.factorize(plain_accounts["timezone"])[0]
    accounts = plain_accounts.assign(customer_id=[f"c{z}-{r // 2}" for z, r in zip(zone, rank, strict=True)])
    with_customers = rs.EventData(**{**events.tables, "accounts": accounts}, protected=events.protected)
    obs = rs.observation_dates(plain, start="2024-03-01", end="2024-06-01")
    alone = rs.FeatureBuilder().fit(plain)
    assert "customer" not in alone.families_
    X = alone.transform(plain, obs)
    assert not any(c.startswith("cust_") for c in X.columns)
    shared = rs.FeatureBuilder().fit(with_customers)
    Y = shared.transform(with_customers, obs)
    assert "customer_id" not in " ".join(Y.columns) and "customer" in shared.families_
    own = [c for c in Y.columns if not c.startswith("cust_")]
    assert own == list(X.columns)
    pd.testing.assert_frame_equal(X, Y[own])  # bit for bit
    assert Y["cust_other_accounts"].max() == 1
    with pytest.raises(rs.DataValidationError, match=r"accounts\.customer_id: the fitted builder uses it"):
        shared.transform(plain, obs)


def _family_case(**edits: Any) -> tuple[rs.EventData, pd.DataFrame]:
    """Customer 7: card 1 (scored) and loan 2; customer 8: card 3 alone. Scored at 2024-06-01."""
    accounts = pd.DataFrame(
        {
            "account_id": [1, 2, 3],
            "customer_id": [7, 7, 8],
            "open_date": ["2023-01-01", "2023-01-01", "2024-05-20"],
            "credit_limit": [1000.0, 6000.0, 500.0],
            "product": ["card", "loan", "card"],
        }
    )
    months = pd.to_datetime([f"2024-0{m}-05" for m in range(1, 7)])
    statements = pd.DataFrame(
        {
            "account_id": [1] * 6 + [3],
            "statement_date": [*months, pd.Timestamp("2024-05-28")],
            "balance": [500.0] * 6 + [100.0],
            "payment": [100.0] * 6 + [0.0],
            "dpd": [0] * 7,
        }
    )
    due = pd.to_datetime([f"2024-0{m}-19" for m in range(1, 7)])
    paid = list(due)
    amount_paid = [250.0] * 6
    for k, (day, value) in edits.get("loan", {}).items():
        paid[k], amount_paid[k] = day, value
    installments = pd.DataFrame(
        {"account_id": 2, "due_date": due, "amount_due": 250.0, "paid_date": paid, "amount_paid": amount_paid}
    )
    events = rs.EventData(accounts=accounts, statements=statements, installments=installments)
    obs = pd.DataFrame({"account_id": [1, 2, 3], "as_of": pd.Timestamp("2024-06-01")})
    return events, obs


def test_the_customer_family_reads_the_other_accounts_before_as_of() -> None:
    events, obs = _family_case()
    builder = rs.FeatureBuilder().fit(events)
    X = builder.transform(events, obs).droplevel("as_of")
    assert X.loc[1, "cust_other_accounts"] == 1 and X.loc[3, "cust_other_accounts"] == 0
    assert X.loc[1, "cust_dpd_now_max"] == 0 and np.isnan(X.loc[3, "cust_dpd_now_max"])
    assert X.loc[1, "cust_late_count_90d"] == 0
    # Loan instalments due 2024-01-19 ... 2024-05-19, paid on time, 250 each: March to May in the 90 days.
    assert X.loc[1, "cust_paid_90d"] == 750.0 and X.loc[1, "cust_paid_365d"] == 1250.0
    # The loan's view of the card: its balance over its limit.
    assert X.loc[2, "cust_card_util"] == pytest.approx(0.5)
    # The May instalment unpaid at as_of: 13 days past due on the other account, one missed payment.
    late, _ = _family_case(loan={4: (pd.NaT, 0.0)})
    Y = builder.transform(late, obs).droplevel("as_of")
    assert Y.loc[1, "cust_dpd_now_max"] == 13 and Y.loc[1, "cust_late_count_90d"] == 1
    assert Y.loc[1, "cust_dpd_max_30d"] == 13 and Y.loc[1, "cust_paid_90d"] == 500.0
    own = [c for c in X.columns if not c.startswith("cust_")]
    pd.testing.assert_series_equal(X.loc[1, own], Y.loc[1, own])  # the card's own features did not move
    # Paid late but before as_of: late, no longer open; paid only after as_of: unpaid at as_of (not the future).
    paid_late, _ = _family_case(loan={4: (pd.Timestamp("2024-05-25"), 250.0)})
    Z = builder.transform(paid_late, obs).droplevel("as_of")
    assert Z.loc[1, "cust_late_count_90d"] == 1 and Z.loc[1, "cust_dpd_now_max"] == 0
    assert Z.loc[1, "cust_dpd_max_30d"] == 6
    after, _ = _family_case(loan={4: (pd.Timestamp("2024-06-03"), 250.0)})
    pd.testing.assert_frame_equal(builder.transform(after, obs), builder.transform(late, obs))
    # An account opened on or after as_of is not known yet: card 3 joins customer 7, opened 2024-05-20.
    joined = rs.EventData(**{**events.tables, "accounts": events.accounts.assign(customer_id=[7, 7, 7])})
    days = pd.DataFrame({"account_id": 1, "as_of": pd.to_datetime(["2024-05-20", "2024-05-21"])})
    W = builder.transform(joined, days)
    assert W["cust_other_accounts"].tolist() == [1, 2] and W["cust_opened_90d"].tolist() == [0, 1]


def test_the_customer_family_has_reasons_in_both_languages() -> None:
    events, obs = _family_case(loan={4: (pd.NaT, 0.0)})
    builder = rs.FeatureBuilder().fit(events)
    X = builder.transform(events, obs)
    from riskscore.reasons import load_reason_catalogue

    catalogue = load_reason_catalogue()
    for feature, group in builder.catalogue_.loc[builder.catalogue_.family == "customer", "group"].items():
        code = catalogue.reason_for(str(feature), str(group))
        assert code in {"OTHER_DLQ", "OTHER_ACCOUNTS", "OTHER_UTIL", "OTHER_PAY"}
        assert catalogue.what(str(feature), None, "zh") != feature  # a Chinese text for every stem
    contributions = pd.DataFrame(0.0, index=X.index, columns=X.columns)
    contributions["cust_dpd_now_max"] = 0.9
    explanation = rs.Explanation(values=contributions, base_value=-3.0, margin=contributions.sum(axis=1) - 3.0,
                                 data=X, catalogue=builder.catalogue_)  # fmt: skip
    en = explanation.reason_codes(top=1, lang="en")
    zh = explanation.reason_codes(top=1, lang="zh")
    assert en["reason_code"].iloc[0] == "OTHER_DLQ"
    assert en["text"].iloc[0] == "Another account of this customer is 13 days past due"
    assert zh["text"].iloc[0] == "该客户的另一账户已逾期13天"


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


def _spread_customers(n: int, seed: int) -> np.ndarray:
    """Customers of one to three accounts whose ids lie anywhere in the book (far apart in id order)."""
    rng = np.random.default_rng(seed)
    customer = np.arange(n)
    pairs = rng.permutation(n)[: n // 2].reshape(-1, 2)
    customer[pairs[:, 1]] = customer[pairs[:, 0]]
    return customer


@pytest.mark.parametrize("kind", ["int", "text"])
def test_batch_chunks_hold_whole_customers_and_read_only_their_rows(kind: str, tmp_path: Any) -> None:
    """Issue #13, item 5: a chunk never splits a customer, on a folder (parquet) as in memory."""
    from riskscore.batch.source import Source

    n = 600
    customer = _spread_customers(n, 1)
    ids = np.arange(n) * 3 + 5
    account_ids: Any = ids if kind == "int" else np.array([f"A{i:05d}" for i in ids], dtype=object)
    accounts = pd.DataFrame(
        {"account_id": account_ids, "open_date": "2024-01-01", "credit_limit": 1000.0, "customer_id": customer}
    )
    statements = pd.DataFrame(
        {
            "account_id": np.repeat(account_ids, 3),
            "statement_date": np.tile(["2024-02-01", "2024-03-01", "2024-04-01"], n),
            "balance": np.arange(3 * n, dtype=float),
            "payment": 0.0,
            "dpd": 0,
        }
    )
    events = rs.EventData(accounts=accounts, statements=statements)
    # Small row groups: the reader must pick the groups of scattered ids, not one range.
    events.to_dir(tmp_path / "events")
    import pyarrow.parquet as pq

    # A folder of parts written by another tool, with small row groups: the reader must pick the groups
    # holding scattered ids, not one range.
    whole = pq.read_table(tmp_path / "events" / "statements.parquet")
    (tmp_path / "events" / "statements.parquet").unlink()
    parts = tmp_path / "events" / "statements.parquet"
    parts.mkdir()
    half = whole.num_rows // 2
    pq.write_table(whole.slice(0, half), parts / "part-0.parquet", row_group_size=50)
    pq.write_table(whole.slice(half), parts / "part-1.parquet", row_group_size=50)
    (tmp_path / "events" / "_eventdata.json").unlink()
    before = Source(tmp_path / "events").fingerprint()  # every part counts
    pq.write_table(whole.slice(half), parts / "part-1.parquet", row_group_size=60)
    assert Source(tmp_path / "events").fingerprint() != before
    owner = dict(zip(account_ids.tolist(), customer.tolist(), strict=True))
    for source in (Source(events), Source(tmp_path / "events")):
        for size in (1, 7, 100, 10_000):
            chunks = source.chunks(size)
            seen = np.concatenate(chunks)
            assert sorted(seen.tolist()) == sorted(account_ids.tolist())  # every account once
            of_chunk = {a: k for k, c in enumerate(chunks) for a in c.tolist()}
            for a, b in zip(account_ids.tolist(), account_ids.tolist()[1:], strict=False):
                if owner[a] == owner[b]:
                    assert of_chunk[a] == of_chunk[b]
            together = [[a for a in account_ids.tolist() if owner[a] == c] for c in set(customer.tolist())]
            assert all(len({of_chunk[a] for a in group}) == 1 for group in together)
            assert all(len(c) >= size for c in chunks[:-1]) and all(len(c) <= size + 2 for c in chunks)
            assert all(list(c) == sorted(c.tolist()) for c in chunks)
        k = len(chunks) // 2
        rows = source.chunk(source.chunks(100)[k])
        want = set(source.chunks(100)[k].tolist())
        assert set(rows["statements"]["account_id"]) == want and len(rows["statements"]) == 3 * len(want)
        expected = statements[statements["account_id"].isin(want)]["balance"].sort_values().to_numpy()
        assert np.array_equal(np.sort(rows["statements"]["balance"].to_numpy(dtype=float)), expected)
    plain = Source(rs.EventData(accounts=accounts.drop(columns="customer_id"), statements=statements))
    assert [c.tolist() for c in plain.chunks(250)] == [
        np.sort(account_ids)[i : i + 250].tolist() for i in range(0, n, 250)
    ]  # without customers: runs of consecutive ids, as before
