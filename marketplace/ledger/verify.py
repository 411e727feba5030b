"""``flask ledger verify``: every invariant of the money, checked from the rows themselves.

The database refuses unbalanced or edited transactions, but this does not trust that: it also
finds what only a person with the keys to the database could do (dropping a trigger, turning
foreign keys off) and what no single row can show (escrow that disagrees with its problem's
state, shares that disagree with the ledger, a share paid twice).
"""

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Company, User
from marketplace.db import sqlite_write_intent
from marketplace.jobs.models import Job
from marketplace.ledger.accounts import account_rule, escrow_account, member_account
from marketplace.ledger.models import (
    Dispute,
    DisputeStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Share,
    ShareRole,
    ShareStatus,
    TransactionKind,
)
from marketplace.ledger.posting import Entry, fingerprint
from marketplace.problems.models import Problem, ProblemStatus

OWNERS: dict[str, type[Problem | User | Company]] = {"problems": Problem, "users": User, "companies": Company}
PAID_KEY = re.compile(r"payout:share:(\d+):\d+:paid")
# What each problem state says its shares (other than gifts) may be.
SHARE_STATES = {
    ProblemStatus.IN_GUARANTEE: {ShareStatus.HELD},
    ProblemStatus.SETTLED: {
        ShareStatus.AVAILABLE,
        ShareStatus.PAYING,
        ShareStatus.PAID,
        ShareStatus.REVERSED,
        ShareStatus.GIVEN,
    },
    ProblemStatus.REFUNDED: {ShareStatus.CLAWED_BACK},
}


def verify_ledger(session: Session) -> list[str]:
    """Returns one readable line per broken invariant; an empty list means the ledger is sound."""
    with _snapshot(session):
        totals = balances(session)
        return [
            *_transactions(session),
            *_accounts(session, totals),
            *_escrow(session, totals),
            *_shares(session, totals),
            *_outbox(session),
        ]


@contextmanager
def _snapshot(session: Session) -> Iterator[None]:
    """Read everything from one snapshot, so a settlement committed meanwhile cannot look like a
    broken invariant: REPEATABLE READ on PostgreSQL; on SQLite a read transaction (which is a
    snapshot, and does not take the write lock). Inside a caller's transaction, use that one."""
    if session.in_transaction():
        yield
        return
    token = sqlite_write_intent.set(False)
    try:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield
    finally:
        session.rollback()
        sqlite_write_intent.reset(token)


def _transactions(session: Session) -> list[str]:
    found = []
    columns = ("id", "idempotency_key", "kind", "problem_id", "introduction_id", "reference", "fingerprint")
    transactions = {
        row.id: row for row in session.execute(select(*(getattr(LedgerTransaction, name) for name in columns)))
    }
    codes = dict(session.execute(select(LedgerAccount.id, LedgerAccount.code)).all())
    lines: dict[int, list[Entry]] = defaultdict(list)
    for entry_id, transaction_id, account_id, amount, currency in session.execute(
        select(
            LedgerEntry.id, LedgerEntry.transaction_id, LedgerEntry.account_id, LedgerEntry.amount, LedgerEntry.currency
        )
    ):
        if transaction_id not in transactions:
            found.append(f"entry {entry_id}: orphan, its transaction {transaction_id} does not exist")
        if account_id not in codes:
            found.append(f"entry {entry_id}: on account {account_id}, which does not exist")
        lines[transaction_id].append(Entry(codes.get(account_id, f"#{account_id}"), amount, currency))
    for transaction in transactions.values():
        label = f"transaction {transaction.id} ({transaction.idempotency_key})"
        entries = lines.get(transaction.id, [])
        if not entries:
            found.append(f"{label}: has no entries")
        sums: Counter[str] = Counter()
        for entry in entries:
            sums[entry.currency] += entry.amount
        for currency, total in sorted(sums.items()):
            if total:
                found.append(f"{label}: its {currency} entries sum to {total:+}, not 0")
        expected = fingerprint(
            transaction.kind, transaction.problem_id, transaction.introduction_id, transaction.reference, entries
        )
        if entries and expected != transaction.fingerprint:
            found.append(f"{label}: its entries are not the ones it was posted with")
    return found


