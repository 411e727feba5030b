"""One row per (member, Idempotency-Key): what was asked, and once answered, the answer."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, utcnow


class IdempotencyKey(Base):
    """A key a member sent with an action.

    ``request`` fingerprints the method, path and body, so the same key on another request is
    refused instead of answered with an unrelated response. ``status`` and ``body`` are empty
    while the action runs (until ``locked_until``); they are written in the action's own
    transaction, so a saved answer exists exactly when the action's effects do.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    request: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime]
