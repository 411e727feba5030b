"""Helpers of the ledger tests: fast sign-ups, chains of members, accepted introductions, and a
check that the whole ledger verifies."""

from functools import partial

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from marketplace.accounts import service as accounts
from marketplace.ledger.models import LedgerEntry, LedgerTransaction
from marketplace.ledger.verify import verify_ledger
from marketplace.referrals import chains, introductions


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch):
    """One hash iteration instead of scrypt: sign-ups would dominate the run time."""
    monkeypatch.setattr(accounts, "generate_password_hash", partial(generate_password_hash, method="pbkdf2:sha256:1"))


def build_chain(session, problem, members):
    """``members[0]`` picks the problem from the board and each forwards it to the next, who claims it."""
    place = chains.pick_from_board(session, members[0], problem.id)
    for sender, recipient in zip(members, members[1:], strict=False):
        sent = chains.forward(session, sender, problem.id, to_user_id=recipient.id)
        place = chains.claim(session, recipient, sent.token)
    return place


def propose(session, problem, members, candidate=None):
    """A chain through ``members`` whose last member introduces ``candidate`` (or themselves),
    with the candidate's consent: a proposed introduction the company can accept."""
    build_chain(session, problem, members)
    finder = members[-1]
    candidate = candidate or finder
    introduction = introductions.introduce(
        session, finder, problem.id, candidate_user_id=candidate.id, message="Knows exactly this problem."
    )
    if candidate is not finder:
        introductions.consent(session, introduction, candidate, accept=True)
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
