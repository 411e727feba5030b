"""``flask ledger verify``: silent on a sound ledger, and on tampering a non-zero exit with one
readable line per broken invariant. The tampering goes around the database's own rules the way
only someone with the keys could: dropping a trigger, switching foreign keys off, editing rows
of tables that are not append-only."""

from contextlib import contextmanager

import pytest
from sqlalchemy import select, text

from marketplace.db import db
from marketplace.ledger import ddl
from marketplace.ledger.models import Share
from tests import builders as build


@pytest.fixture
def ledger(session, world, open_problem):
    """One open problem, one settled (released at once) and one in its guarantee period."""
    open_problem(title="Still open problem")
    for title, days in (("Settled problem here", 0), ("Guaranteed problem here", 30)):
        problem = open_problem(title=title, guarantee_days=days)
        build.accepted(session, world.owner, problem, [world.ann, world.bob, world.cleo])
    session.commit()


@contextmanager
def raw_connection():
    """A connection that commits what it is given, and gets no favours from the app's session."""
    with db.engine.connect() as connection:
        yield connection
        connection.commit()


def statement_creating(trigger: str) -> str:
    return next(statement for statement in ddl.STATEMENTS[db.engine.dialect.name] if f"TRIGGER {trigger} " in statement)


def verify(runner):
    result = runner.invoke(args=["ledger", "verify"])
    return result.exit_code, result.output.splitlines()


def test_a_sound_ledger_verifies(ledger, runner):
    assert verify(runner) == (0, ["the ledger verifies"])


def test_an_unbalanced_transaction_written_without_its_trigger_is_reported(ledger, runner):
    balanced_trigger = "ledger_transactions_balanced"
    drop = f"DROP TRIGGER {balanced_trigger}" + (
        " ON ledger_transactions" if db.engine.dialect.name != "sqlite" else ""
    )
    try:
        with raw_connection() as connection:
            connection.execute(text(drop))
            connection.execute(
                text(
                    "INSERT INTO ledger_entries (transaction_id, account_id, amount, currency) "
                    "VALUES (9999, (SELECT id FROM ledger_accounts WHERE code = 'platform:fees'), 1, 'usd')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO ledger_transactions (id, kind, idempotency_key, reference, memo, fingerprint, "
                    "created_at) VALUES (9999, 'processor_fee', 'tamper:1', '', '', 'forged', CURRENT_TIMESTAMP)"
                )
            )
        code, lines = verify(runner)
    finally:
        with raw_connection() as connection:
            connection.execute(text(f"DROP TRIGGER IF EXISTS {drop.removeprefix('DROP TRIGGER ')}"))
            connection.execute(text(statement_creating(balanced_trigger)))

    assert code == 1
    assert "transaction 9999 (tamper:1): its usd entries sum to +1, not 0" in lines
    assert "transaction 9999 (tamper:1): its entries are not the ones it was posted with" in lines
    assert "account platform:fees: the ledger says" not in lines  # Not a member account.
    assert lines[-1] == f"the ledger does not verify: {len(lines) - 1} problem(s)"


def test_an_orphan_entry_written_with_foreign_keys_off_is_reported(ledger, runner):
    with raw_connection() as connection:
        if db.engine.dialect.name == "sqlite":
            connection.exec_driver_sql("COMMIT")  # PRAGMA foreign_keys is ignored inside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            connection.exec_driver_sql("BEGIN")
        else:
            connection.execute(text("SET LOCAL session_replication_role = replica"))  # No FK triggers.
        connection.execute(
            text(
                "INSERT INTO ledger_entries (transaction_id, account_id, amount, currency) "
                "VALUES (4242, (SELECT id FROM ledger_accounts WHERE code = 'platform:fees'), -7, 'usd')"
            )
        )
    code, lines = verify(runner)
    if db.engine.dialect.name == "sqlite":
        with raw_connection() as connection:
            connection.exec_driver_sql("COMMIT")
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            connection.exec_driver_sql("BEGIN")
    assert code == 1
    assert any(
        line.startswith("entry ") and line.endswith("orphan, its transaction 4242 does not exist") for line in lines
    )


def test_shares_and_problem_states_that_disagree_with_the_ledger_are_reported(ledger, runner, session, world):
    cleo_share = session.scalar(select(Share).where(Share.member_id == world.cleo.id, Share.status == "held"))
    guaranteed = cleo_share.problem_id
    session.commit()
    with raw_connection() as connection:
        connection.execute(text("UPDATE ledger_shares SET status = 'paid' WHERE id = :id"), {"id": cleo_share.id})
        connection.execute(text("UPDATE problems SET status = 'open' WHERE id = :id"), {"id": guaranteed})

    code, lines = verify(runner)

    assert code == 1
    cleo = world.cleo.id
    assert f"account member:{cleo}:held: the ledger says 81000 usd, its shares say 0" in lines
    assert f"account member:{cleo}:paid: the ledger says 0 usd, its shares say 81000" in lines
    assert f"share {cleo_share.id} is paid: it was paid out 0 time(s)" in lines
    assert f"problem {guaranteed} is open: its escrow holds 0 usd, it should hold 100000" in lines
    assert f"share {cleo_share.id} is paid, but its problem {guaranteed} is open" in lines
