"""Helpers of the ledger tests: a transaction's lines, and a check that the whole ledger verifies.
Chains and introductions come from ``tests.builders``."""

from sqlalchemy import select

from marketplace.ledger.models import LedgerEntry, LedgerTransaction
from marketplace.ledger.verify import verify_ledger


def lines_of(session, key) -> list[tuple[str, int]]:
    """A transaction's entries as sorted (account code, amount) pairs. Ends its read, so that
    SQLite's write lock is free for the next request."""
    transaction = session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key))
    assert transaction is not None, f"no transaction {key}"
    entries = session.scalars(select(LedgerEntry).where(LedgerEntry.transaction_id == transaction.id))
    lines = sorted((entry.account.code, entry.amount) for entry in entries)
    session.commit()
    return lines


def assert_ledger_sound(session):
    broken = verify_ledger(session)
    session.commit()
    assert not broken, "\n".join(broken)
