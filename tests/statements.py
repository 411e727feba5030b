"""Counting the SQL statements a request runs, ``Prepared`` ones included, and the round trips
they take to the server (docs/performance.md)."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import event

from marketplace.db import db, prepared_statement_listeners

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class StatementLog(list[str]):
    """The statements, in order; ``round_trips`` counts how many times they went to the server
    (statements read ahead together go in one, ``db.reading_ahead``)."""

    round_trips: int = 0

    def sent(self, sqls: Sequence[str]) -> None:
        self.extend(sqls)
        self.round_trips += 1

    def __str__(self) -> str:
        return "\n".join(f"{n:3}. {sql.splitlines()[0][:160]}" for n, sql in enumerate(self, start=1))


@contextmanager
def statements(app) -> Iterator[StatementLog]:
    """Every statement the app's engine runs inside the block, in order (transaction control
    statements such as BEGIN and COMMIT are not SQL statements the page asked for, and are left out)."""
    log = StatementLog()

    def record(conn, cursor, sql, params, context, executemany) -> None:
        if not sql.lstrip().upper().startswith(TRANSACTION_CONTROL):
            log.sent([sql])

    with app.app_context():
        engines = db.engines
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    prepared_statement_listeners.append(log.sent)
    try:
        yield log
    finally:
        prepared_statement_listeners.remove(log.sent)
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
