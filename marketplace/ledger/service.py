"""Posting to the ledger, balances, and the money a member holds: statements, donations, payouts.

Every movement of money is one ``post``: balanced entries under an idempotency key derived from
our own rows (``settle:problem:42``), so a retry can never move money twice. Accounts are named
by code (see ``docs/ledger.md``); entries are signed, positive when money arrives in an account.
"""

import functools
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import Table, bindparam, func, insert, null, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.db import Prepared, connection_of, utcnow
from marketplace.errors import Conflict, NotFound, ValidationError
from marketplace.jobs.service import enqueue
from marketplace.ledger.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Share,
    ShareRole,
    ShareStatus,
    TransactionKind,
)
from marketplace.money import MINOR_DIGITS, format_money

STRIPE_BALANCE = "stripe:balance"
PLATFORM_FEES = "platform:fees"
PROCESSOR_FEES = "processor:fees"
MEMBER_BUCKETS = ("held", "available", "payout_pending", "paid", "reversed")
COMPANY_BUCKETS = ("refund_pending", "refunded")
MAX_AMOUNT = 2**63 - 1


@dataclass(frozen=True)
class AccountRule:
    """A family of accounts: the codes it matches, the sign its balance keeps, what it names.

    ``sign`` is 1 for accounts that can never be overdrawn (they hold money someone is owed),
    -1 for ``stripe:balance`` (money arrives from it), 0 for the platform's own fees, which
    processor fees may exceed. ``owner`` is the table whose row the code's number names.
    """

    pattern: re.Pattern
    sign: int
    owner: str | None


ACCOUNT_RULES = (
    AccountRule(re.compile(r"stripe:balance"), -1, None),
    AccountRule(re.compile(r"platform:fees"), 0, None),
    AccountRule(re.compile(r"processor:fees"), 1, None),
    AccountRule(re.compile(r"escrow:problem:(\d+)"), 1, "problems"),
    AccountRule(re.compile(rf"member:(\d+):({'|'.join(MEMBER_BUCKETS)})"), 1, "users"),
    AccountRule(re.compile(rf"company:(\d+):({'|'.join(COMPANY_BUCKETS)})"), 1, "companies"),
)


ANY_ACCOUNT = re.compile("|".join(f"(?:{rule.pattern.pattern})" for rule in ACCOUNT_RULES))


def account_rule(code: str) -> AccountRule | None:
    return next((rule for rule in ACCOUNT_RULES if rule.pattern.fullmatch(code)), None)


def escrow_account(problem_id: int) -> str:
    return f"escrow:problem:{problem_id}"


def member_account(user_id: int, bucket: str) -> str:
    return f"member:{user_id}:{bucket}"


def company_account(company_id: int, bucket: str) -> str:
    return f"company:{company_id}:{bucket}"


class LedgerError(ValidationError):
    code = "ledger_invalid"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class ShareError(Conflict):
    code = "share_state"


class Entry(NamedTuple):
    account: str
    amount: int
    currency: str


class Posted(NamedTuple):
    transaction_id: int
    created: bool


# Posting ---------------------------------------------------------------------------------------


