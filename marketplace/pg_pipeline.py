"""Reads sent to PostgreSQL together, through libpq's pipeline mode driven from here.

``db.reading_ahead`` sends the statements a page will run in one round trip. psycopg's own
pipeline (``Connection.pipeline()``) runs each of them through a cursor and the generators
psycopg writes its protocol in: about 75 µs of the worker's CPU a statement, more than the
server spends running most of them, and six of them were a sixth of a chain member's problem
page (docs/performance.md, "The reads sent ahead, without psycopg's cursors").

Here the same statements go through psycopg's own binding of libpq (``psycopg.pq``), and
psycopg's own adapters dump each parameter and load each row (``psycopg.adapt.Transformer``,
rows in text as a cursor reads them), so every value comes back as a cursor gives it; what is
left out is the cursor's bookkeeping. As psycopg does after ``prepare_threshold`` runs, each
statement is prepared once on each connection (never, where that threshold is None), and the
wait for the server happens in ``poll``, which lets the process's other threads run.
"""

import re
import select
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import abc, pq
from psycopg.adapt import PyFormat, Transformer

# SQLAlchemy writes psycopg's placeholders, ``%(name)s``, and a percent sign as ``%%``.
_PLACEHOLDER = re.compile(r"%\(([^)]*)\)s|%%")


