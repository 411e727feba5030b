"""referrals.updated_at and users.updated_at: with problems.updated_at, the version stamp of
the landing page a referral link opens

Revision ID: c0ffee000028
Revises: c0ffee000027
Create Date: 2026-12-04 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision: str = "c0ffee000028"
down_revision: str | None = "c0ffee000027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("referrals", "users")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("updated_at", marketplace.db.UTCDateTime(timezone=True), nullable=True))
        # A row written before this column existed last changed no later than it was created.
        op.execute(f"UPDATE {table} SET updated_at = created_at")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("updated_at", existing_type=marketplace.db.UTCDateTime(timezone=True), nullable=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_updated_at"), ["updated_at"])


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_updated_at"))
            batch_op.drop_column("updated_at")