def _checked_entries(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    """Whole, nonzero amounts in known currencies on known accounts, summing to zero per currency."""
    lines = []
    sums: dict[str, int] = defaultdict(int)
    for account, amount, currency in entries:
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < abs(amount) <= MAX_AMOUNT:
            raise LedgerError(f"Ledger amounts are nonzero whole minor units; got {amount!r} on {account}.")
        if currency not in MINOR_DIGITS:
            raise LedgerError(f"Unknown currency {currency!r} on {account}.")
        if not ANY_ACCOUNT.fullmatch(account):
            raise LedgerError(f"Unknown ledger account {account!r}.")
        lines.append(Entry(account, amount, currency))
        sums[currency] += amount
    if not lines:
        raise LedgerError("A ledger transaction needs entries.")
    unbalanced = {currency: total for currency, total in sums.items() if total}
    if unbalanced:
        raise LedgerError(f"Ledger entries must sum to zero in each currency; off by {unbalanced}.")
    return tuple(sorted(lines))


def fingerprint(
    kind: TransactionKind, problem_id: int | None, introduction_id: int | None, reference: str, lines: Iterable[Entry]
) -> str:
    """What a transaction is, in one hash: its kind, links, reference and (sorted) entries; not its memo."""
    canonical = json.dumps(
        [kind.value, problem_id, introduction_id, reference, [list(line) for line in sorted(lines)]],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# The posting path: four statements per transaction (five on PostgreSQL), each built once and
# run by ``Prepared`` (see marketplace/db.py), since posting is on the settlement's hot path.
TRANSACTIONS = LedgerTransaction.__table__
ENTRIES = LedgerEntry.__table__
ACCOUNTS = LedgerAccount.__table__
ACCOUNTS_BY_CODE = select(ACCOUNTS.c.code, ACCOUNTS.c.id).where(ACCOUNTS.c.code.in_(bindparam("codes", expanding=True)))
BALANCE = (
    select(func.coalesce(func.sum(ENTRIES.c.amount), 0))
    .join(ACCOUNTS, ACCOUNTS.c.id == ENTRIES.c.account_id)
    .where(ACCOUNTS.c.code == bindparam("code"), ENTRIES.c.currency == bindparam("currency"))
)


def insert_of(table: Table, *columns: str) -> Prepared:
    """``INSERT INTO table (columns) VALUES (…)``, every value a parameter of the column's name."""
    return Prepared(insert(table).values({name: bindparam(name) for name in columns}))


INSERT_ENTRIES = insert_of(ENTRIES, "transaction_id", "account_id", "amount", "currency")
INSERT_TRANSACTION = insert_of(
    TRANSACTIONS,
    *("id", "kind", "idempotency_key", "problem_id", "introduction_id", "reference", "memo", "fingerprint"),
    "created_at",
)
LOCK_KEY = Prepared(select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("key"), 0))))


@functools.cache
def _lookup(dialect: str, accounts: int) -> Prepared:
    """Everything posting must know, in one round trip: a row without a code holds the
    transaction already posted under the key (if any) and the next transaction id; every other
    row is one of the ``accounts`` codes that exist, with its id."""
    by_key = TRANSACTIONS.c.idempotency_key == bindparam("key")
    if dialect == "postgresql":
        next_id = func.nextval(func.pg_get_serial_sequence("ledger_transactions", "id"))
    else:
        next_id = select(func.coalesce(func.max(TRANSACTIONS.c.id), 0) + 1).scalar_subquery()
    posted = select(
        null().label("code"),
        select(TRANSACTIONS.c.id).where(by_key).scalar_subquery().label("id"),
        select(TRANSACTIONS.c.fingerprint).where(by_key).scalar_subquery().label("fingerprint"),
        next_id.label("next_id"),
    )
    codes = [bindparam(f"code_{n}") for n in range(accounts)]
    existing = select(ACCOUNTS.c.code, ACCOUNTS.c.id, null(), null()).where(ACCOUNTS.c.code.in_(codes))
    return Prepared(union_all(posted, existing))


@functools.cache
def _open_accounts(dialect: str):
    """INSERT of new account codes that leaves alone any a concurrent transaction opened first."""
    return (
        (postgresql if dialect == "postgresql" else sqlite)
        .insert(ACCOUNTS)
        .on_conflict_do_nothing(index_elements=["code"])
    )


def _open(session: Session, codes: list[str]) -> dict[str, int]:
    """Open the accounts named by ``codes`` and return their ids."""
    now = utcnow()
    dialect = session.get_bind().dialect.name
    session.execute(_open_accounts(dialect), [{"code": code, "created_at": now} for code in codes])
    return dict(session.execute(ACCOUNTS_BY_CODE, {"codes": codes}).all())


def account_ids(session: Session, codes: Iterable[str]) -> dict[str, int]:
    """The id of each account code, opening the accounts that do not exist yet."""
    codes = set(codes)
    found = dict(session.execute(ACCOUNTS_BY_CODE, {"codes": list(codes)}).all())
    missing = sorted(codes - found.keys())
    return found | (_open(session, missing) if missing else {})


