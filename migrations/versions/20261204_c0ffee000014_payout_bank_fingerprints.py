"""payout accounts: the fingerprints of the bank accounts behind them

Revision ID: c0ffee000014
Revises: c0ffee000013
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0ffee000014"
down_revision: str | None = "c0ffee000013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payout_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bank_fingerprints", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("payout_accounts", schema=None) as batch_op:
        batch_op.drop_column("bank_fingerprints")
