"""Engine, session and declarative base.

SQLite is the embedded default and PostgreSQL (psycopg 3) the production engine. On SQLite a
transaction that may write starts with ``BEGIN IMMEDIATE`` (WAL, busy timeout), so that two writers
queue for the lock instead of one failing half-way. PostgreSQL uses row locks and guarded updates.

A request by a safe method (GET, HEAD, OPTIONS) changes nothing, and its session is bound to
an engine that cannot write (``Database.read_engine``): on PostgreSQL its connections are in
autocommit and every statement's transaction is read-only, so a page's reads cost no ``BEGIN``
and no ``COMMIT`` round trips; on SQLite they are ``query_only`` and begin deferred, never
waiting for a writer (WAL readers do not block). A view that must record something on such a
request (Stripe's return page) is marked ``writes_on_safe_method`` and gets the usual session
(docs/architecture.md, "The life of one request").
"""

import enum
import functools
import json
import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from flask import Flask, Response, g, request
from flask.globals import _cv_app, _cv_request
from sqlalchemy import (
    DDL,
    BigInteger,
    BindParameter,
    Boolean,
    ClauseElement,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Enum,
    FromClause,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.pool import Pool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.schema import ColumnElementColumnDefault
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine

from marketplace import pg_pipeline

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Whether the current unit of work may write (on SQLite: ``BEGIN IMMEDIATE``); a reader of the
# whole database that must not hold the write lock (``ledger.verify``) switches it off.
sqlite_write_intent: ContextVar[bool] = ContextVar("sqlite_write_intent", default=True)

# Whether the current request only reads (a safe method to a view not marked below): its session
# is then bound to ``Database.read_engine``. Set before each request's view, not from the method
# alone, so that a request context a test or a command pushes without dispatching still writes.
request_reads_only: ContextVar[bool] = ContextVar("request_reads_only", default=False)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

ViewFunction = Callable[..., Any]
T = TypeVar("T")


def writes_on_safe_method(view: ViewFunction) -> ViewFunction:
    """Mark a view that writes although it answers a safe method (Stripe sends the company back
    to a GET address, and that page records what Stripe says): its request's session is bound
    to the engine that writes. Put it right under the route's decorator."""
    view.writes_on_safe_method = True  # type: ignore[attr-defined]
    return view


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class write_time(FunctionElement[datetime]):
    """The time of the write, for the ``updated_at`` the visitors' page stamps read: on
    PostgreSQL the database's own clock (``clock_timestamp()``), read while the statement holds
    its table's lock; on SQLite, where one writer at a time holds the database from its first
    statement, the app's clock, through a function every SQLite connection registers. As a SQL
    expression, the ORM reads the value back rather than assuming one (``database_clock_statements``
    says why the time must come from there)."""

    type = UTCDateTime()
    inherit_cache = True


# SQLAlchemy's own text for a datetime on SQLite (``UTCDateTime`` stores it in UTC).
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@compiles(write_time, "postgresql")
def _write_time_postgresql(element: write_time, compiler: SQLCompiler, **kw: Any) -> str:
    return "clock_timestamp()"


@compiles(write_time, "sqlite")
def _write_time_sqlite(element: write_time, compiler: SQLCompiler, **kw: Any) -> str:
    return "write_time()"


def _sqlite_write_time() -> str:
    return datetime.now(UTC).strftime(_SQLITE_DATETIME)


@event.listens_for(Pool, "connect")
def _register_write_time(dbapi_connection: Any, _record: Any) -> None:
    """Every SQLite connection any engine of this process opens can write ``write_time()``, not
    only the app's (``make_engine``): a script's or a test's own engine too."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("write_time", 0, _sqlite_write_time)


class IdList(TypeDecorator[Sequence[int]]):
    """Integer ids passed as one parameter: an array on PostgreSQL, a JSON array on SQLite."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger()))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Sequence[int] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        ids = [int(id_) for id_ in value]
        return ids if dialect.name == "postgresql" else json.dumps(ids)


class InIds(ColumnElement[bool]):
    """``column IN (ids)`` with the whole list as one parameter, ``in_ids(User.id, "user_ids")``.

    An expanding ``IN`` writes one placeholder per id, so its SQL changes with the list's length:
    PostgreSQL plans it afresh every time, and it cannot be a ``Prepared`` statement. This one
    is ``= ANY(:ids)`` on PostgreSQL and reads ``json_each(:ids)`` on SQLite, one text for every
    length.
    """

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition as it stands, not a value to compare with true
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], name: str):
        self.column = column
        self.ids = bindparam(name, type_=IdList())


