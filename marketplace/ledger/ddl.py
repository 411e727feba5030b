"""The ledger's rules, written into the database so that no code path (nor a hand-typed SQL
statement) can break them: every transaction sums to zero in each currency, and entries and
transactions are never updated or deleted.

A transaction is written in one order on both engines: its entries first, then its
``ledger_transactions`` row, which seals it.

- Sealing checks the whole: the transaction row is refused unless its entries (already written)
  exist and sum to zero in every currency. SQLite does this with an AFTER INSERT trigger;
  PostgreSQL with a DEFERRABLE INITIALLY DEFERRED constraint trigger, which checks at COMMIT.
- A sealed transaction is closed: a trigger refuses an entry whose transaction row exists.
- Entries cannot wait for a seal that never comes: their foreign key to the transaction is
  DEFERRABLE INITIALLY DEFERRED, checked at COMMIT. SQLite has no deferred triggers, but it has
  deferred foreign keys, and with the two triggers that is enough: at COMMIT every transaction
  was checked as a whole.
- UPDATE and DELETE on either table are refused by triggers. (TRUNCATE, which the PostgreSQL
  test suite uses between tests, fires no row triggers.)

``metadata.create_all`` applies these through ``attach``; migration ``c0ffee000003`` applies the
same statements, so change them only together with a new migration.
"""

from sqlalchemy import DDL, Table, event

SQLITE = [
    """
    CREATE TRIGGER ledger_entries_before_seal BEFORE INSERT ON ledger_entries
    WHEN EXISTS (SELECT 1 FROM ledger_transactions WHERE id = NEW.transaction_id)
    BEGIN SELECT RAISE(ABORT, 'ledger: this transaction is sealed; entries come before their transaction row'); END
    """,
    """
    CREATE TRIGGER ledger_transactions_balanced AFTER INSERT ON ledger_transactions
    WHEN NOT EXISTS (SELECT 1 FROM ledger_entries WHERE transaction_id = NEW.id)
      OR EXISTS (
        SELECT 1 FROM ledger_entries WHERE transaction_id = NEW.id GROUP BY currency HAVING SUM(amount) <> 0
      )
    BEGIN SELECT RAISE(ABORT, 'ledger: a transaction needs entries that sum to zero in each currency'); END
    """,
    *(
        f"""
        CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table}
        BEGIN SELECT RAISE(ABORT, 'ledger: {table} are append-only'); END
        """
        for table in ("ledger_entries", "ledger_transactions")
        for verb in ("update", "delete")
    ),
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS ledger_entries_before_seal",
    "DROP TRIGGER IF EXISTS ledger_transactions_balanced",
    *(
        f"DROP TRIGGER IF EXISTS {table}_no_{verb}"
        for table in ("ledger_entries", "ledger_transactions")
        for verb in ("update", "delete")
    ),
]

POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM ledger_entries WHERE transaction_id = NEW.id) THEN
        RAISE EXCEPTION 'ledger: transaction % has no entries', NEW.id USING ERRCODE = 'check_violation';
      END IF;
      IF EXISTS (
        SELECT 1 FROM ledger_entries WHERE transaction_id = NEW.id GROUP BY currency HAVING SUM(amount) <> 0
      ) THEN
        RAISE EXCEPTION 'ledger: transaction % does not sum to zero in each currency', NEW.id
          USING ERRCODE = 'check_violation';
      END IF;
      RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger: % are append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION ledger_entries_before_seal() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM ledger_transactions WHERE id = NEW.transaction_id) THEN
        RAISE EXCEPTION 'ledger: transaction % is sealed; entries come before their transaction row',
          NEW.transaction_id USING ERRCODE = 'restrict_violation';
      END IF;
      RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER ledger_entries_before_seal BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_before_seal()
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_transactions_balanced AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()
    """,
    *(
        f"""
        CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION ledger_append_only()
        """
        for table in ("ledger_entries", "ledger_transactions")
    ),
]

POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS ledger_entries_before_seal ON ledger_entries",
    "DROP TRIGGER IF EXISTS ledger_transactions_balanced ON ledger_transactions",
    *(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in ("ledger_entries", "ledger_transactions")),
    "DROP FUNCTION IF EXISTS ledger_check_balanced()",
    "DROP FUNCTION IF EXISTS ledger_append_only()",
    "DROP FUNCTION IF EXISTS ledger_entries_before_seal()",
]

STATEMENTS = {"sqlite": SQLITE, "postgresql": POSTGRESQL}
DROP_STATEMENTS = {"sqlite": SQLITE_DROP, "postgresql": POSTGRESQL_DROP}


def attach(entries_table: Table) -> None:
    """Create the rules with the tables: after ``ledger_entries``, the later of the two."""
    for dialect, statements in STATEMENTS.items():
        for statement in statements:
            # DDL runs its text through %-formatting; the statements' own % must survive it.
            ddl = DDL(statement.replace("%", "%%")).execute_if(dialect=dialect)
            event.listen(entries_table, "after_create", ddl)