def balances(session: Session) -> dict[tuple[str, str], int]:
    """Every account's balance per currency, from the entries."""
    rows = session.execute(
        select(LedgerAccount.code, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .group_by(LedgerAccount.code, LedgerEntry.currency)
    )
    return {(code, currency): int(total) for code, currency, total in rows}


def _accounts(session: Session, totals: dict[tuple[str, str], int]) -> list[str]:
    found = []
    rows = {table: set(session.scalars(select(model.id))) for table, model in OWNERS.items()}
    for code in session.scalars(select(LedgerAccount.code)):
        rule = account_rule(code)
        if rule is None:
            found.append(f"account {code}: not a known kind of account")
        elif rule.owner and (match := rule.pattern.fullmatch(code)) and int(match.group(1)) not in rows[rule.owner]:
            found.append(f"account {code}: names a row of {rule.owner} that does not exist")
    for (code, currency), total in sorted(totals.items()):
        rule = account_rule(code)
        if rule is not None and total * rule.sign < 0:
            never = "negative" if rule.sign > 0 else "positive"
            found.append(f"account {code}: {currency} balance {total} must never be {never}")
    return found


def _escrow(session: Session, totals: dict[tuple[str, str], int]) -> list[str]:
    """An open problem's escrow holds its bounty; at every other state it holds nothing."""
    found = []
    held = {key: total for key, total in totals.items() if key[0].startswith("escrow:problem:") and total}
    problems = select(Problem.id, Problem.status, Problem.bounty_amount, Problem.currency).order_by(Problem.id)
    for problem in session.execute(problems):
        expected = problem.bounty_amount if problem.status == ProblemStatus.OPEN else 0
        actual = held.pop((escrow_account(problem.id), problem.currency), 0)
        if actual != expected:
            found.append(
                f"problem {problem.id} is {problem.status.value}: its escrow holds {actual} {problem.currency}, "
                f"it should hold {expected}"
            )
    found += [
        f"account {code}: holds {total} {currency} that no problem accounts for"
        for (code, currency), total in held.items()
    ]
    return found


def _shares(session: Session, totals: dict[tuple[str, str], int]) -> list[str]:
    found = []
    columns = ("id", "problem_id", "member_id", "role", "amount", "given", "currency", "status", "source_share_id")
    shares = session.execute(select(*(getattr(Share, name) for name in columns)).order_by(Share.id)).all()
    owed: Counter = Counter()
    given: Counter = Counter()
    for share in shares:
        payable = share.amount - share.given
        bucket = {
            ShareStatus.HELD: ("held", share.amount),
            ShareStatus.AVAILABLE: ("available", payable),
            ShareStatus.PAYING: ("payout_pending", payable),
            ShareStatus.PAID: ("paid", payable),
            ShareStatus.REVERSED: ("reversed", payable),
        }.get(share.status)
        if bucket:
            owed[member_account(share.member_id, bucket[0]), share.currency] += bucket[1]
        if share.source_share_id is not None:
            given[share.source_share_id] += share.amount
    ledger = {key: total for key, total in totals.items() if key[0].startswith("member:")}
    for key in sorted(set(ledger) | set(owed)):
        if ledger.get(key, 0) != owed[key]:
            found.append(f"account {key[0]}: the ledger says {ledger.get(key, 0)} {key[1]}, its shares say {owed[key]}")
    for share in shares:
        if share.given != given[share.id]:
            found.append(f"share {share.id}: records {share.given} given, its gifts add up to {given[share.id]}")
    paid = Counter(
        int(match.group(1))
        for key in session.scalars(
            select(LedgerTransaction.idempotency_key).where(LedgerTransaction.kind == TransactionKind.PAYOUT)
        )
        if (match := PAID_KEY.fullmatch(key))
    )
    for share in shares:
        times = paid[share.id]
        if times > 1 or times != (share.status in (ShareStatus.PAID, ShareStatus.REVERSED)):
            found.append(f"share {share.id} is {share.status.value}: it was paid out {times} time(s)")
    found += _shares_match_problems(session, [s for s in shares if s.role != ShareRole.GIFT])
    return found


def _shares_match_problems(session: Session, shares: list) -> list[str]:
    found = []
    disputes = dict(session.execute(select(Dispute.problem_id, Dispute.status)).all())
    statuses = dict(session.execute(select(Problem.id, Problem.status)).all())
    for share in shares:
        status = statuses[share.problem_id]
        allowed = SHARE_STATES.get(status)
        if status == ProblemStatus.DISPUTED:
            upheld = disputes.get(share.problem_id) == DisputeStatus.UPHELD
            allowed = {ShareStatus.CLAWED_BACK} if upheld else {ShareStatus.HELD}
        if allowed is None or share.status not in allowed:
            found.append(
                f"share {share.id} is {share.status.value}, but its problem {share.problem_id} is {status.value}"
            )
    return found


def _outbox(session: Session) -> list[str]:
    """Money owed outside (a refund, a transfer) has the job that pays it, under the same key."""
    jobs = set(session.scalars(select(Job.idempotency_key).where(Job.kind.in_(["stripe.refund", "stripe.transfer"]))))
    found = []
    for key in session.scalars(
        select(LedgerTransaction.idempotency_key)
        .where(LedgerTransaction.kind.in_([TransactionKind.REFUND, TransactionKind.PAYOUT]))
        .order_by(LedgerTransaction.id)
    ):
        money_came_back = key.startswith("reversal:")
        if not key.endswith((":done", ":paid", ":failed")) and not money_came_back and key not in jobs:
            found.append(f"transaction {key}: no outbox job pays it")
    return found
