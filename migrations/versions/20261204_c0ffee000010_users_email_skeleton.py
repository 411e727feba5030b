"""users.email_skeleton: what each address looks like, so a look-alike address is refused

Revision ID: c0ffee000010
Revises: c0ffee000007
Create Date: 2026-12-04 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketplace.accounts.addresses import skeleton

revision: str = "c0ffee000010"
down_revision: str | None = "c0ffee000007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_skeleton", sa.String(length=1024), server_default="", nullable=False))
        batch_op.create_index(batch_op.f("ix_users_email_skeleton"), ["email_skeleton"], unique=False)
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String))
    connection = op.get_bind()
    for user_id, email in connection.execute(sa.select(users.c.id, users.c.email)).all():
        connection.execute(
            sa.text("UPDATE users SET email_skeleton = :skeleton WHERE id = :id"),
            {"skeleton": skeleton(email), "id": user_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_email_skeleton"))
        batch_op.drop_column("email_skeleton")
