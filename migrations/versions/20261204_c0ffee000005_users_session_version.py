"""users.session_version: log-out, password changes and "log out everywhere" end sessions

Revision ID: c0ffee000005
Revises: c0ffee000004
Create Date: 2026-12-04 12:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0ffee000005"
down_revision: str | None = "c0ffee000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "session_version",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                server_default="1",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_version")
