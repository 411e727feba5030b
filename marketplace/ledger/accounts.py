"""The chart of accounts (docs/ledger.md, "Accounts"): how accounts are named, the sign each
family's balance keeps, and a member's own accounts read as a statement.

Accounts are named by code (``escrow:problem:42``, ``member:7:available``); entries are signed,
positive when money arrives in an account.
"""

import re
from dataclasses import dataclass, field

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from marketplace.problems.models import Problem

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


def _member_entries(user_id: int) -> Select:
    """Every entry on the member's accounts, newest transaction first. The accounts are named one
    by one, so the unique index on their codes finds them: ``LIKE 'member:<id>:%'`` read every
    account of the ledger on both engines (docs/ledger.md, "Pages and API")."""
    return (
        select(LedgerEntry.transaction_id, LedgerAccount.code, LedgerEntry.currency, LedgerEntry.amount)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code.in_([member_account(user_id, bucket) for bucket in MEMBER_BUCKETS]))
        .order_by(LedgerEntry.transaction_id.desc(), LedgerEntry.id)
    )


def member_statement(session: Session, user_id: int) -> list[CurrencyStatement]:
    """Held, available, payout pending and paid per currency, each the sum of the lines below it."""
    prefix = f"member:{user_id}:"
    rows = session.execute(_member_entries(user_id)).all()
    transactions = {
        t.id: t
        for t in session.scalars(
            select(LedgerTransaction)
            .where(LedgerTransaction.id.in_({row.transaction_id for row in rows}))
            .options(joinedload(LedgerTransaction.problem).load_only(Problem.id, Problem.title))
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