def post(
    session: Session,
    kind: TransactionKind | str,
    idempotency_key: str,
    entries: Iterable[Entry],
    *,
    problem_id: int | None = None,
    introduction_id: int | None = None,
    reference: str = "",
    memo: str = "",
) -> Posted:
    """Write one balanced transaction, once: the same key with the same content returns the
    existing transaction (``created`` False); with other content it is an ``IdempotencyConflict``.

    The entries are written before the transaction row that seals them (see ``ddl.py``), so the
    transaction's id is taken first. SQLite serialises writers; on PostgreSQL a lock on the key
    makes a concurrent poster of the same key wait and then find the transaction.
    """
    try:
        kind = TransactionKind(kind)
    except ValueError:
        raise LedgerError(f"Unknown ledger transaction kind {kind!r}.") from None
    if not 0 < len(idempotency_key or "") <= 200:
        raise LedgerError("A ledger transaction needs an idempotency key of at most 200 characters.")
    lines = _checked_entries(entries)
    wanted = fingerprint(kind, problem_id, introduction_id, reference, lines)
    connection = connection_of(session)
    dialect = connection.dialect.name
    if dialect == "postgresql":
        LOCK_KEY.fetchall(connection, {"key": idempotency_key})
    codes = sorted({line.account for line in lines})
    params = {"key": idempotency_key} | {f"code_{n}": code for n, code in enumerate(codes)}
    ids, posted = {}, None
    for code, row_id, stored_fingerprint, next_id in _lookup(dialect, len(codes)).fetchall(connection, params):
        if code is None:
            posted = (row_id, stored_fingerprint, next_id)
        else:
            ids[code] = row_id
    stored_id, stored_fingerprint, transaction_id = posted
    if stored_id is not None:
        if stored_fingerprint != wanted:
            raise IdempotencyConflict(
                f"Ledger transaction {idempotency_key!r} was posted before with other content; nothing was changed."
            )
        return Posted(stored_id, False)
    missing = [code for code in codes if code not in ids]
    if missing:
        ids |= _open(session, missing)
    INSERT_ENTRIES.executemany(
        connection,
        [
            {
                "transaction_id": transaction_id,
                "account_id": ids[line.account],
                "amount": line.amount,
                "currency": line.currency,
            }
            for line in lines
        ],
    )
    INSERT_TRANSACTION.execute(
        connection,
        {
            "id": transaction_id,
            "kind": kind,
            "idempotency_key": idempotency_key,
            "problem_id": problem_id,
            "introduction_id": introduction_id,
            "reference": reference,
            "memo": memo[:500],
            "fingerprint": wanted,
            "created_at": utcnow(),
        },
    )
    return Posted(transaction_id, True)


def balance(session: Session, account_code: str, currency: str) -> int:
    # int(): PostgreSQL sums 64-bit integers as numeric.
    return int(session.scalar(BALANCE, {"code": account_code, "currency": currency}))


def transaction_by_key(session: Session, idempotency_key: str) -> LedgerTransaction | None:
    return session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key))


# A member's money ------------------------------------------------------------------------------


@dataclass
class StatementLine:
    """One transaction as a member sees it: what it changed in each of their figures."""

    transaction: LedgerTransaction
    changes: dict[str, int]


@dataclass
class CurrencyStatement:
    """A member's four figures in one currency and the transactions that add up to them."""

    currency: str
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEMBER_BUCKETS, 0))
    lines: list[StatementLine] = field(default_factory=list)


def member_statement(session: Session, user_id: int) -> list[CurrencyStatement]:
    """Held, available, payout pending and paid per currency, each the sum of the lines below it."""
    prefix = f"member:{user_id}:"
    rows = session.execute(
        select(LedgerEntry.transaction_id, LedgerAccount.code, LedgerEntry.currency, LedgerEntry.amount)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code.startswith(prefix, autoescape=True))
        .order_by(LedgerEntry.transaction_id.desc(), LedgerEntry.id)
    ).all()
    transactions = {
        t.id: t
        for t in session.scalars(
            select(LedgerTransaction).where(LedgerTransaction.id.in_({row.transaction_id for row in rows}))
        )
    }
    statements: dict[str, CurrencyStatement] = {}
    lines: dict[tuple[str, int], StatementLine] = {}
    for transaction_id, code, currency, amount in rows:
        bucket = code[len(prefix) :]
        statement = statements.setdefault(currency, CurrencyStatement(currency))
        statement.figures[bucket] += amount
        line = lines.get((currency, transaction_id))
        if line is None:
            line = lines[currency, transaction_id] = StatementLine(transactions[transaction_id], {})
            statement.lines.append(line)
        line.changes[bucket] = line.changes.get(bucket, 0) + amount
    return sorted(statements.values(), key=lambda s: s.currency)


