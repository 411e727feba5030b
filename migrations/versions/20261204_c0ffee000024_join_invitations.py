"""join invitations: a member invites an address that has no account to join and connect

Revision ID: c0ffee000024
Revises: c0ffee000025
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision: str = "c0ffee000024"
down_revision: str | None = "c0ffee000025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "join_invitations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("inviter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("joined_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["inviter_id"], ["users.id"], name=op.f("fk_join_invitations_inviter_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_join_invitations")),
        sa.UniqueConstraint("inviter_id", "email", name=op.f("uq_join_invitations_inviter_id")),
    )
    op.create_index("ix_join_invitations_email", "join_invitations", ["email"], unique=False)
    op.create_index(
        "ix_join_invitations_inviter_created", "join_invitations", ["inviter_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_join_invitations_inviter_created", table_name="join_invitations")
    op.drop_index("ix_join_invitations_email", table_name="join_invitations")
    op.drop_table("join_invitations")
