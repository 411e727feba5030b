"""Posting to the ledger (docs/ledger.md, "Posting"): every movement of money is one ``post``,
balanced entries under an idempotency key derived from our own rows (``settle:problem:42``), so
a retry can never move money twice; and balances, which are always derived from entries.
"""

import functools
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple, cast

from sqlalchemy import BindParameter, ColumnElement, Insert, Table, bindparam, func, null, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from marketplace.db import Prepared, connection_of, insert_of, utcnow
from marketplace.errors import Conflict, ValidationError
from marketplace.ledger.accounts import ANY_ACCOUNT, MAX_AMOUNT
from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction, TransactionKind
from marketplace.money import MINOR_DIGITS


class LedgerError(ValidationError):
    code = "ledger_invalid"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


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
TRANSACTIONS = cast(Table, LedgerTransaction.__table__)
ENTRIES = cast(Table, LedgerEntry.__table__)
ACCOUNTS = cast(Table, LedgerAccount.__table__)
ACCOUNTS_BY_CODE = select(ACCOUNTS.c.code, ACCOUNTS.c.id).where(ACCOUNTS.c.code.in_(bindparam("codes", expanding=True)))
BALANCE = (
    select(func.coalesce(func.sum(ENTRIES.c.amount), 0))
    .join(ACCOUNTS, ACCOUNTS.c.id == ENTRIES.c.account_id)
    .where(ACCOUNTS.c.code == bindparam("code"), ENTRIES.c.currency == bindparam("currency"))
)

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
        next_id: ColumnElement[int] = func.nextval(func.pg_get_serial_sequence("ledger_transactions", "id"))
    else:
        next_id = select(func.coalesce(func.max(TRANSACTIONS.c.id), 0) + 1).scalar_subquery()
    posted = select(
        null().label("code"),
        select(TRANSACTIONS.c.id).where(by_key).scalar_subquery().label("id"),
        select(TRANSACTIONS.c.fingerprint).where(by_key).scalar_subquery().label("fingerprint"),
        next_id.label("next_id"),
    )
    codes: list[BindParameter[str]] = [bindparam(f"code_{n}") for n in range(accounts)]
    existing = select(ACCOUNTS.c.code, ACCOUNTS.c.id, null(), null()).where(ACCOUNTS.c.code.in_(codes))
    return Prepared(union_all(posted, existing))


@functools.cache
def _open_accounts(dialect: str) -> Insert:
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
    posted: tuple[Any, Any, Any] | None
    ids, posted = {}, None
    for code, row_id, stored_fingerprint, next_id in _lookup(dialect, len(codes)).fetchall(connection, params):
        if code is None:
            posted = (row_id, stored_fingerprint, next_id)
        else:
            ids[code] = row_id
    if posted is None:
        raise LedgerError("The ledger lookup returned no transaction row.")
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
    return int(session.execute(BALANCE, {"code": account_code, "currency": currency}).scalar_one())


def transaction_by_key(session: Session, idempotency_key: str) -> LedgerTransaction | None:
    return session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key))
