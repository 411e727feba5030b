"""A member's network: confirmed connections, private contact cards and their imports.

The reach index (``reach.py``) reads exactly ``connections(user_id, peer_id)`` and
``user_skills(user_id, skill_id)``; ``network_changes`` tells every process what changed since.
"""

import enum
from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db import Base, str_enum, utcnow

# Connections -----------------------------------------------------------------------------------


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    CANCELLED = "cancelled"


_PENDING = text("status = 'pending'")


class ConnectionRequest(Base):
    """One member asks another to connect, saying how they know each other; only a confirmed
    request makes a connection."""

    __tablename__ = "connection_requests"
    __table_args__ = (
        CheckConstraint("from_user_id <> to_user_id", name="not_self"),
        # One pending request per direction; the reverse one is confirmed along with it.
        Index(
            "uq_connection_requests_pending",
            "from_user_id",
            "to_user_id",
            unique=True,
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        ),
        Index("ix_connection_requests_to", "to_user_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    from_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    to_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    note: Mapped[str] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus, "request_status"), default=RequestStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]

    from_user: Mapped[User] = relationship(foreign_keys=[from_user_id])
    to_user: Mapped[User] = relationship(foreign_keys=[to_user_id])


class JoinInvitation(Base):
    """A member invited an address that has no account to join and connect (``invite_to_join``):
    once per member and address. When someone proves that address is theirs, the invitation
    becomes a connection request from the member who invited them."""

    __tablename__ = "join_invitations"
    __table_args__ = (
        UniqueConstraint("inviter_id", "email"),
        Index("ix_join_invitations_inviter_created", "inviter_id", "created_at"),
        Index("ix_join_invitations_email", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inviter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When it became a connection request (the address joined and proved it); None until then.
    joined_at: Mapped[datetime | None]

    inviter: Mapped[User] = relationship()


class Connection(Base):
    """One direction of a confirmed connection: each is stored as (a, b) and (b, a), so a member's
    connections are one primary-key range."""

    __tablename__ = "connections"
    __table_args__ = (CheckConstraint("user_id <> peer_id", name="not_self"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    peer: Mapped[User] = relationship(foreign_keys=[peer_id])


class ChangeKind(enum.StrEnum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    SKILLS = "skills"
    TRACK_RECORD = "track_record"
    APPEARANCE = "appearance"


class NetworkChange(Base):
    """The change log each process's reach index catches up from (see ``changes.py``).

    ``connect``/``disconnect`` carry both members and state the pair's new state; ``skills`` and
    ``track_record`` name one member whose current values are read from their tables;
    ``appearance`` names one member whose name, or whether they show it, changed (the names a
    process keeps for the reach's paths are read again).
    """

    __tablename__ = "network_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ChangeKind] = mapped_column(str_enum(ChangeKind, "network_change_kind"))
    a: Mapped[int]
    b: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


# Contact cards ---------------------------------------------------------------------------------


class CardSource(enum.StrEnum):
    MANUAL = "manual"
    LINKEDIN = "linkedin"
    VCARD = "vcard"


class ImportStatus(enum.StrEnum):
    PREVIEW = "preview"
    IMPORTING = "importing"
    DONE = "done"
    CANCELLED = "cancelled"


class ContactImport(Base):
    """A parsed file waiting for confirmation, then its progress: ``entries`` holds every parsed
    row with what will happen to it, so confirming never needs the file again."""

    __tablename__ = "contact_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    source: Mapped[CardSource] = mapped_column(str_enum(CardSource, "card_source"))
    status: Mapped[ImportStatus] = mapped_column(str_enum(ImportStatus, "import_status"), default=ImportStatus.PREVIEW)
    entries: Mapped[list] = mapped_column(JSON, deferred=True)
    total: Mapped[int]
    processed: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ContactCard(Base):
    """A private card about someone the owner knows, who may not be a member.

    ``email_key`` (the lower-cased e-mail) finds duplicates and members; ``tags`` is a
    comma-separated list of lower-case tags; ``search_text`` is every text field case- and
    accent-folded, so a search for "bjorn" finds "Björn" on either engine. A card written by an
    import still being confirmed in chunks carries ``staged_import_id`` and stays hidden until the
    import completes.
    """

    __tablename__ = "contact_cards"
    __table_args__ = (Index("ix_contact_cards_owner_email", "owner_id", "email_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    email_key: Mapped[str | None] = mapped_column(String(254))
    other_emails: Mapped[str] = mapped_column(Text, default="")
    company: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[str] = mapped_column(String(1000), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[CardSource] = mapped_column(str_enum(CardSource, "card_source"), default=CardSource.MANUAL)
    linkedin_url: Mapped[str | None] = mapped_column(String(500))
    connected_on: Mapped[date | None]
    search_text: Mapped[str] = mapped_column(Text, default="")
    staged_import_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_imports.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in self.tags.split(",") if tag]

    @property
    def other_email_list(self) -> list[str]:
        return [email for email in self.other_emails.split(",") if email]
