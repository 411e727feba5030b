"""checkout_sessions: attempts recorded before Stripe answers, with their key's token and parameters

Revision ID: c0ffee000008
Revises: c0ffee000011
Create Date: 2026-12-04 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision: str = "c0ffee000008"
down_revision: str | None = "c0ffee000011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkout_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_token", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("request", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("checked_at", marketplace.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column("stripe_id", existing_type=sa.String(length=255), nullable=True)
        batch_op.alter_column("url", existing_type=sa.Text(), nullable=True)
    # Sessions made before attempts had tokens: a token that names the row, never a Stripe key again.
    op.execute("UPDATE checkout_sessions SET request_token = 'before-tokens-' || id, request = '{}'")
    with op.batch_alter_table("checkout_sessions", schema=None) as batch_op:
        batch_op.alter_column("request_token", existing_type=sa.String(length=36), nullable=False)
        batch_op.alter_column("request", existing_type=sa.JSON(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_checkout_sessions_request_token"), ["request_token"])


def downgrade() -> None:
    op.execute("DELETE FROM checkout_sessions WHERE stripe_id IS NULL")
    with op.batch_alter_table("checkout_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_checkout_sessions_request_token"), type_="unique")
        batch_op.alter_column("url", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("stripe_id", existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_column("checked_at")
        batch_op.drop_column("request")
        batch_op.drop_column("request_token")
