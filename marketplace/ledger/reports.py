"""A company's dashboard figures (docs/dashboards.md): what it paid and got back by month, the
payment records behind them, and each problem's funnel from forwards to acceptance.

Each is one aggregate query (GROUP BY), whatever the number of problems, chains and payments.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, and_, extract, func, or_, select
from sqlalchemy.orm import Session

from marketplace.ledger.accounts import company_account
from marketplace.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction, TransactionKind
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals.models import Introduction, IntroductionStatus, Referral, ReferralStatus

RECEIPTS_SHOWN = 24
FUNNELS_SHOWN = 8


@dataclass(frozen=True)
class MonthOfMoney:
    year: int
    month: int
    currency: str
    spent: int  # bounties paid into escrow
    refunded: int  # sent back to the company's card

    @property
    def label(self) -> str:
        return datetime(self.year, self.month, 1).strftime("%b %Y")


@dataclass(frozen=True)
class PaymentRecord:
    """One payment or refund as the ledger recorded it, with the payment provider's reference
    and the receipt of the payment (a refund's is the receipt of the payment it gives back)."""

    at: datetime
    kind: TransactionKind
    problem_id: int
    problem_title: str
    amount: int
    currency: str
    reference: str
    receipt_url: str | None


@dataclass(frozen=True)
class Funnel:
    problem_id: int
    title: str
    forwards: int
    claims: int
    introductions: int
    accepted: int


def problems_by_state(session: Session, company_id: int) -> list[tuple[ProblemStatus, int]]:
    """How many of the company's problems are in each state."""
    rows = session.execute(
        select(Problem.status, func.count())
        .where(Problem.company_id == company_id)
        .group_by(Problem.status)
        .order_by(Problem.status)
    )
    return [(status, n) for status, n in rows]


def _company_money(company_id: int) -> ColumnElement[bool]:
    """The entries that are the company's money moving: a bounty into escrow, a refund posted."""
    return and_(
        Problem.company_id == company_id,
        LedgerEntry.amount > 0,
        or_(
            LedgerTransaction.kind == TransactionKind.FUND,
            and_(
                LedgerTransaction.kind == TransactionKind.REFUND,
                LedgerAccount.code == company_account(company_id, "refund_pending"),
            ),
        ),
    )


def _money_entries(*columns: Any) -> Select:
    return (
        select(*columns)
        .select_from(LedgerEntry)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(Problem, Problem.id == LedgerTransaction.problem_id)
    )


def money_by_month(session: Session, company_id: int) -> list[MonthOfMoney]:
    """Spend and refunds per calendar month (UTC) and currency, oldest first."""
    year = extract("year", LedgerTransaction.created_at)
    month = extract("month", LedgerTransaction.created_at)
    is_fund = LedgerTransaction.kind == TransactionKind.FUND
    rows = session.execute(
        _money_entries(
            year,
            month,
            LedgerEntry.currency,
            func.coalesce(func.sum(LedgerEntry.amount).filter(is_fund), 0),
            func.coalesce(func.sum(LedgerEntry.amount).filter(~is_fund), 0),
        )
        .where(_company_money(company_id))
        .group_by(year, month, LedgerEntry.currency)
        .order_by(year, month, LedgerEntry.currency)
    )
    return [MonthOfMoney(int(y), int(m), currency, int(spent), int(back)) for y, m, currency, spent, back in rows]


def payment_records(session: Session, company_id: int, receipts: FromClause) -> list[PaymentRecord]:
    """The newest payments and refunds, each with the reference Stripe gave it and its receipt.

    ``receipts`` holds each funded problem's receipt (``problem_id``, ``receipt_url``): the
    payment layer keeps them (``payments.service.funding_receipts``), and they are joined here,
    so the records stay one query.
    """
    rows = session.execute(
        _money_entries(
            LedgerTransaction.created_at,
            LedgerTransaction.kind,
            Problem.id,
            Problem.title,
            LedgerEntry.amount,
            LedgerEntry.currency,
            LedgerTransaction.reference,
            receipts.c.receipt_url,
        )
        .outerjoin(receipts, receipts.c.problem_id == Problem.id)
        .where(_company_money(company_id))
        .order_by(LedgerTransaction.id.desc())
        .limit(RECEIPTS_SHOWN)
    )
    return [PaymentRecord(*row) for row in rows]


def funnels(session: Session, company_id: int) -> list[Funnel]:
    """For the company's newest problems: forwards made, places claimed, introductions made (not
    duplicates) and accepted."""
    of_company = select(Problem.id).where(Problem.company_id == company_id)
    referrals = (
        select(
            Referral.problem_id,
            func.count().filter(Referral.sender_id.is_not(None)).label("forwards"),
            func.count().filter(Referral.status == ReferralStatus.CLAIMED).label("claims"),
        )
        .where(Referral.problem_id.in_(of_company))
        .group_by(Referral.problem_id)
        .subquery()
    )
    made = (
        select(
            Introduction.problem_id,
            func.count().filter(Introduction.status != IntroductionStatus.DUPLICATE).label("made"),
            func.count().filter(Introduction.status == IntroductionStatus.ACCEPTED).label("accepted"),
        )
        .where(Introduction.problem_id.in_(of_company))
        .group_by(Introduction.problem_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Problem.id,
            Problem.title,
            func.coalesce(referrals.c.forwards, 0),
            func.coalesce(referrals.c.claims, 0),
            func.coalesce(made.c.made, 0),
            func.coalesce(made.c.accepted, 0),
        )
        .outerjoin(referrals, referrals.c.problem_id == Problem.id)
        .outerjoin(made, made.c.problem_id == Problem.id)
        .where(Problem.company_id == company_id)
        .order_by(Problem.created_at.desc(), Problem.id.desc())
        .limit(FUNNELS_SHOWN)
    )
    return [Funnel(*row) for row in rows]
