"""In-app notifications, each member's delivery preferences, and their digest hour."""

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, str_enum, utcnow


class Delivery(enum.StrEnum):
    IMMEDIATELY = "immediately"
    DIGEST = "digest"
    OFF = "off"


class Notification(Base):
    """One event for one member; written in the same transaction as the event itself."""

    __tablename__ = "notifications"
    __table_args__ = (
        # The event's own key (e.g. ``referral:12``) makes notifying twice a no-op.
        UniqueConstraint("user_id", "kind", "event_key"),
        Index("ix_notifications_inbox", "user_id", "read_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(40))
    event_key: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(300), default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    delivery: Mapped[Delivery] = mapped_column(str_enum(Delivery, "delivery"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # Set when the notification went out by e-mail, alone or in a digest.
    emailed_at: Mapped[datetime | None]


class NotificationPreference(Base):
    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivery: Mapped[Delivery] = mapped_column(str_enum(Delivery, "delivery"))


class DigestSchedule(Base):
    """When a member's daily digest goes out (their chosen hour, UTC) and when it last did."""

    __tablename__ = "digest_schedules"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    hour_utc: Mapped[int] = mapped_column(default=8)
    last_sent_on: Mapped[str | None] = mapped_column(String(10))