@dataclass
class Gift:
    transaction: LedgerTransaction
    giver: User
    recipient: User
    amount: int
    currency: str


def giving_record(session: Session, user_id: int) -> tuple[list[Gift], list[Gift]]:
    """Donations the member gave and received, newest first (the giving beside the taking)."""
    donations = list(
        session.scalars(
            select(LedgerTransaction)
            .where(LedgerTransaction.kind == TransactionKind.DONATION)
            .where(
                LedgerTransaction.id.in_(
                    select(LedgerEntry.transaction_id)
                    .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                    .where(LedgerAccount.code == member_account(user_id, "available"))
                )
            )
            .order_by(LedgerTransaction.id.desc())
        )
    )
    gifts = []
    for donation in donations:
        (giver_entry,) = [e for e in donation.entries if e.amount < 0]
        (recipient_entry,) = [e for e in donation.entries if e.amount > 0]
        giver, recipient = (
            session.get(User, int(entry.account.code.split(":")[1])) for entry in (giver_entry, recipient_entry)
        )
        gifts.append(Gift(donation, giver, recipient, recipient_entry.amount, recipient_entry.currency))
    return [g for g in gifts if g.giver.id == user_id], [g for g in gifts if g.recipient.id == user_id]


def donate(
    session: Session, giver: User, *, to_user_id: int, amount: int, currency: str, key: str, note: str = ""
) -> Posted:
    """Pay it forward: move part or all of the giver's available money to another member.

    The gift is drawn from the giver's available shares, oldest first, as ``gift`` shares of the
    recipient, so every unit can still be paid out against the charge that funded it. ``key``
    makes a resubmitted form or API call a replay rather than a second gift.
    """
    recipient = session.get(User, to_user_id)
    if recipient is None:
        raise NotFound("No such member.")
    if recipient.id == giver.id:
        raise ValidationError("Choose another member to pass your share on to.", code="invalid_recipient")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError("Give a positive amount.", code="invalid_amount")
    posted = post(
        session,
        TransactionKind.DONATION,
        f"donation:{giver.id}:{key}",
        [
            Entry(member_account(giver.id, "available"), -amount, currency),
            Entry(member_account(recipient.id, "available"), amount, currency),
        ],
        memo=note.strip(),
    )
    if posted.created:
        _draw_gifts(session, giver, recipient.id, amount, currency, posted.transaction_id)
    return posted