def in_ids(column: Any, name: str) -> InIds:
    """``column`` is one of the ids given as the parameter ``name`` (a list of integers)."""
    return InIds(column, name)


@compiles(InIds)
def _in_json_array(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(InIds, "postgresql")
def _equals_any(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY ({compiler.process(element.ids, **kw)})"


def str_enum(enum_cls: type[enum.StrEnum], name: str) -> Enum:
    """Store an enum by value, as a plain string column with a CHECK on both engines."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # 64-bit integers for ids and money; SQLite needs plain INTEGER for rowid primary keys.
    type_annotation_map = {
        datetime: UTCDateTime(),
        int: BigInteger().with_variant(Integer(), "sqlite"),
    }


# Who wants to hear of the ``Prepared`` statements (they skip SQLAlchemy's events), each call
# with those sent to the server in one round trip: the tests that count a page's statements and
# round trips. Empty in production, so the hot path loops over nothing.
prepared_statement_listeners: list[Callable[[Sequence[str]], None]] = []

# The rows ``reading_ahead`` read for the current view, each entry ``[statement, params, rows]``
# waiting for its statement's next run with those parameters; None outside such a block.
_rows_read_ahead: ContextVar[list[list[Any]] | None] = ContextVar("rows_read_ahead", default=None)


class Prepared:
    """A statement compiled once per dialect and run straight on the DBAPI cursor of a
    connection, inside its transaction.

    For a simple statement, SQLAlchemy's per-execution bookkeeping costs several times what
    SQLite takes to run it. The statements every settlement runs go through this instead, and
    so do the lists on a member's pages and the cached pages' version stamps: the SQL and the
    column types' conversions still come from SQLAlchemy, only the bookkeeping is skipped
    (measured in docs/performance.md, "Settlement" and "Instructions per request"). Every
    parameter must be a named ``bindparam`` (no expanding IN lists: ``in_ids`` takes a list of
    ids as one parameter); ``fetchall`` gives plain DBAPI rows, ``first`` and ``all`` convert
    each value by its column's type, as SQLAlchemy would. Take the connection from
    ``connection_of(session)``.
    """

    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._compiled: dict[str, tuple] = {}
        self._make_row: Callable[[Iterable[Any]], Any] | None = None

    def _compile(self, dialect: Dialect) -> tuple:
        if dialect.name not in self._compiled:
            compiled = self.statement.compile(dialect=dialect)
            if not isinstance(compiled, SQLCompiler):
                raise TypeError(f"not a SQL statement: {self.statement!r}")
            # Values the statement carries itself (the 0 of a COALESCE, say), then the caller's.
            fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
            names = compiled.positiontup or list(compiled.binds)
            plan = [(name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
            columns = getattr(self.statement, "selected_columns", ())
            results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
            # Whether to fetch: known from the statement, where asking the cursor for its
            # description made psycopg build an object per column on every run.
            returns_rows = not (compiled.isinsert or compiled.isupdate or compiled.isdelete) or bool(
                compiled.effective_returning
            )
            self._compiled[dialect.name] = (
                compiled.string,
                bool(compiled.positiontup),
                fixed,
                plan,
                results,
                returns_rows,
            )
        return self._compiled[dialect.name]

    @staticmethod
    def _bind(compiled: tuple, given: dict) -> Any:
        """The driver's parameters for the caller's values, each through its type's conversion
        (``compiled``: what ``_compile`` gave for the connection's dialect)."""
        _, positional, fixed, plan, _, _ = compiled
        values = fixed | given if fixed else given
        if positional:
            return tuple([process(values[name]) if process else values[name] for name, process in plan])
        return {name: process(values[name]) if process else values[name] for name, process in plan}

    def _run(self, connection: Connection, params: dict | list[dict]) -> tuple[int, Sequence[Any]]:
        if (read_ahead := _rows_read_ahead.get()) is not None and isinstance(params, dict):
            rows = _take_read_ahead(read_ahead, self, params)
            if rows is not None:
                return len(rows), rows
        compiled = self._compile(connection.dialect)
        sql, returns_rows = compiled[0], compiled[5]
        for listener in prepared_statement_listeners:
            listener((sql,))
        cursor = connection.connection.cursor()
        try:
            if isinstance(params, list):
                cursor.executemany(sql, [self._bind(compiled, row) for row in params])
                return cursor.rowcount, []
            cursor.execute(sql, self._bind(compiled, params))
            return cursor.rowcount, cursor.fetchall() if returns_rows else []
        except connection.dialect.loaded_dbapi.Error as error:
            raise _database_error(connection, error, cursor, sql) from error
        finally:
            cursor.close()

    def read(self, **params: Any) -> "Read":
        """This statement with these parameters, to be sent ahead (``reading_ahead``)."""
        return Read(self, params)

    def execute(self, connection: Connection, params: dict) -> int:
        """Run it once; returns the number of rows it changed."""
        return self._run(connection, params)[0]

    def executemany(self, connection: Connection, rows: list[dict]) -> None:
        self._run(connection, rows)

    def fetchall(self, connection: Connection, params: dict) -> Sequence[tuple]:
        return self._run(connection, params)[1]

    def first(self, connection: Connection, params: dict) -> tuple | None:
        """The first row, its values converted as SQLAlchemy would (an aware ``datetime`` from
        SQLite's text, an enum from its value), or None when there is none."""
        rows = self._run(connection, params)[1]
        if not rows:
            return None
        return tuple(_converted(self._compile(connection.dialect)[4], rows[0]))

    def all(self, connection: Connection, params: dict) -> list[Any]:
        """Every row, each value converted as ``first`` converts it, as named tuples whose
        fields are the statement's column names (``row.title``), as a ``Row`` reads."""
        rows = self._run(connection, params)[1]
        results = self._compile(connection.dialect)[4]
        make = self._named_row()
        if not any(results):
            return [make(row) for row in rows]
        return [make(_converted(results, row)) for row in rows]

    def row_of(self, dialect: Dialect, values: Sequence[Any]) -> Any:
        """The row ``all`` gives for ``values`` of this statement's columns that another
        statement read (the dashboard reads five lists' rows under one ``UNION ALL``)."""
        return self._named_row()(_converted(self._compile(dialect)[4], values))

    def _named_row(self) -> Callable[[Iterable[Any]], Any]:
        if self._make_row is None:
            # A column without a name (an unlabelled expression) is named by its position, ``_1``.
            names = self.statement.selected_columns.keys()  # type: ignore[attr-defined]
            self._make_row = namedtuple("Row", names, rename=True)._make  # type: ignore[attr-defined]
        return self._make_row


class Read(NamedTuple):
    """A ``Prepared`` statement that only reads, with its parameters (``Prepared.read``)."""

    statement: Prepared
    params: dict[str, Any]

    def all(self, connection: Connection) -> list[Any]:
        return self.statement.all(connection, self.params)

    def fetchall(self, connection: Connection) -> Sequence[tuple]:
        return self.statement.fetchall(connection, self.params)


@contextmanager
def reading_ahead(session: Session, reads: Callable[[], Sequence[Read]]) -> Iterator[None]:
    """Send the statements ``reads()`` gives to PostgreSQL together, in one round trip, before
    the block; inside it, the next run of each with the same parameters gets the rows that came
    back instead of asking the server again (once: a second run asks anew).

    On PostgreSQL every statement is a round trip to the server, during which a sync worker
    waits; a page whose statements depend only on its address and its member can ask for them
    all at once (libpq's pipeline mode, ``pg_pipeline``) and keep its code as it reads
    (docs/performance.md, "Round trips"). Only in a request that only reads, so that nothing the
    request writes can make what was read ahead out of date; elsewhere, and on SQLite (whose
    statements run in the process), ``reads`` is not even called and the block runs as it would
    without this. Nor on a connection that would first begin a transaction (the read engine's
    never does: it is in autocommit)."""
    wanted = request_reads_only.get() and session.get_bind().dialect.name == "postgresql"
    ahead = reads() if wanted else ()
    connection = connection_of(session) if ahead else None
    if connection is None or not pg_pipeline.can_read_together(_driver_connection(connection)):
        yield
        return
    rows_of_each = _sent_together(connection, ahead)
    token = _rows_read_ahead.set(
        [[read.statement, read.params, rows] for read, rows in zip(ahead, rows_of_each, strict=True)]
    )
    try:
        yield
    finally:
        _rows_read_ahead.reset(token)


def _driver_connection(connection: Connection) -> Any:
    return connection.connection.driver_connection


def _sent_together(connection: Connection, reads: Sequence[Read]) -> list[Sequence[Any]]:
    """The rows of each of ``reads``, asked in one pipeline on ``connection``'s psycopg
    connection (``pg_pipeline``)."""
    compiled = [read.statement._compile(connection.dialect) for read in reads]
    sqls = [each[0] for each in compiled]
    for listener in prepared_statement_listeners:
        listener(sqls)
    try:
        return pg_pipeline.read_together(
            _driver_connection(connection),
            [(each[0], Prepared._bind(each, read.params)) for each, read in zip(compiled, reads, strict=True)],
        )
    except connection.dialect.loaded_dbapi.Error as error:
        raise _database_error(connection, error, None, "; ".join(sqls)) from error


def _take_read_ahead(read_ahead: list[list[Any]], statement: Prepared, params: dict) -> Sequence[Any] | None:
    """The rows read ahead for ``statement`` with ``params``, given once; None if there are none."""
    for at, (read_statement, read_params, rows) in enumerate(read_ahead):
        if read_statement is statement and read_params == params:
            del read_ahead[at]
            return rows
    return None


def _database_error(connection: Connection, error: Any, cursor: Any, sql: str) -> Exception:
    """The driver's ``error`` as SQLAlchemy's own execution raises it; as it does, a connection
    the server closed is dropped (``Database.run_reads_only`` runs a page that only reads again)."""
    lost = connection.dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(error)
    return DBAPIError.instance(sql, None, error, connection.dialect.loaded_dbapi.Error, connection_invalidated=lost)


def _converted(results: list, row: Sequence[Any]) -> list[Any]:
    """A driver's row, each value through its column's result processor (None: as it came)."""
    return [convert(value) if convert else value for convert, value in zip(results, row, strict=True)]


def connection_of(bind: Session | Connection) -> Connection:
    """The session's connection, after writing its pending changes (as ``session.execute``
    would), for running ``Prepared`` statements in the session's transaction; a connection
    given instead is its own (the visitors' fast path reads its stamp on one of its own)."""
    if isinstance(bind, Connection):
        return bind
    bind.flush()
    return bind.connection()


class InstanceLoader(Generic[T]):
    """The ORM's own instances of one mapped class, put together from the values of its
    ``columns`` that a ``Prepared`` statement read: persistent in the session (their changes
    flush, their relationships load lazily), the session's own where it holds one already, as
    the ORM's loading gives them.

    Through the ORM's query, loading a row's instance cost two to three times what reading the
    row did (docs/performance.md, "What limits them"). ``only`` reads some of the columns, as
    ``load_only`` does: the first of the others read loads them all, in one statement.
    """

    def __init__(self, cls: type[T], only: Iterable[Any] | None = None):
        mapper = inspect(cls)
        (key,) = mapper.primary_key
        self._mapper = mapper
        every = [attribute.key for attribute in mapper.column_attrs]
        self._keys = every if only is None else [attribute.key for attribute in only]
        self._key_at = self._keys.index(mapper.get_property_by_column(key).key)
        self._unloaded = frozenset(every) - set(self._keys)
        self.columns: list[ColumnElement[Any]] = [mapper.column_attrs[name].columns[0] for name in self._keys]

    def columns_of(self, entity: Any) -> list[Any]:
        """``columns`` as ``entity`` names them: an alias of the class (``aliased(User)``), for
        a statement that reads the class's rows twice, as a referral's holder and recipient."""
        return [getattr(entity, key) for key in self._keys]

    def instance(self, session: Session, values: Sequence[Any]) -> T:
        """The instance of a row of ``columns``' values, converted as ``Prepared`` converts them;
        the session's own, if it holds that one already."""
        identity = self._mapper.identity_key_from_primary_key((values[self._key_at],))
        held = session.identity_map.get(identity)
        if held is not None:
            return held
        # As the ORM's loader puts a new row's instance in the session (``loading._instance``):
        # its loaded values, the identity it is known by, and its place in the identity map.
        # Adding it as a detached instance instead walked every relationship for cascades, and
        # cost three times as much. Like bulk reads, it fires no ``load`` event: no model has one.
        instance = self._mapper.class_manager.new_instance()
        instance.__dict__.update(zip(self._keys, values, strict=True))
        state = instance_state(instance)
        state.key = identity
        state.identity_token = None
        state.session_id = session.hash_key
        if self._unloaded:
            state.expired_attributes.update(self._unloaded)
        session.identity_map._add_unpresent(state, identity)
        return instance

    def instance_if_any(self, session: Session, values: Sequence[Any]) -> T | None:
        """``instance``, or None for the row an outer join did not find (its key is null)."""
        return None if values[self._key_at] is None else self.instance(session, values)

    @staticmethod
    def relate(instance: Any, **related: Any) -> None:
        """Set the relationships the same statement read as loaded (``problem.company``, a
        referral's ``holder``), so that reading them runs no statement. As the ORM's own
        loading does, a relationship the session holds loaded already is kept."""
        for name, value in related.items():
            if name not in instance.__dict__:
                set_committed_value(instance, name, value)


class PreparedGet(InstanceLoader[T]):
    """``Session.get`` of one mapped class by its integer primary key, through a ``Prepared``
    statement, into the ORM's own instance (``InstanceLoader``).

    For the member every logged-in request loads first, the ORM's query and its bookkeeping
    cost twice what this does (docs/performance.md, "What limits them"). Like ``Session.get``,
    it returns the instance the session already holds, if it holds one. A statement of its own
    may read ``columns`` first among others and hand their values to ``instance``.
    """

    def __init__(self, cls: type[T]):
        super().__init__(cls)
        (key,) = self._mapper.primary_key
        self._select = Prepared(select(*self.columns).where(key == bindparam("id", type_=key.type)))

    def __call__(self, session: Session, id: int) -> T | None:
        held = session.identity_map.get(self._mapper.identity_key_from_primary_key((id,)))
        if held is not None:
            return held
        row = self._select.first(connection_of(session), {"id": id})
        return None if row is None else self.instance(session, row)


def insert_of(table: Table, *columns: str) -> Prepared:
    """``INSERT INTO table (columns) VALUES (…)``, every value a parameter of the column's name."""
    return Prepared(insert(table).values({name: bindparam(name) for name in columns}))


class Guarded(Protocol):
    """A mapped row with an integer ``id`` and a ``status`` column, as ``guarded_update`` takes."""

    __table__: ClassVar[FromClause]

    @property
    def id(self) -> int: ...


@functools.cache
def _guarded_update(table: Table, states: int, names: tuple[str, ...]) -> Prepared:
    expected: list[BindParameter[Any]] = [bindparam(f"_expected_{n}") for n in range(states)]
    return Prepared(
        update(table)
        .where(table.c.id == bindparam("_id"), table.c.status.in_(expected))
        .values({name: bindparam(name) for name in names})
    )


def guarded_update(session: Session, instance: Guarded, expected: Iterable, **values: Any) -> bool:
    """``UPDATE … SET values WHERE id = instance.id AND status IN expected``: of two racing
    requests only one can win. On success the instance holds the values without reading its row
    back (a column the database computes, ``write_time``, is read back when asked for); on
    failure it is refreshed, so the caller can say what state it is in.
    """
    expected = list(expected)
    statement = _guarded_update(instance.__table__, len(expected), tuple(sorted(values)))
    states = {f"_expected_{n}": state for n, state in enumerate(expected)}
    if statement.execute(connection_of(session), {"_id": instance.id, **states, **values}) != 1:
        session.refresh(instance)
        return False
    for name, value in values.items():
        set_committed_value(instance, name, value)
    if computed := _computed_on_update(instance.__table__):
        session.expire(instance, computed)  # read back if asked for, as the ORM's own flush does
    return True


@functools.cache
def _computed_on_update(table: FromClause) -> list[str]:
    """The columns an UPDATE of ``table`` sets by a SQL expression of their own (``write_time``)."""
    return [column.key for column in table.columns if isinstance(column.onupdate, ColumnElementColumnDefault)]


def append_only_statements(table: str) -> dict[str, list[str]]:
    """The triggers that refuse every UPDATE and DELETE of ``table``, per engine.

    For records whose worth is that nobody rewrites them (the audit log, the attribution
    records): no code path, nor a hand-typed statement, can change or remove a row. Migrations
    run the same statements (``append_only_drop_statements`` undoes them). TRUNCATE, which the
    PostgreSQL test suite uses between tests, fires no row triggers.
    """
    return {
        "sqlite": [
            f"""
            CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only ({verb.upper()} refused)'); END
            """
            for verb in ("update", "delete")
        ],
        "postgresql": _row_trigger(
            table,
            "append_only",
            "UPDATE OR DELETE",
            f"RAISE EXCEPTION '{table} is append-only (% refused)', TG_OP USING ERRCODE = 'restrict_violation';",
        ),
    }


def append_only_drop_statements(table: str) -> dict[str, list[str]]:
    return {
        "sqlite": [f"DROP TRIGGER IF EXISTS {table}_no_{verb}" for verb in ("update", "delete")],
        "postgresql": _row_trigger_drop(table, "append_only"),
    }


def make_append_only(table: Table) -> None:
    """Create ``append_only_statements`` with the table (``metadata.create_all``)."""
    _create_with(table, append_only_statements(table.name))


def database_clock_statements(table: str) -> dict[str, list[str]]:
    """On PostgreSQL, the trigger that sets a row's ``updated_at`` from the database's own clock
    each time the row is written, whatever the app put there.

    The visitors' pages are kept under the newest ``updated_at`` (docs/performance.md,
    "Caching"), so a write must never get an older time than one committed before it. A time a
    statement brings (from a web host's clock, or typed into it) was taken before the row's
    table was locked, and two hosts' clocks differ; ``clock_timestamp()`` inside the write comes
    after the writer holds its table lock, from the one clock every writer shares. The app's own
    writes already use it (``write_time``); the trigger makes it so for every statement. On
    SQLite one writer at a time holds the database from its first statement (``BEGIN
    IMMEDIATE``), on one host, so the app's time already follows the order of commits."""
    return {
        "postgresql": _row_trigger(
            table, "updated_at", "INSERT OR UPDATE", "NEW.updated_at := clock_timestamp(); RETURN NEW;"
        )
    }


def database_clock_drop_statements(table: str) -> dict[str, list[str]]:
    return {"postgresql": _row_trigger_drop(table, "updated_at")}


def _row_trigger(table: str, name: str, events: str, body: str) -> list[str]:
    """A PostgreSQL function ``{table}_{name}`` running ``body``, and the trigger that runs it
    before ``events`` on each row of ``table``."""
    return [
        f"""
        CREATE OR REPLACE FUNCTION {table}_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          {body}
        END $$
        """,
        f"""
        CREATE TRIGGER {table}_{name} BEFORE {events} ON {table}
        FOR EACH ROW EXECUTE FUNCTION {table}_{name}()
        """,
    ]


def _row_trigger_drop(table: str, name: str) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}", f"DROP FUNCTION IF EXISTS {table}_{name}()"]


def _create_with(table: Table, statements: dict[str, list[str]]) -> None:
    for dialect, texts in statements.items():
        for statement in texts:
            # DDL runs its text through %-formatting; the statements' own % must survive it.
            event.listen(table, "after_create", DDL(statement.replace("%", "%%")).execute_if(dialect=dialect))


# The tables whose ``updated_at`` is the database's clock (``stamp_with_database_clock``).
DATABASE_CLOCK_TABLES: list[str] = []


def stamp_with_database_clock(table: Table) -> None:
    """Create ``database_clock_statements`` with the table (``metadata.create_all``)."""
    DATABASE_CLOCK_TABLES.append(table.name)
    _create_with(table, database_clock_statements(table.name))


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` and use psycopg 3 for both."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``; with ``read_only``, one whose connections refuse every write
    (PostgreSQL: in autocommit, each statement's transaction read-only; SQLite: ``query_only``)."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        if read_only:
            # Not pinged before each checkout either: a request that finds its connection closed
            # by the server runs once more on a new one (``Database.run_reads_only``).
            options = {"options": "-c default_transaction_read_only=on"}
            kwargs = {"isolation_level": "AUTOCOMMIT", "connect_args": options, "pool_pre_ping": False, **kwargs}
        return create_engine(url, **{"pool_pre_ping": True, **kwargs})
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        # On the driver's connection: through ``exec_driver_sql``, SQLAlchemy's bookkeeping for
        # this one word was a fifth of what opening and closing a request's session cost.
        statement = "BEGIN IMMEDIATE" if sqlite_write_intent.get() and not read_only else "BEGIN"
        try:
            connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
        except sqlite3.Error as error:
            raise DBAPIError.instance(statement, None, error, sqlite3.Error) from error

    return engine


def _current_scope() -> object:
    """One session per request, else per app context, else per thread.

    Keying by request (not only by app context) keeps each request's unit of work separate even
    when a test holds an app context open across several requests.
    """
    context = _cv_request.get(None) or _cv_app.get(None)
    return id(context) if context is not None else threading.get_ident()


class _RequestSessions(sessionmaker[Session]):
    """Sessions bound, in a request that only reads, to the engine that cannot write."""

    read_bind: Engine | None = None

    def __call__(self, **local_kw: Any) -> Session:
        if request_reads_only.get() and self.read_bind is not None:
            local_kw.setdefault("bind", self.read_bind)
        return super().__call__(**local_kw)


class Database:
    """The app's engines and a request-scoped session, created unbound and ``init_app``-ed.

    ``db.session`` is the current scope's ``Session`` (one per request, see ``_current_scope``),
    bound to ``read_engine`` in a request that only reads and to ``engine`` otherwise;
    ``db.remove()`` ends it.
    """

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.read_engine: Engine | None = None
        self.session_factory = _RequestSessions(expire_on_commit=False)
        self._scoped = scoped_session(self.session_factory, scopefunc=_current_scope)

    @property
    def session(self) -> Session:
        return self._scoped()

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine the app runs statements on (what counts them listens to each)."""
        return tuple(engine for engine in (self.engine, self.read_engine) if engine is not None)

    def remove(self) -> None:
        """Close the current scope's session, rolling back what it did not commit."""
        self._scoped.remove()

    def dispose(self) -> None:
        """Close every pooled connection of every engine."""
        for engine in self.engines:
            engine.dispose()

    def init_app(self, app: Flask) -> None:
        self.engine = make_engine(app.config["DATABASE_URL"])
        self.read_engine = make_engine(app.config["DATABASE_URL"], read_only=True)
        self.session_factory.configure(bind=self.engine)
        self.session_factory.read_bind = self.read_engine
        app.extensions["database"] = self

        @app.before_request
        def _declare_reads_only() -> None:
            view = app.view_functions.get(request.endpoint) if request.endpoint else None
            reads_only = request.method in SAFE_METHODS and not getattr(view, "writes_on_safe_method", False)
            g.reads_only_token = request_reads_only.set(reads_only)

        @app.after_request
        def _finish_unit_of_work(response: Response) -> Response:
            """One unit of work per request: its changes commit once, when the response is a
            success; an error response (the error handler has rolled back already) changes nothing.

            A request that only reads has nothing to commit: closing its session at teardown
            ends its transaction, and the commit's bookkeeping was a twentieth of a member's
            page. Should such a request hold a change, it is committed all the same, so the
            engine that cannot write refuses it out loud instead of losing it."""
            session = self.session
            if request_reads_only.get() and not (session.new or session.dirty or session.deleted):
                return response
            if response.status_code < 400:
                session.commit()
            else:
                session.rollback()
            return response

        @app.teardown_request
        def _remove_request_session(_exc: BaseException | None) -> None:
            self.remove()
            token = g.pop("reads_only_token", None)
            if token is not None:
                request_reads_only.reset(token)

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            self.remove()

    def run_reads_only(self, view: Callable[[], Any]) -> Any:
        """Run a request's view; if it only reads and the server had closed its connection
        (a restart, an idle timeout: ``read_engine`` does not ping before each checkout, one
        round trip less on every page), drop every connection of that pool and run it once more.
        Nothing was written, so nothing is done twice; a second failure is an error."""
        try:
            return view()
        except DBAPIError as error:
            if not (error.connection_invalidated and request_reads_only.get() and self.read_engine is not None):
                raise
            # What the first run loaded stays in the session, expired, and is read again.
            self.session.rollback()
            self.read_engine.dispose()
            return view()

    @property
    def is_sqlite(self) -> bool:
        return self.engine is not None and self.engine.dialect.name == "sqlite"


db = Database()
