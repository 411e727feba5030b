"""The audit log's one table, append-only in the database itself."""

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db import Base, make_append_only, utcnow


class AuditEntry(Base):
    """One state change that matters: ``actor`` did ``action`` to the subject, at ``at`` from ``ip``.

    ``actor_id`` is None when the system acted (the worker, a periodic job, a payment webhook).
    ``problem_id`` names the problem the change belongs to, so that the problem page can show
    its history. ``detail`` is a small JSON object of ids and amounts, never a secret.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int]
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id"), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship()


make_append_only(cast(Table, AuditEntry.__table__))