def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with libpq's numbered placeholders (``$1``, the same number each time a name
    comes again) and the parameters' names in that order."""
    names: dict[str, int] = {}

    def numbered(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        return f"${names.setdefault(name, len(names) + 1)}"

    return _PLACEHOLDER.sub(numbered, sql), tuple(names)


@dataclass
class _ConnectionState:
    """What one connection's server holds for this module: the names of the statements it has
    prepared, by SQL and parameter types (a parameter's type follows its value: an int that
    needs eight bytes is sent as a bigint)."""

    encoding: str
    prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = field(default_factory=dict)
    next_number: int = 0


_STATES: "weakref.WeakKeyDictionary[psycopg.Connection, _ConnectionState]" = weakref.WeakKeyDictionary()
# By SQL and the connection's encoding: the statement as libpq takes it, and its parameters' names
# (a fixed set: the SQL of the app's ``db.Prepared`` statements).
_POSITIONAL: dict[tuple[str, str], tuple[bytes, tuple[str, ...]]] = {}


@dataclass
class _Statement:
    query: bytes
    values: Sequence[Any]
    types: tuple[int, ...]
    formats: Sequence[pq.Format]
    run_as: bytes | None = None  # the prepared statement's name; None: run unnamed
    prepare: bool = False  # sent with a Parse under that name first


def can_read_together(connection: psycopg.Connection) -> bool:
    """Whether statements sent here run where a cursor would run them: in autocommit, or in the
    transaction already begun. A connection that would begin one first is left to psycopg."""
    return connection.autocommit or connection.pgconn.transaction_status == pq.TransactionStatus.INTRANS


def read_together(
    connection: psycopg.Connection, statements: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[Sequence[Any]]:
    """The rows of each of ``statements`` (SQL as SQLAlchemy compiles it for psycopg, and its
    parameters by name), sent in one pipeline and answered in one round trip, on a connection
    that ``can_read_together``. A statement that fails raises its error once
    every answer has been read, leaving the connection ready for the next."""
    state = _STATES.get(connection)
    if state is None:
        state = _STATES[connection] = _ConnectionState(connection.info.encoding)
    transformer = Transformer(connection)
    # Everything that can fail on the caller's values fails here, before anything is sent.
    planned = [_planned(state, transformer, sql, params, connection.prepare_threshold) for sql, params in statements]
    pgconn = connection.pgconn
    pgconn.enter_pipeline_mode()
    try:
        for statement in planned:
            if statement.prepare and statement.run_as is not None:
                pgconn.send_prepare(statement.run_as, statement.query, param_types=statement.types)
            if statement.run_as is None:
                pgconn.send_query_params(
                    statement.query, statement.values, param_types=statement.types, param_formats=statement.formats
                )
            else:
                pgconn.send_query_prepared(statement.run_as, statement.values, param_formats=statement.formats)
        pgconn.pipeline_sync()
        rows, error = _answers(state, pgconn, transformer, planned)
        pgconn.exit_pipeline_mode()
    except BaseException:
        # Answers left unread would be taken for the next statement's: the connection goes, and
        # its pool replaces it (a closed connection is a lost one to SQLAlchemy).
        connection.close()
        raise
    if error is not None:
        raise psycopg.errors.error_from_result(error, encoding=state.encoding)
    return rows


def _planned(
    state: _ConnectionState, transformer: abc.Transformer, sql: str, params: Mapping[str, Any], threshold: int | None
) -> _Statement:
    converted = _POSITIONAL.get((sql, state.encoding))
    if converted is None:
        text, names = positional(sql)
        converted = _POSITIONAL[sql, state.encoding] = (text.encode(state.encoding), names)
    query, names = converted
    values = transformer.dump_sequence([params[name] for name in names], [PyFormat.AUTO] * len(names))
    statement = _Statement(query, values, tuple(transformer.types or ()), list(transformer.formats or ()))
    if threshold is None:
        return statement
    statement.run_as = state.prepared.get((query, statement.types))
    if statement.run_as is None:
        state.next_number += 1
        statement.run_as = state.prepared[query, statement.types] = b"_marketplace_%d" % state.next_number
        statement.prepare = True
    return statement


def _answers(
    state: _ConnectionState, pgconn: pq.abc.PGconn, transformer: abc.Transformer, planned: list[_Statement]
) -> tuple[list[Sequence[Any]], pq.abc.PGresult | None]:
    """Each statement's rows, and the first error the server answered, up to the pipeline's
    sync point. A statement whose preparation did not go through is forgotten, to be prepared
    again next time."""
    rows: list[Sequence[Any]] = []
    error = None
    for statement in planned:
        if statement.prepare:
            prepared = _next_result(pgconn)
            if prepared.status != pq.ExecStatus.COMMAND_OK:
                error = error or _error_in(prepared)
                del state.prepared[statement.query, statement.types]
        result = _next_result(pgconn)
        if result.status == pq.ExecStatus.TUPLES_OK:
            transformer.set_pgresult(result)
            rows.append(transformer.load_rows(0, result.ntuples, tuple))
        else:
            error = error or _error_in(result)
            rows.append([])
    sync = _next_result(pgconn)
    if sync.status != pq.ExecStatus.PIPELINE_SYNC:
        raise psycopg.InterfaceError(f"the pipeline ended with {pq.ExecStatus(sync.status).name}, not its sync")
    return rows, error


def _error_in(result: pq.abc.PGresult) -> pq.abc.PGresult | None:
    """The result that says what went wrong; None for one only skipped after an earlier error."""
    return None if result.status == pq.ExecStatus.PIPELINE_ABORTED else result


def _next_result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult:
    """The next result the server sent (libpq separates each statement's by a None)."""
    while True:
        _wait_for_result(pgconn)
        result = pgconn.get_result()
        if result is not None:
            return result


def _wait_for_result(pgconn: pq.abc.PGconn) -> None:
    """Until libpq holds a whole result: what is queued is sent (reading meanwhile, so that the
    server is never stuck writing to us) and the answer is read, waiting in ``poll`` rather than
    inside libpq, which would hold the interpreter's lock while it waits."""
    while pgconn.flush():
        _poll(pgconn.socket, select.POLLIN | select.POLLOUT)
        pgconn.consume_input()
    while pgconn.is_busy():
        _poll(pgconn.socket, select.POLLIN)
        pgconn.consume_input()


def _poll(fileno: int, events: int) -> None:
    poller = select.poll()
    poller.register(fileno, events)
    poller.poll()
