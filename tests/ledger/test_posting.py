"""Posting: balanced entries or nothing, exactly once per idempotency key, and balances that are
the sums of the entries."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from marketplace.ledger.accounts import escrow_account, member_account
from marketplace.ledger.models import LedgerAccount, LedgerTransaction
from marketplace.ledger.posting import Entry, IdempotencyConflict, LedgerError, balance, post

FUND = [Entry("stripe:balance", -5000, "usd"), Entry("escrow:problem:1", 5000, "usd")]


def test_replaying_a_key_with_the_same_content_returns_the_same_transaction(app, session):
    first = post(session, "fund", "test:1", FUND, reference="pi_1", memo="first")
    session.commit()
    again = post(session, "fund", "test:1", list(reversed(FUND)), reference="pi_1", memo="another memo")
    session.commit()
    assert first.created and not again.created
    assert again.transaction_id == first.transaction_id
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
    assert balance(session, "escrow:problem:1", "usd") == 5000


@pytest.mark.parametrize(
    "changed",
    [
        {"entries": [Entry("stripe:balance", -5001, "usd"), Entry("escrow:problem:1", 5001, "usd")]},
        {"entries": [Entry("stripe:balance", -5000, "usd"), Entry("escrow:problem:2", 5000, "usd")]},
        {"entries": [Entry("stripe:balance", -5000, "eur"), Entry("escrow:problem:1", 5000, "eur")]},
        {"kind": "refund"},
        {"reference": "pi_2"},
        {"problem_id": 1},
    ],
    ids=["amount", "account", "currency", "kind", "reference", "link"],
)
def test_replaying_a_key_with_other_content_is_a_conflict_and_changes_nothing(app, session, changed):
    post(session, "fund", "test:1", FUND, reference="pi_1")
    session.commit()
    arguments = {"kind": "fund", "entries": FUND, "reference": "pi_1"} | changed
    kind, entries = arguments.pop("kind"), arguments.pop("entries")
    with pytest.raises(IdempotencyConflict) as refused:
        post(session, kind, "test:1", entries, **arguments)
    session.rollback()
    assert (refused.value.status, refused.value.code) == (409, "idempotency_conflict")
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
    assert balance(session, "escrow:problem:1", "usd") == 5000


@pytest.mark.parametrize(
    ("kind", "entries", "message"),
    [
        ("fund", [Entry("stripe:balance", -5000, "usd"), Entry("escrow:problem:1", 4999, "usd")], "sum to zero"),
        ("fund", [Entry("stripe:balance", -50.0, "usd"), Entry("escrow:problem:1", 50.0, "usd")], "whole minor units"),
        ("fund", [Entry("stripe:balance", -True, "usd"), Entry("escrow:problem:1", True, "usd")], "whole minor units"),
        ("fund", [Entry("stripe:balance", 0, "usd"), Entry("escrow:problem:1", 0, "usd")], "nonzero"),
        (
            "fund",
            [Entry("stripe:balance", -(2**63), "usd"), Entry("escrow:problem:1", 2**63, "usd")],
            "whole minor units",
        ),
        ("fund", [Entry("stripe:balance", -5, "usd"), Entry("escrow:problem:x", 5, "usd")], "Unknown ledger account"),
        ("fund", [Entry("stripe:balance", -5, "usd"), Entry("member:3:spent", 5, "usd")], "Unknown ledger account"),
        ("fund", [Entry("stripe:balance", -5, "xyz"), Entry("escrow:problem:1", 5, "xyz")], "Unknown currency"),
        ("gift", FUND, "Unknown ledger transaction kind"),
        ("fund", [], "needs entries"),
    ],
    ids=["unbalanced", "float", "bool", "zero", "too-large", "bad-id", "bad-bucket", "currency", "kind", "empty"],
)
def test_the_service_refuses_what_is_not_a_balanced_transaction(app, session, kind, entries, message):
    with pytest.raises(LedgerError, match=message):
        post(session, kind, "test:bad", entries)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0


def test_a_transaction_balances_per_currency_not_in_total(app, session):
    with pytest.raises(LedgerError, match="sum to zero"):
        post(
            session,
            "fund",
            "test:fx",
            [Entry("stripe:balance", -100, "usd"), Entry("escrow:problem:1", 100, "eur")],
        )
    session.rollback()
    two_currencies = [
        Entry("stripe:balance", -100, "usd"),
        Entry("escrow:problem:1", 100, "usd"),
        Entry("stripe:balance", -90, "eur"),
        Entry("escrow:problem:1", 90, "eur"),
    ]
    post(session, "fund", "test:fx", two_currencies)
    session.commit()
    assert (balance(session, "escrow:problem:1", "usd"), balance(session, "escrow:problem:1", "eur")) == (100, 90)


@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=8),
    data=st.data(),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_balances_are_the_sums_of_the_entries(app, session, amounts, data):
    """Any balanced transfers between a few accounts: each balance moves by exactly what was
    posted to it, each account is opened once, and all balances together stay zero."""
    codes = ["stripe:balance", "platform:fees", member_account(1, "available"), escrow_account(7)]
    before = {code: balance(session, code, "usd") for code in codes}
    moved = dict.fromkeys(codes, 0)
    for amount in amounts:
        source, target = data.draw(st.lists(st.sampled_from(codes), min_size=2, max_size=2, unique=True))
        key = f"prop:{session.scalar(select(func.count()).select_from(LedgerTransaction))}"
        post(session, "donation", key, [Entry(source, -amount, "usd"), Entry(target, amount, "usd")])
        moved[source] -= amount
        moved[target] += amount
    session.commit()
    after = {code: balance(session, code, "usd") for code in codes}
    assert {code: after[code] - before[code] for code in codes} == moved
    assert sum(after.values()) == 0
    assert session.scalar(select(func.count()).select_from(LedgerAccount)) <= len(codes)
    session.commit()
