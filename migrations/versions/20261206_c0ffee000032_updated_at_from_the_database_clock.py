"""On PostgreSQL, problems', referrals' and members' ``updated_at`` set from the database's own
clock on every write (``marketplace.db.database_clock_statements``): the visitors' pages are kept
under the newest of them, which must follow the order writes commit in

Revision ID: c0ffee000032
Revises: c0ffee000031
Create Date: 2026-12-06 21:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

from marketplace.db import database_clock_drop_statements, database_clock_statements

revision: str = "c0ffee000032"
down_revision: str | None = "c0ffee000031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("problems", "referrals", "users")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        for statement in database_clock_statements(table).get(dialect, []):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        for statement in database_clock_drop_statements(table).get(dialect, []):
            op.execute(statement)
