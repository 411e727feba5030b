"""ledger: accounts, transactions, entries, shares and disputes, with the database rules of the ledger

Revision ID: c0ffee000003
Revises: 2174a6aa0f92
Create Date: 2026-11-28 06:02:37.840970
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

import marketplace.db
from marketplace.ledger import ddl
from marketplace.ledger.accounts import STRIPE_BALANCE, escrow_account
from marketplace.ledger.posting import Entry, post

revision: str = "c0ffee000003"
down_revision: str | None = "2174a6aa0f92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("problem_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("opened_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "upheld",
                "rejected",
                name="dispute_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("resolved_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=False),
        sa.Column("opened_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", marketplace.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["opened_by_id"], ["users.id"], name=op.f("fk_disputes_opened_by_id_users")),
        sa.ForeignKeyConstraint(["problem_id"], ["problems.id"], name=op.f("fk_disputes_problem_id_problems")),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["users.id"], name=op.f("fk_disputes_resolved_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
        sa.UniqueConstraint("problem_id", name=op.f("uq_disputes_problem_id")),
    )
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disputes_status"), ["status"], unique=False)

    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "fund",
                "settle",
                "release",
                "clawback",
                "refund",
                "payout",
                "donation",
                "processor_fee",
                name="transaction_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("problem_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("introduction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("memo", sa.String(length=500), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["introduction_id"], ["introductions.id"], name=op.f("fk_ledger_transactions_introduction_id_introductions")
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"], ["problems.id"], name=op.f("fk_ledger_transactions_problem_id_problems")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_transactions_problem_id"), ["problem_id"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_entries_amount_nonzero")),
        sa.CheckConstraint(
            "length(currency) = 3 AND currency = lower(currency)", name=op.f("ck_ledger_entries_currency_code")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.id"], name=op.f("fk_ledger_entries_account_id_ledger_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_account_currency", ["account_id", "currency"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entries_transaction_id"), ["transaction_id"], unique=False)

    op.create_table(
        "ledger_shares",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("problem_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "link", "candidate", "gift", name="share_role", native_enum=False, create_constraint=True, length=32
            ),
            nullable=False,
        ),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("amount", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("given", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "held",
                "available",
                "paying",
                "paid",
                "reversed",
                "clawed_back",
                "given",
                name="share_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_share_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("payout_attempts", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transfer_reference", sa.String(length=200), nullable=False),
        sa.Column("created_at", marketplace.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_ledger_shares_amount_not_negative")),
        sa.CheckConstraint("given >= 0 AND given <= amount", name=op.f("ck_ledger_shares_given_within_amount")),
        sa.ForeignKeyConstraint(["member_id"], ["users.id"], name=op.f("fk_ledger_shares_member_id_users")),
        sa.ForeignKeyConstraint(["problem_id"], ["problems.id"], name=op.f("fk_ledger_shares_problem_id_problems")),
        sa.ForeignKeyConstraint(
            ["source_share_id"], ["ledger_shares.id"], name=op.f("fk_ledger_shares_source_share_id_ledger_shares")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_shares_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_shares")),
    )
    with op.batch_alter_table("ledger_shares", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_shares_member_status", ["member_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_shares_problem_id"), ["problem_id"], unique=False)

    # The ledger's rules (sums checked at commit, append-only tables): see marketplace/ledger/ddl.py.
    for statement in ddl.STATEMENTS.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    _fund_open_problems()


def _fund_open_problems() -> None:
    """Problems opened before the ledger existed get the ``fund`` transaction that opening a
    problem now writes, so that their escrow holds the bounty they were funded with."""
    connection = op.get_bind()
    funded = connection.execute(
        sa.text("SELECT id, bounty_amount, currency FROM problems WHERE status = 'open' AND funded_at IS NOT NULL")
    ).all()
    session = Session(bind=connection)
    for problem_id, amount, currency in funded:
        entries = [Entry(STRIPE_BALANCE, -amount, currency), Entry(escrow_account(problem_id), amount, currency)]
        post(session, "fund", f"fund:problem:{problem_id}", entries, problem_id=problem_id, reference="before-ledger")
    session.flush()


def downgrade() -> None:
    for statement in ddl.DROP_STATEMENTS.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    with op.batch_alter_table("ledger_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_shares_problem_id"))
        batch_op.drop_index("ix_ledger_shares_member_status")

    op.drop_table("ledger_shares")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_transaction_id"))
        batch_op.drop_index("ix_ledger_entries_account_currency")

    op.drop_table("ledger_entries")
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_problem_id"))

    op.drop_table("ledger_transactions")
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disputes_status"))

    op.drop_table("disputes")
    op.drop_table("ledger_accounts")
