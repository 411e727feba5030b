"""The network's change log records a member's change of name, or of whether they show it
(``appearance``): each process keeps the names its reach paths show, and forgets a member's when
the log says it changed

Revision ID: c0ffee000033
Revises: c0ffee000032
Create Date: 2026-12-07 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0ffee000033"
down_revision: str | None = "c0ffee000032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("connect", "disconnect", "skills", "track_record")
AFTER = (*BEFORE, "appearance")


def _kind(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="network_change_kind", native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    with op.batch_alter_table("network_changes", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=_kind(BEFORE), type_=_kind(AFTER), existing_nullable=False)


def downgrade() -> None:
    op.execute("DELETE FROM network_changes WHERE kind = 'appearance'")
    with op.batch_alter_table("network_changes", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=_kind(AFTER), type_=_kind(BEFORE), existing_nullable=False)
