"""payout refusals and account sync: a refused share waits; accounts are created from a recorded intent

Revision ID: c0ffee000009
Revises: c0ffee000008
Create Date: 2026-12-04 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision: str = "c0ffee000009"
down_revision: str | None = "c0ffee000008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_shares", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payout_refusal", sa.String(length=500), nullable=True))
    with op.batch_alter_table("payout_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("creation_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("requirement_errors", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("synced_at", marketplace.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column("stripe_id", existing_type=sa.String(length=255), nullable=True)
    # Accounts made before keys were random were created under the key naming their member.
    op.execute("UPDATE payout_accounts SET creation_key = 'account:user:' || user_id, requirement_errors = '[]'")
    with op.batch_alter_table("payout_accounts", schema=None) as batch_op:
        batch_op.alter_column("creation_key", existing_type=sa.String(length=255), nullable=False)
        batch_op.alter_column("requirement_errors", existing_type=sa.JSON(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_payout_accounts_creation_key"), ["creation_key"])


def downgrade() -> None:
    op.execute("DELETE FROM payout_accounts WHERE stripe_id IS NULL")
    with op.batch_alter_table("payout_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_payout_accounts_creation_key"), type_="unique")
        batch_op.alter_column("stripe_id", existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_column("synced_at")
        batch_op.drop_column("requirement_errors")
        batch_op.drop_column("creation_key")
    with op.batch_alter_table("ledger_shares", schema=None) as batch_op:
        batch_op.drop_column("payout_refusal")
