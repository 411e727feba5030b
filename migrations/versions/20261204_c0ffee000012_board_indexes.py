"""board indexes: one per sort order of the board, replacing the one no query used, and
problems.updated_at for the visitors' page cache stamp

Revision ID: c0ffee000012
Revises: c0ffee000009
Create Date: 2026-12-04 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0ffee000012"
down_revision: str | None = "c0ffee000009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.drop_index("ix_problems_board")
        batch_op.create_index("ix_problems_board_newest", ["visibility", "status", "published_at", "id"])
        batch_op.create_index("ix_problems_board_bounty", ["visibility", "status", "bounty_amount", "id"])
        batch_op.create_index("ix_problems_board_closing", ["visibility", "status", "expires_at", "id"])
        batch_op.create_index(batch_op.f("ix_problems_updated_at"), ["updated_at"])


def downgrade() -> None:
    with op.batch_alter_table("problems", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_problems_updated_at"))
        batch_op.drop_index("ix_problems_board_closing")
        batch_op.drop_index("ix_problems_board_bounty")
        batch_op.drop_index("ix_problems_board_newest")
        batch_op.create_index("ix_problems_board", ["visibility", "status", "created_at"])
