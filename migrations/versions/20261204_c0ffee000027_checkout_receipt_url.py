"""checkout sessions: the receipt Stripe gives the charge that paid the bounty

Revision ID: c0ffee000027
Revises: c0ffee000024
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0ffee000027"
down_revision: str | None = "c0ffee000024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkout_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkout_sessions", schema=None) as batch_op:
        batch_op.drop_column("receipt_url")
