"""Counting the SQL statements a request runs, ``Prepared`` ones included (docs/performance.md)."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from marketplace.db import db, prepared_statement_listeners

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class StatementLog(list[str]):
    def __str__(self) -> str:
        return "\n".join(f"{n:3}. {sql.splitlines()[0][:160]}" for n, sql in enumerate(self, start=1))


@contextmanager
def statements(app) -> Iterator[StatementLog]:
    """Every statement the app's engine runs inside the block, in order (transaction control
    statements such as BEGIN and COMMIT are not SQL statements the page asked for, and are left out)."""
    log = StatementLog()

    def record(conn, cursor, sql, params, context, executemany) -> None:
        if not sql.lstrip().upper().startswith(TRANSACTION_CONTROL):
            log.append(sql)

    with app.app_context():
        engines = db.engines
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    prepared_statement_listeners.append(log.append)
    try:
        yield log
    finally:
        prepared_statement_listeners.remove(log.append)
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
