"""Engine, session and declarative base.

SQLite is the embedded default and PostgreSQL (psycopg 3) the production engine. On SQLite a
transaction that may write starts with ``BEGIN IMMEDIATE`` (WAL, busy timeout), so that two writers
queue for the lock instead of one failing half-way; read-only requests (GET, HEAD) begin deferred
and never wait, since WAL readers do not block. PostgreSQL uses row locks and guarded updates.
"""

import threading
from contextvars import ContextVar
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Whether the current unit of work may write; read-only web requests switch it off.
sqlite_write_intent: ContextVar[bool] = ContextVar("sqlite_write_intent", default=True)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both engines (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # 64-bit integers for ids and money; SQLite needs plain INTEGER for rowid primary keys.
    type_annotation_map = {
        datetime: UTCDateTime(),
        int: BigInteger().with_variant(Integer(), "sqlite"),
    }


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` and use psycopg 3 for both."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs) -> Engine:
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_write_intent.get() else "BEGIN")

    return engine


def _current_scope() -> object:
    """One session per request, else per app context, else per thread.

    Keying by request (not only by app context) keeps each request's unit of work separate even
    when a test holds an app context open across several requests.
    """
    from flask.globals import _cv_app, _cv_request

    context = _cv_request.get(None) or _cv_app.get(None)
    return id(context) if context is not None else threading.get_ident()


class Database:
    """The app's engine and a request-scoped session, created unbound and ``init_app``-ed."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session_factory = sessionmaker(expire_on_commit=False)
        self.session = scoped_session(self.session_factory, scopefunc=_current_scope)

    def init_app(self, app) -> None:
        self.engine = make_engine(app.config["DATABASE_URL"])
        self.session_factory.configure(bind=self.engine)
        app.extensions["database"] = self

        @app.before_request
        def _declare_intent():
            from flask import g, request

            g.write_intent_token = sqlite_write_intent.set(request.method not in ("GET", "HEAD", "OPTIONS"))

        @app.teardown_request
        def _remove_request_session(_exc):
            from flask import g

            self.session.remove()
            token = g.pop("write_intent_token", None)
            if token is not None:
                sqlite_write_intent.reset(token)

        @app.teardown_appcontext
        def _remove_session(_exc):
            self.session.remove()

    @property
    def is_sqlite(self) -> bool:
        return self.engine is not None and self.engine.dialect.name == "sqlite"


db = Database()