def _draw_gifts(session: Session, giver: User, recipient_id: int, amount: int, currency: str, transaction_id: int):
    query = (
        select(Share)
        .where(
            Share.member_id == giver.id,
            Share.currency == currency,
            Share.status == ShareStatus.AVAILABLE,
            Share.amount > Share.given,
        )
        .order_by(Share.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # Two gifts at once must not both draw on the same money.
    remaining = amount
    for source in session.scalars(query):
        take = min(remaining, source.payable)
        source.given += take
        if source.payable == 0:
            source.status = ShareStatus.GIVEN
        session.add(
            Share(
                problem_id=source.problem_id,
                member_id=recipient_id,
                role=ShareRole.GIFT,
                amount=take,
                currency=currency,
                status=ShareStatus.AVAILABLE,
                transaction_id=transaction_id,
                source_share_id=source.id,
            )
        )
        remaining -= take
        if not remaining:
            break
    if remaining:
        available = balance(session, member_account(giver.id, "available"), currency) + amount
        raise ValidationError(
            f"You can give at most what is available to you: {format_money(available, currency)}.",
            code="insufficient_funds",
        )
    session.flush()


# Payouts: the Stripe work calls these ----------------------------------------------------------


def _move_share(session: Session, share: Share, expected: ShareStatus, new: ShareStatus, **values) -> None:
    """A guarded status change, like a problem's: of two racing callers only one wins."""
    result = session.execute(
        update(Share)
        .where(Share.id == share.id, Share.status == expected)
        .values(status=new, **values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(share)
    if result.rowcount != 1:
        raise ShareError(f"Share {share.id} is {share.status.value.replace('_', ' ')}; it cannot become {new.value}.")


def _payout_key(share: Share) -> str:
    return f"payout:share:{share.id}:{share.payout_attempts}"


def start_payout(session: Session, share: Share) -> Share:
    """Available → payout pending, with the ``stripe.transfer`` job that sends it.

    The job's key names the attempt, so a transfer that failed is sent again under a new key
    while a retried attempt reuses its own.
    """
    if share.payable <= 0:
        raise ShareError(f"Share {share.id} has nothing left to pay out.")
    _move_share(session, share, ShareStatus.AVAILABLE, ShareStatus.PAYING, payout_attempts=Share.payout_attempts + 1)
    key = _payout_key(share)
    post(
        session,
        TransactionKind.PAYOUT,
        key,
        [
            Entry(member_account(share.member_id, "available"), -share.payable, share.currency),
            Entry(member_account(share.member_id, "payout_pending"), share.payable, share.currency),
        ],
        problem_id=share.problem_id,
    )
    enqueue(
        session,
        "stripe.transfer",
        key,
        {
            "share_id": share.id,
            "member_id": share.member_id,
            "amount": share.payable,
            "currency": share.currency,
            "problem_id": share.problem_id,
            "transfer_group": f"problem_{share.problem_id}",
        },
    )
    return share


def complete_payout(session: Session, share: Share, *, transfer_id: str) -> Share:
    """The transfer succeeded: payout pending → paid. Repeating it with the same transfer is a no-op."""
    if share.status == ShareStatus.PAID and share.transfer_reference == transfer_id:
        return share
    _move_share(session, share, ShareStatus.PAYING, ShareStatus.PAID, transfer_reference=transfer_id)
    post(
        session,
        TransactionKind.PAYOUT,
        _payout_key(share) + ":paid",
        [
            Entry(member_account(share.member_id, "payout_pending"), -share.payable, share.currency),
            Entry(member_account(share.member_id, "paid"), share.payable, share.currency),
        ],
        problem_id=share.problem_id,
        reference=transfer_id,
    )
    return share


def fail_payout(session: Session, share: Share, *, reason: str) -> Share:
    """The transfer failed for good: the money goes back to available, to be sent again later."""
    _move_share(session, share, ShareStatus.PAYING, ShareStatus.AVAILABLE)
    post(
        session,
        TransactionKind.PAYOUT,
        _payout_key(share) + ":failed",
        [
            Entry(member_account(share.member_id, "payout_pending"), -share.payable, share.currency),
            Entry(member_account(share.member_id, "available"), share.payable, share.currency),
        ],
        problem_id=share.problem_id,
        memo=reason,
    )
    return share


def record_reversal(session: Session, share: Share, *, amount: int, reference: str) -> Share:
    """A paid transfer was reversed: paid → reversed, where it waits for an admin's decision.

    Only a whole reversal is modelled; the share keeps its one payout and is never sent again.
    """
    if share.status == ShareStatus.REVERSED:
        return share
    if amount != share.payable:
        raise ShareError(f"Share {share.id}: a partial reversal ({amount} of {share.payable}) needs an admin.")
    _move_share(session, share, ShareStatus.PAID, ShareStatus.REVERSED)
    post(
        session,
        TransactionKind.PAYOUT,
        f"reversal:share:{share.id}:{reference}",
        [
            Entry(member_account(share.member_id, "paid"), -amount, share.currency),
            Entry(member_account(share.member_id, "reversed"), amount, share.currency),
        ],
        problem_id=share.problem_id,
        reference=reference,
    )
    return share


def record_processor_fee(
    session: Session, *, amount: int, currency: str, reference: str, problem_id: int | None = None
) -> Posted:
    """Stripe's fee on a charge, borne by the platform: ``platform:fees`` → ``processor:fees``."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise LedgerError("A processor fee is a positive whole amount.")
    return post(
        session,
        TransactionKind.PROCESSOR_FEE,
        f"processor_fee:{reference}",
        [Entry(PLATFORM_FEES, -amount, currency), Entry(PROCESSOR_FEES, amount, currency)],
        problem_id=problem_id,
        reference=reference,
    )
