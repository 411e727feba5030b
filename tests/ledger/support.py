"""Helpers of the ledger tests: chains of members, accepted introductions, and a
check that the whole ledger verifies."""

from sqlalchemy import select

from marketplace.ledger.models import LedgerEntry, LedgerTransaction
from marketplace.ledger.verify import verify_ledger
from marketplace.referrals import service as referrals


def build_chain(session, problem, members):
    """``members[0]`` picks the problem from the board and each forwards it to the next, who claims it."""
    place = referrals.pick_from_board(session, members[0], problem)
    for sender, recipient in zip(members, members[1:], strict=False):
        sent = referrals.forward(session, sender, problem, to_user_id=recipient.id)
        place = referrals.claim(session, recipient, sent.token)
    return place


def propose(session, problem, members, candidate=None):
    """A chain through ``members`` whose last member introduces ``candidate`` (or themselves),
    with the candidate's consent: a proposed introduction the company can accept."""
    build_chain(session, problem, members)
    finder = members[-1]
    candidate = candidate or finder
    introduction = referrals.introduce(
        session, finder, problem, candidate_user_id=candidate.id, message="Knows exactly this problem."
    )
    if candidate is not finder:
        referrals.consent(session, introduction, candidate, accept=True)
    session.commit()
    return introduction


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
