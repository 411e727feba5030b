"""The database itself refuses what the ledger forbids, on the engine under test: raw SQL that
bypasses the ORM and the posting service cannot commit an unbalanced or empty transaction,
entries without their transaction, or any UPDATE or DELETE of entries and transactions."""

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from marketplace.db import db
from marketplace.ledger.models import LedgerEntry, LedgerTransaction

NEW_TRANSACTION = (
    "INSERT INTO ledger_transactions (id, kind, idempotency_key, reference, memo, fingerprint, created_at) "
    "VALUES (:id, 'fund', :key, '', '', 'raw', CURRENT_TIMESTAMP)"
)
NEW_ENTRY = (
    "INSERT INTO ledger_entries (transaction_id, account_id, amount, currency) VALUES (:txn, :account, :amount, 'usd')"
)


def attempt(*statements) -> str | None:
    """Run raw statements in one database transaction; the database's refusal (at a statement or
    at COMMIT), or None if it committed."""
    with db.engine.connect() as connection:
        try:
            with connection.begin():
                for sql, params in statements:
                    connection.execute(text(sql), params)
        except IntegrityError as error:
            return str(error.orig)
    return None


def entry(txn: int, account: int, amount: int):
    return NEW_ENTRY, {"txn": txn, "account": account, "amount": amount}


def transaction(txn: int):
    return NEW_TRANSACTION, {"id": txn, "key": f"raw:{txn}"}


@pytest.fixture
def accounts(app):
    """Two accounts, and one balanced transaction (id 1) written in raw SQL."""
    refused = attempt(
        ("INSERT INTO ledger_accounts (id, code, created_at) VALUES (1, 'stripe:balance', CURRENT_TIMESTAMP)", {}),
        ("INSERT INTO ledger_accounts (id, code, created_at) VALUES (2, 'escrow:problem:1', CURRENT_TIMESTAMP)", {}),
        entry(1, 1, -500),
        entry(1, 2, 500),
        transaction(1),
    )
    assert refused is None, refused
    return 1, 2


def counts(session) -> tuple[int, int]:
    result = (
        session.scalar(select(func.count()).select_from(LedgerTransaction)),
        session.scalar(select(func.count()).select_from(LedgerEntry)),
    )
    session.commit()
    return result


def test_a_balanced_transaction_in_raw_sql_commits(accounts, session):
    stripe, escrow = accounts
    assert attempt(entry(2, stripe, -7), entry(2, escrow, 3), entry(2, escrow, 4), transaction(2)) is None
    assert counts(session) == (2, 5)


@pytest.mark.parametrize(
    "case",
    [
        "unbalanced",
        "unbalanced, transaction row first",
        "entries without a transaction",
        "transaction without entries",
        "entry added to a committed transaction",
        "balanced pair added to a committed transaction",
    ],
)
def test_what_does_not_balance_cannot_be_committed(accounts, session, case):
    stripe, escrow = accounts
    # The statements, and what the refusal says (SQLite's and PostgreSQL's words differ a little).
    statements, says = {
        "unbalanced": ([entry(2, stripe, -500), entry(2, escrow, 499), transaction(2)], ("sum to zero",)),
        "unbalanced, transaction row first": (
            [transaction(2), entry(2, stripe, -500), entry(2, escrow, 499)],
            ("sealed", "sum to zero"),
        ),
        "entries without a transaction": ([entry(2, stripe, -500), entry(2, escrow, 500)], ("foreign key",)),
        "transaction without entries": ([transaction(2)], ("no entries", "needs entries")),
        "entry added to a committed transaction": ([entry(1, escrow, 1)], ("sealed",)),
        "balanced pair added to a committed transaction": ([entry(1, escrow, 1), entry(1, stripe, -1)], ("sealed",)),
    }[case]
    refusal = attempt(*statements)
    assert refusal is not None, f"the database accepted: {case}"
    assert any(words in refusal.lower() for words in says), refusal
    assert counts(session) == (1, 2)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_entries SET amount = amount * 2",
        "UPDATE ledger_entries SET account_id = 2 WHERE account_id = 1",
        "DELETE FROM ledger_entries WHERE amount > 0",
        "UPDATE ledger_transactions SET idempotency_key = 'rewritten'",
        "DELETE FROM ledger_transactions",
    ],
)
def test_entries_and_transactions_are_append_only(accounts, session, sql):
    refusal = attempt((sql, {}))
    assert refusal is not None and "append-only" in refusal
    rows = session.execute(select(LedgerEntry.account_id, LedgerEntry.amount).order_by(LedgerEntry.id)).all()
    assert [tuple(row) for row in rows] == [(1, -500), (2, 500)]
    assert session.scalar(select(LedgerTransaction.idempotency_key)) == "raw:1"
    session.commit()
