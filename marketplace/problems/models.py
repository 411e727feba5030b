"""Problems posted by companies, with their bounty and lifecycle (docs/ledger.md, "Problem states
and escrow")."""

import enum
from datetime import datetime
from typing import cast

from sqlalchemy import DDL, JSON, CheckConstraint, Column, ForeignKey, Index, String, Table, Text, event, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Company, Skill, User
from marketplace.db import Base, stamp_with_database_clock, str_enum, utcnow, write_time

problem_skills = Table(
    "problem_skills",
    Base.metadata,
    Column("problem_id", ForeignKey("problems.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", ForeignKey("skills.id"), primary_key=True, index=True),
)


class ProblemStatus(enum.StrEnum):
    DRAFT = "draft"
    AWAITING_PAYMENT = "awaiting_payment"
    OPEN = "open"
    MATCHED = "matched"
    IN_GUARANTEE = "in_guarantee"
    DISPUTED = "disputed"
    SETTLED = "settled"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class Problem(Base):
    __tablename__ = "problems"
    __table_args__ = (
        CheckConstraint("bounty_amount > 0", name="bounty_positive"),
        CheckConstraint("max_depth BETWEEN 1 AND 12", name="max_depth_range"),
        CheckConstraint("guarantee_days BETWEEN 0 AND 365", name="guarantee_days_range"),
        # The board filters on visibility and status and sorts one of three ways; each sort has
        # an index in its order (read backwards for the descending ones), so a page is read from
        # the index without sorting every open problem.
        Index("ix_problems_board_newest", "visibility", "status", "published_at", "id"),
        Index("ix_problems_board_bounty", "visibility", "status", "bounty_amount", "id"),
        Index("ix_problems_board_closing", "visibility", "status", "expires_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    bounty_amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    split_rule: Mapped[str] = mapped_column(String(32))
    split_params: Mapped[dict] = mapped_column(JSON, default=dict)
    platform_fee_bps: Mapped[int]
    candidate_share_bps: Mapped[int] = mapped_column(default=0)
    max_depth: Mapped[int] = mapped_column(default=6)
    guarantee_days: Mapped[int] = mapped_column(default=30)
    visibility: Mapped[Visibility] = mapped_column(str_enum(Visibility, "visibility"))
    status: Mapped[ProblemStatus] = mapped_column(
        str_enum(ProblemStatus, "problem_status"), default=ProblemStatus.DRAFT, index=True
    )
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=write_time(), onupdate=write_time(), index=True)
    published_at: Mapped[datetime | None]
    funded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    company: Mapped[Company] = relationship()
    created_by: Mapped[User] = relationship()
    skills: Mapped[list[Skill]] = relationship(secondary=problem_skills, order_by=Skill.slug)

    @property
    def is_open(self) -> bool:
        return self.status == ProblemStatus.OPEN


# The board's text search matches a substring of the title or the description, lower-cased
# (``problems.service._board_select``). On PostgreSQL a trigram index on each makes that a
# lookup instead of reading every problem (docs/performance.md, "Indexes and rendering"); SQLite
# has no such index and reads them all, which the embedded engine's sizes allow. The extension
# comes with the table wherever the schema is made from the models (tests, benchmarks).
event.listen(
    Problem.__table__, "before_create", DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql")
)
for _column in ("title", "description"):
    Index(
        f"ix_problems_{_column}_trigrams",
        func.lower(Problem.__table__.c[_column]).label(f"{_column}_lower"),
        postgresql_using="gin",
        postgresql_ops={f"{_column}_lower": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")

# Visitors' pages are kept under the newest ``updated_at`` (``problems.service.last_change``).
stamp_with_database_clock(cast(Table, Problem.__table__))
