"""referrals.recipient_email and introductions.candidate_email indexed: a confirmed member's
dashboard lists what was sent or introduced to their address, which read every referral and
every introduction without them

Revision ID: c0ffee000029
Revises: c0ffee000028
Create Date: 2026-12-05 05:50:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0ffee000029"
down_revision: str | None = "c0ffee000028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (("referrals", "recipient_email"), ("introductions", "candidate_email"))


def upgrade() -> None:
    for table, column in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f"ix_{table}_{column}", [column])


def downgrade() -> None:
    for table, column in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_{column}")
