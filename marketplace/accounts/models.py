"""Users with their skills, companies, memberships with roles, invitations and API tokens."""

import enum
from datetime import datetime
from typing import cast

from flask_login import UserMixin
from sqlalchemy import Column, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from marketplace.accounts.addresses import skeleton
from marketplace.db import Base, stamp_with_database_clock, str_enum, utcnow, write_time


class Skill(Base):
    """One entry of the normalised skill vocabulary (``skills.py``): what members hold and problems need."""

    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))


user_skills = Table(
    "user_skills",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("skill_id", ForeignKey("skills.id"), primary_key=True, index=True),
)


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EMPLOYEE = "employee"

    @property
    def manages(self) -> bool:
        """Owners and admins review introductions, invite people and fund bounties."""
        return self in (Role.OWNER, Role.ADMIN)


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # What the address looks like (``addresses.skeleton``), kept with it: a new address that looks
    # like a member's is refused (``service.check_new_address``).
    email_skeleton: Mapped[str] = mapped_column(String(1024), index=True, default="", server_default="")
    name: Mapped[str] = mapped_column(String(120))
    headline: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    is_platform_admin: Mapped[bool] = mapped_column(default=False)
    # Whether companies and people beyond one's own connections see this member's name on a
    # chain; anonymous links are still paid: nobody has to expose their network to earn from it.
    show_name_on_chains: Mapped[bool] = mapped_column(default=True)
    # Part of every session and "remember me" cookie (``get_id``); moving it on ends them all.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    # When the member last proved they read mail at ``email`` (an e-mailed link); None until they
    # do, and again after the address changes. E-mail is identity here: invitations, referrals and
    # introductions are addressed to it, so an unproven address is not trusted with them.
    email_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Moved by every write (the landing page's version stamp, docs/performance.md "Caching").
    updated_at: Mapped[datetime] = mapped_column(default=write_time(), onupdate=write_time(), index=True)

    skills: Mapped[list[Skill]] = relationship(secondary=user_skills, order_by=Skill.slug)
    memberships: Mapped[list["Membership"]] = relationship(back_populates="user")

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @validates("email")
    def _keep_skeleton(self, key: str, email: str) -> str:
        self.email_skeleton = skeleton(email)
        return email

    def get_id(self) -> str:
        """What Flask-Login signs into the session and the remember cookie: the id and the session
        version, so a cookie made before the version moved names no one."""
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


# Landing pages are kept under the newest ``updated_at`` of members among others (their names).
stamp_with_database_clock(cast(Table, User.__table__))


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="company")


class Membership(Base):
    __tablename__ = "memberships"

    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")


class Invitation(Base):
    """An e-mailed invitation to join a company; the token is stored only as a hash. A manager
    may withdraw it until it is accepted; inviting the address again renews it."""

    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("company_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]

    company: Mapped[Company] = relationship()
    invited_by: Mapped[User] = relationship()


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is kept, the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class OneTimeLink:
    """A link e-mailed to a member that works once, until ``expires_at``: its token is random and
    opaque, and only its SHA-256 is kept."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PasswordReset(OneTimeLink, Base):
    """A password reset link; a used link or a password change voids the user's others."""

    __tablename__ = "password_resets"


class EmailVerification(OneTimeLink, Base):
    """A link that proves a member reads mail at their address; using one, or changing the
    address, voids the member's others."""

    __tablename__ = "email_verifications"

    user: Mapped[User] = relationship()
