"""A member's places, the referrals they sent and their introductions indexed with the order their
dashboard lists them in (newest first): each list read all of the member's rows and sorted them
to show the newest five

Revision ID: c0ffee000031
Revises: c0ffee000030
Create Date: 2026-12-06 05:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0ffee000031"
down_revision: str | None = "c0ffee000030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, the member's column, the index it had, the index that replaces it)
INDEXES = (
    ("referrals", "holder_id", "ix_referrals_holder_id", "ix_referrals_holder_newest"),
    ("referrals", "sender_id", "ix_referrals_sender_id", "ix_referrals_sender_newest"),
    ("introductions", "introducer_id", "ix_introductions_introducer_id", "ix_introductions_introducer_newest"),
)


def upgrade() -> None:
    for table, column, old, new in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(new, [column, "created_at", "id"])
            batch_op.drop_index(old)


def downgrade() -> None:
    for table, column, old, new in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(old, [column])
            batch_op.drop_index(new)
