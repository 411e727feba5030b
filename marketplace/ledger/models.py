"""The double-entry ledger: accounts, transactions, entries; the shares they pay; disputes.

Money is never stored as a balance: every figure is a sum of entries. Entries and transactions
are append-only and every transaction sums to zero per currency; the database enforces both
(``marketplace.ledger.ddl``). Shares are the payable units a settlement creates (one per chain
link, one for the candidate's thank-you, one per gift of a donation); their status is the
workflow state that the ledger's entries must agree with, which ``flask ledger verify`` checks.
"""

import enum
from datetime import datetime
from typing import cast

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db import Base, str_enum, utcnow
from marketplace.ledger import ddl
from marketplace.problems.models import Problem


class TransactionKind(enum.StrEnum):
    FUND = "fund"
    SETTLE = "settle"
    RELEASE = "release"
    CLAWBACK = "clawback"
    REFUND = "refund"
    PAYOUT = "payout"
    DONATION = "donation"
    PROCESSOR_FEE = "processor_fee"


class LedgerAccount(Base):
    """An account is only a name (``member:17:held``); what it holds is the sum of its entries."""

    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerTransaction(Base):
    """One movement of money, written once.

    ``fingerprint`` hashes what the transaction is (kind, links, reference and entries), so
    posting again under the same ``idempotency_key`` can tell a replay from a conflict.
    """

    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TransactionKind] = mapped_column(str_enum(TransactionKind, "transaction_kind"))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id"), index=True)
    introduction_id: Mapped[int | None] = mapped_column(ForeignKey("introductions.id"))
    reference: Mapped[str] = mapped_column(String(200), default="")
    memo: Mapped[str] = mapped_column(String(500), default="")
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    problem: Mapped[Problem | None] = relationship()
    entries: Mapped[list["LedgerEntry"]] = relationship(
        back_populates="transaction", order_by="LedgerEntry.id", viewonly=True
    )


class LedgerEntry(Base):
    """A signed amount on one account: positive money arrives, negative money leaves.

    The foreign key to the transaction is checked at commit: on SQLite a transaction's entries
    are written before the transaction row that seals them (see ``ddl.py``).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        CheckConstraint("length(currency) = 3 AND currency = lower(currency)", name="currency_code"),
        Index("ix_ledger_entries_account_currency", "account_id", "currency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_transactions.id", deferrable=True, initially="DEFERRED"), index=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries", viewonly=True)
    account: Mapped[LedgerAccount] = relationship(viewonly=True)


ddl.attach(cast(Table, LedgerEntry.__table__))


class ShareRole(enum.StrEnum):
    LINK = "link"
    CANDIDATE = "candidate"
    GIFT = "gift"


class ShareStatus(enum.StrEnum):
    HELD = "held"
    AVAILABLE = "available"
    PAYING = "paying"
    PAID = "paid"
    # The transfer came back (Stripe's transfer.reversed): the money waits for a platform admin.
    REVERSED = "reversed"
    CLAWED_BACK = "clawed_back"
    GIVEN = "given"


class Share(Base):
    """Money one member is owed from one problem, paid out (at most once) as one transfer.

    A settlement makes one share per chain link (``position`` 1 = top) and one for the
    candidate's thank-you; a donation makes ``gift`` shares drawn from the giver's shares
    (``source_share_id``), so every unit a member can be paid still traces to the problem whose
    charge funds its transfer. ``given`` is what was passed on; ``amount - given`` is payable.
    """

    __tablename__ = "ledger_shares"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("given >= 0 AND given <= amount", name="given_within_amount"),
        Index("ix_ledger_shares_member_status", "member_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role: Mapped[ShareRole] = mapped_column(str_enum(ShareRole, "share_role"))
    position: Mapped[int | None]
    amount: Mapped[int]
    given: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[ShareStatus] = mapped_column(str_enum(ShareStatus, "share_status"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    source_share_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_shares.id"))
    payout_attempts: Mapped[int] = mapped_column(default=0)
    transfer_reference: Mapped[str] = mapped_column(String(200), default="")
    # Why the payment provider refused the last transfer for good. While it is set the share
    # stays available but no payout is started: it waits for a change (a payout account that
    # becomes ready, an admin's retry), so a refusal is never retried in a loop.
    payout_refusal: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    problem: Mapped[Problem] = relationship()
    member: Mapped[User] = relationship()

    @property
    def payable(self) -> int:
        return self.amount - self.given


class DisputeStatus(enum.StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    REJECTED = "rejected"


class Dispute(Base):
    """A company's report that an accepted introduction failed, decided by a platform admin.

    A problem has at most one: a rejected dispute settles the problem, an upheld one refunds it.
    """

    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"), unique=True)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[DisputeStatus] = mapped_column(
        str_enum(DisputeStatus, "dispute_status"), default=DisputeStatus.OPEN, index=True
    )
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]

    problem: Mapped[Problem] = relationship()
    opened_by: Mapped[User] = relationship(foreign_keys=[opened_by_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])
