"""attribution records and the audit log, both append-only; the records of existing claims,
introductions, consents and acceptances are written from the rows

Revision ID: c0ffee000011
Revises: c0ffee000010
Create Date: 2026-12-04 14:13:15.984855
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

import marketplace.db
from marketplace.db import append_only_drop_statements, append_only_statements
from marketplace.referrals import attribution

APPEND_ONLY = ("audit_log", "attribution_records")

revision: str = "c0ffee000011"
down_revision: str | None = "c0ffee000010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("problem_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_audit_log_actor_id_users")),
        sa.ForeignKeyConstraint(["problem_id"], ["problems.id"], name=op.f("fk_audit_log_problem_id_problems")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_problem_id"), ["problem_id"], unique=False)
        batch_op.create_index("ix_audit_log_subject", ["subject_type", "subject_id"], unique=False)

    op.create_table(
        "attribution_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("problem_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "claim",
                "introduction",
                "consent",
                "acceptance",
                name="attribution_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("referral_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("introduction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["introduction_id"], ["introductions.id"], name=op.f("fk_attribution_records_introduction_id_introductions")
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"], ["problems.id"], name=op.f("fk_attribution_records_problem_id_problems")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_attribution_records_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribution_records")),
        sa.UniqueConstraint("problem_id", "seq", name=op.f("uq_attribution_records_problem_id")),
    )
    with op.batch_alter_table("attribution_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attribution_records_introduction_id"), ["introduction_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attribution_records_referral_id"), ["referral_id"], unique=False)

    # No UPDATE or DELETE, ever: the same triggers ``metadata.create_all`` installs (marketplace/db.py).
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for statement in append_only_statements(table).get(dialect, []):
            op.execute(statement)
    _record_existing_attribution()


def _record_existing_attribution() -> None:
    """Claims, introductions, consents and acceptances made before the records existed get their
    records, in the order they happened, so that ``flask referrals verify`` covers them too."""
    session = Session(bind=op.get_bind())
    attribution.backfill(session)
    session.flush()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        for statement in append_only_drop_statements(table).get(dialect, []):
            op.execute(statement)
    with op.batch_alter_table("attribution_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attribution_records_referral_id"))
        batch_op.drop_index(batch_op.f("ix_attribution_records_introduction_id"))

    op.drop_table("attribution_records")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_subject")
        batch_op.drop_index(batch_op.f("ix_audit_log_problem_id"))

    op.drop_table("audit_log")
