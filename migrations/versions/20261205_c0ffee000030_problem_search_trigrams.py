"""Trigram indexes on lower(title) and lower(description) of problems, on PostgreSQL: the
board's text search matches a substring, which read every problem without them

Revision ID: c0ffee000030
Revises: c0ffee000029
Create Date: 2026-12-05 06:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0ffee000030"
down_revision: str | None = "c0ffee000029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("title", "description")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no trigram index; its board search reads every problem.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        op.execute(f"CREATE INDEX ix_problems_{column}_trigrams ON problems USING gin (lower({column}) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"DROP INDEX ix_problems_{column}_trigrams")
