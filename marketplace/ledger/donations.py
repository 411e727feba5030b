"""Pay it forward: a member passes part of their available money to another member, and the
giving record that shows it beside what they took (docs/ledger.md, "Donations").
"""

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.errors import NotFound, ValidationError
from marketplace.ledger.accounts import member_account
from marketplace.ledger.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Share,
    ShareRole,
    ShareStatus,
    TransactionKind,
)
from marketplace.ledger.posting import Entry, Posted, balance, post
from marketplace.money import format_money


@dataclass
class Gift:
    transaction: LedgerTransaction
    giver: User
    recipient: User
    amount: int
    currency: str


def giving_record(session: Session, user_id: int) -> tuple[list[Gift], list[Gift]]:
    """Donations the member gave and received, newest first (the giving beside the taking), in
    two queries: the donations' entries with their transactions, then the people in them."""
    mine = (
        select(LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code == member_account(user_id, "available"))
    )
    rows = session.execute(
        select(LedgerTransaction, LedgerAccount.code, LedgerEntry.amount, LedgerEntry.currency)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerTransaction.kind == TransactionKind.DONATION, LedgerTransaction.id.in_(mine))
        .order_by(LedgerTransaction.id.desc())
    ).all()
    sides: dict[int, dict[str, tuple[int, int, str]]] = {}
    transactions = {}
    for transaction, code, amount, currency in rows:
        transactions[transaction.id] = transaction
        member_id = int(code.split(":")[1])
        sides.setdefault(transaction.id, {})["giver" if amount < 0 else "recipient"] = (member_id, amount, currency)
    people = {
        u.id: u
        for u in session.scalars(select(User).where(User.id.in_({m for s in sides.values() for m, *_ in s.values()})))
    }
    gifts = [
        Gift(transactions[t], people[side["giver"][0]], people[side["recipient"][0]], *side["recipient"][1:])
        for t, side in sides.items()
    ]
    return [g for g in gifts if g.giver.id == user_id], [g for g in gifts if g.recipient.id == user_id]


@dataclass(frozen=True)
class TakenAndGiven:
    """In one currency: what a member earned from chains, what they passed on, what others gave them."""

    currency: str
    earned: int
    passed_on: int
    received: int


def taken_and_given(session: Session, user_id: int) -> list[TakenAndGiven]:
    """The money side of a member's giving record, per currency, in one query over their shares."""
    is_gift = Share.role == ShareRole.GIFT
    rows = session.execute(
        select(
            Share.currency,
            func.coalesce(func.sum(case((is_gift, 0), else_=Share.amount)), 0),
            func.coalesce(func.sum(Share.given), 0),
            func.coalesce(func.sum(case((is_gift, Share.amount), else_=0)), 0),
        )
        .where(Share.member_id == user_id)
        .group_by(Share.currency)
        .order_by(Share.currency)
    )
    # PostgreSQL sums integers as NUMERIC: amounts are whole minor units, so they come back as int.
    return [
        TakenAndGiven(currency, int(earned), int(passed_on), int(received))
        for currency, earned, passed_on, received in rows
    ]


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


def _draw_gifts(
    session: Session, giver: User, recipient_id: int, amount: int, currency: str, transaction_id: int
) -> None:
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
