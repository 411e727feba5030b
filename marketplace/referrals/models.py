"""Referrals (one hop of a chain each), double opt-in introductions, and the attribution records
that say, beyond anyone's rewriting, who holds each place and who was introduced, consented and
accepted (``attribution.py``)."""

import enum
from datetime import datetime
from typing import cast

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db import Base, make_append_only, stamp_with_database_clock, str_enum, utcnow, write_time
from marketplace.problems.models import Problem


class ReferralStatus(enum.StrEnum):
    SENT = "sent"
    CLAIMED = "claimed"
    EXPIRED = "expired"


class Referral(Base):
    """One hop of a chain: ``sender`` passed the problem to a recipient (a user or an e-mail).

    Sender, recipient, parent, depth, token and creation time are covered by ``chain_hash`` and
    never change; only the claim (who took the place, when) and the status are written later.
    A root referral has no parent: its sender is a company member sharing the problem, or nobody
    when a member picked the problem from the public board.
    """

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint("recipient_user_id IS NOT NULL OR recipient_email IS NOT NULL", name="has_recipient"),
        CheckConstraint("depth >= 1", name="depth_positive"),
        # First touch: a member holds at most one claimed place per problem.
        UniqueConstraint("problem_id", "holder_id"),
        Index("ix_referrals_recipient_user", "recipient_user_id", "problem_id"),
        # What was forwarded to a member's confirmed address, for their dashboard (docs/performance.md).
        Index("ix_referrals_recipient_email", "recipient_email"),
        # A member's places and what they sent, newest first: their dashboard reads the newest few
        # of each in this order, and stops there (docs/performance.md, "Indexes and rendering").
        Index("ix_referrals_holder_newest", "holder_id", "created_at", "id"),
        Index("ix_referrals_sender_newest", "sender_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recipient_email: Mapped[str | None] = mapped_column(String(254))
    note: Mapped[str] = mapped_column(Text, default="")
    token: Mapped[str] = mapped_column(String(64), unique=True)
    depth: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    chain_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[ReferralStatus] = mapped_column(
        str_enum(ReferralStatus, "referral_status"), default=ReferralStatus.SENT
    )
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None]
    # Moved by every write (the landing page's version stamp, docs/performance.md "Caching").
    updated_at: Mapped[datetime] = mapped_column(default=write_time(), onupdate=write_time(), index=True)

    problem: Mapped[Problem] = relationship()
    parent: Mapped["Referral | None"] = relationship(remote_side=[id])
    sender: Mapped[User | None] = relationship(foreign_keys=[sender_id])
    recipient_user: Mapped[User | None] = relationship(foreign_keys=[recipient_user_id])
    holder: Mapped[User | None] = relationship(foreign_keys=[holder_id])


class IntroductionStatus(enum.StrEnum):
    AWAITING_CANDIDATE = "awaiting_candidate"
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"

    @property
    def is_live(self) -> bool:
        """A live introduction owns its candidate for the problem."""
        return self in (self.AWAITING_CANDIDATE, self.PROPOSED, self.ACCEPTED)


class Introduction(Base):
    __tablename__ = "introductions"
    __table_args__ = (
        Index("ix_introductions_candidate", "problem_id", "candidate_email"),
        # Who was introduced at a member's confirmed address, for their dashboard (docs/performance.md).
        Index("ix_introductions_candidate_email", "candidate_email"),
        # A member's introductions, newest first, as their dashboard reads them.
        Index("ix_introductions_introducer_newest", "introducer_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"), index=True)
    introducer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The introducer's place in the chain; None when a company member introduces directly.
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"))
    candidate_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    candidate_email: Mapped[str] = mapped_column(String(254))
    candidate_name: Mapped[str] = mapped_column(String(120), default="")
    message: Mapped[str] = mapped_column(Text)
    consent_token: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[IntroductionStatus] = mapped_column(
        str_enum(IntroductionStatus, "introduction_status"),
        default=IntroductionStatus.AWAITING_CANDIDATE,
    )
    candidate_note: Mapped[str] = mapped_column(Text, default="")
    decision_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    consented_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    problem: Mapped[Problem] = relationship()
    introducer: Mapped[User] = relationship(foreign_keys=[introducer_id])
    referral: Mapped[Referral | None] = relationship()
    candidate_user: Mapped[User | None] = relationship(foreign_keys=[candidate_user_id])

    @property
    def is_self_introduction(self) -> bool:
        return self.candidate_user_id is not None and self.candidate_user_id == self.introducer_id


class AttributionKind(enum.StrEnum):
    CLAIM = "claim"
    INTRODUCTION = "introduction"
    CONSENT = "consent"
    ACCEPTANCE = "acceptance"


class AttributionRecord(Base):
    """One fact that decides who is paid, written once: a claim, an introduction, a consent or an
    acceptance.

    The records of a problem form a hash chain (``seq`` 1, 2, ...): ``hash`` is the SHA-256 of
    the previous record's hash and ``content``, the canonical JSON of the fact. The database
    refuses UPDATE and DELETE; ``flask referrals verify`` recomputes the chain and compares the
    referrals, introductions and shares with it (``attribution.py``).
    """

    __tablename__ = "attribution_records"
    __table_args__ = (UniqueConstraint("problem_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"))
    seq: Mapped[int]
    kind: Mapped[AttributionKind] = mapped_column(str_enum(AttributionKind, "attribution_kind"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    introduction_id: Mapped[int | None] = mapped_column(ForeignKey("introductions.id"), index=True)
    content: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


make_append_only(cast(Table, AttributionRecord.__table__))
# A referral's landing page is kept under the newest ``updated_at`` (``chains.last_change``).
stamp_with_database_clock(cast(Table, Referral.__table__))
