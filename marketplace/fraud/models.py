"""A settlement held for review because its chain raised fraud signals."""

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db import Base, str_enum, utcnow
from marketplace.problems.models import Problem


class FraudFlagStatus(enum.StrEnum):
    OPEN = "open"
    CLEARED = "cleared"
    UPHELD = "upheld"


class FraudFlag(Base):
    """The evidence against one accepted introduction's chain, and a platform admin's decision.

    While the flag is open its problem is ``disputed``, so the shares stay held. A problem has at
    most one: it is settled once.
    """

    __tablename__ = "fraud_flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"), unique=True)
    introduction_id: Mapped[int] = mapped_column(ForeignKey("introductions.id"))
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[FraudFlagStatus] = mapped_column(
        str_enum(FraudFlagStatus, "fraud_flag_status"), default=FraudFlagStatus.OPEN, index=True
    )
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(Text, default="")

    problem: Mapped[Problem] = relationship()
    decided_by: Mapped[User | None] = relationship()
