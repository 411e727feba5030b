"""Pages for visitors who are not logged in, served from a cache that is never stale
(docs/performance.md, "Caching").

The board, the home page, a public problem's page and the API's board show visitors nothing but
problems, so ``problems.service.last_change`` (the newest ``updated_at``, one indexed read) is a
version stamp for all of them: every write to a problem moves it. The landing page a referral
link opens shows the referral and the people on its chain as well, so its stamp,
``referrals.chains.last_change``, adds the newest ``updated_at`` of referrals and of members, in
the same one statement. A visitor's page is kept under its path and its stamp, and answered with
an ``ETag`` made of the same, so a browser that has it gets a 304 and a write makes every older
copy unreachable at once.

Two layers share that key. ``cached_for_visitors`` keeps a rendered page's body for any visitor
the view would treat alike. ``VisitorFastPath`` answers a request that carries no cookie and no
token (the usual first visit, a crawler, an API client reading the board) before the app's
request cycle runs at all, from the whole response (status, headers, body) the app gave the
first such request: it reads the stamp and the cache and nothing else, which is what makes a
cached page cost little more than the smallest Flask route.

Nothing a logged-in member sees is cached or stored by a shared cache: their requests skip both
layers, and ``PRIVATE_BY_DEFAULT`` marks every other response ``private, no-cache``. A visitor
with a message waiting (a flash after logging out, say) is not served from the cache either, so
the message is shown once and never stored.
"""

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache, partial, wraps
from typing import Any

from cachelib import BaseCache
from flask import Flask, Response, make_response, request, session
from flask_login import current_user
from sqlalchemy import Connection, TextClause, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_etags, quote_etag
from werkzeug.wrappers import Request

from marketplace.db import DATABASE_CLOCK_TABLES, db
from marketplace.extensions import page_cache
from marketplace.problems import service as problems

# How long an entry may sit unused; correctness does not depend on it (the stamp does that).
KEEP_SECONDS = 600
# Any cache may keep a visitor's page, but must ask again each time (the ETag makes that a 304).
VISITOR_CACHE_CONTROL = "public, no-cache"
# How many paths ``VisitorFastPath`` remembers the view of (a few megabytes at most).
KEPT_PATHS = 20_000

# When what a page shows last changed: one time, or one per table it reads (None for an empty one).
Stamp = datetime | tuple[datetime | None, ...] | None
StampReader = Callable[[Session | Connection], Stamp]


def visitor_etag(stamp: Stamp, full_path: str) -> str:
    """The key of a visitor's page: its path and query, under the stamp of what it shows."""
    return hashlib.sha256(f"{stamp}|{full_path}".encode()).hexdigest()[:32]


def _newest(stamp: Stamp) -> datetime | None:
    """The stamp as one time, for ``Last-Modified``."""
    times = stamp if isinstance(stamp, tuple) else (stamp,)
    return max((time for time in times if time is not None), default=None)


@cache
def _writers_in_flight_query() -> TextClause:
    """Over the tables whose ``updated_at`` the stamps read: those on the database's clock
    (``db.DATABASE_CLOCK_TABLES``, complete once the models are loaded)."""
    relations = ", ".join(f"'{table}'::regclass" for table in DATABASE_CLOCK_TABLES)
    return text(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND mode = 'RowExclusiveLock'"
        " AND pid <> pg_backend_pid()"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        f" AND relation IN ({relations}))"
    )


def writers_in_flight(session: Session) -> bool:
    """Whether, on PostgreSQL, another transaction has written a stamped table and not yet
    committed. Asked after the stamp is read and before the page is rendered: a page rendered
    meanwhile is answered but not kept (docs/performance.md, "Caching").

    Such a writer got its row's time from the database's clock before this was asked
    (``db.database_clock_statements``), so a later write may have committed with a newer time,
    and the stamp already reads that one: kept under it, the page would lack the first write
    even after it commits. A writer that takes its lock after this question gets a time newer
    than any the stamp read, so its commit moves the stamp. SQLite has one writer at a time."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    return bool(session.execute(_writers_in_flight_query()).scalar())


def _is_visitor() -> bool:
    """Nobody to tell apart: not logged in, no API token, no message waiting."""
    return not (current_user.is_authenticated or session.get("_flashes") or "Authorization" in request.headers)


def cached_for_visitors(view: Callable[..., Any] | None = None, /, *, stamp: StampReader = problems.last_change) -> Any:
    """Keep the view's page for visitors under ``stamp``, which must move with every write to
    anything the page shows a visitor (``@cached_for_visitors`` for pages of problems only,
    ``@cached_for_visitors(stamp=…)`` for others)."""
    if view is None:
        return partial(cached_for_visitors, stamp=stamp)

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _is_visitor():
            return view(*args, **kwargs)
        version = stamp(db.session)
        etag = visitor_etag(version, request.full_path)
        if request.if_none_match.contains(etag):
            return _for_visitors(Response(status=304), etag, version)
        kept = page_cache.get(etag)
        if kept is None:
            settled = not writers_in_flight(db.session)
            rendered = make_response(view(*args, **kwargs))
            if rendered.status_code != 200:
                return rendered
            kept = (rendered.get_data(), rendered.mimetype)
            if not settled:  # answered, but neither kept nor given a validator to come back with
                return _for_visitors(Response(kept[0], mimetype=kept[1]))
            page_cache.set(etag, kept, timeout=KEEP_SECONDS)
        body, mimetype = kept
        return _for_visitors(Response(body, mimetype=mimetype), etag, version)

    wrapper.cached_for_visitors = stamp  # type: ignore[attr-defined]  # what VisitorFastPath looks for
    return wrapper


def _for_visitors(response: Response, etag: str | None = None, version: Stamp = None) -> Response:
    """Any cache may keep it but must ask again; under ``etag`` when it may be asked for by it."""
    if etag is not None:
        response.set_etag(etag)
        if (newest := _newest(version)) is not None:
            response.last_modified = newest
    response.headers["Cache-Control"] = VISITOR_CACHE_CONTROL
    response.vary.add("Cookie")
    return response


StartResponse = Callable[..., Any]


class VisitorFastPath:
    """WSGI middleware: a cookie-less, token-less GET whose whole response is kept for the
    current stamp is answered from it (or with a 304) without entering Flask. Anything else, and
    the first request of each page and stamp, goes to the app; a response the app marked as a
    visitor's page under the same key, setting no cookie, is kept for the next one."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app
        self.url_map = app.url_map
        self.view_functions = app.view_functions
        # Which stamp each path's view is read by (None: not a visitor's cached page), kept per
        # path: matching a path against the app's rules was a fifth of this path's own work.
        # The app matches by the path alone (no host or subdomain matching), so the path is the
        # whole key; anyone can ask for any path, so the paths kept are bounded.
        self._stamp_readers: dict[str, StampReader | None] = {}
        # The stamp is read on the engine of every page's reads (``Database.read_engine``): on
        # PostgreSQL in autocommit and without a ping, one round trip; on SQLite with no BEGIN.
        self.engine = app.extensions["database"].read_engine
        self.cache: BaseCache = app.extensions["cache"][page_cache]
        self.personal_cookies = (
            app.config.get("SESSION_COOKIE_NAME", "session"),
            app.config.get("REMEMBER_COOKIE_NAME", "remember_token"),
        )

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        read_stamp = self._stamp_reader(environ)
        if read_stamp is None:
            return self.wsgi_app(environ, start_response)
        try:
            with self.engine.connect() as connection:
                stamp = read_stamp(connection)
        except DBAPIError:
            # A connection the database closed (a restart, an idle timeout): the app answers this
            # one, running its view once more on a new connection (``Database.run_reads_only``).
            return self.wsgi_app(environ, start_response)
        etag = visitor_etag(stamp, Request(environ).full_path)
        kept = self.cache.get(f"response:{etag}")
        if kept is None:
            return self._fill(environ, start_response, etag)
        status, headers, body = kept
        if etag in parse_etags(environ.get("HTTP_IF_NONE_MATCH")):
            start_response("304 NOT MODIFIED", [(k, v) for k, v in headers if k.lower() != "content-length"])
            return []
        start_response(status, headers)
        return [body]

    def _stamp_reader(self, environ: dict) -> StampReader | None:
        """For a GET with no cookie of ours and no token, to a view cached for visitors: how to
        read that view's stamp."""
        if environ.get("REQUEST_METHOD") != "GET" or "HTTP_AUTHORIZATION" in environ:
            return None
        cookies = environ.get("HTTP_COOKIE", "")
        if any(f"{name}=" in cookies for name in self.personal_cookies):
            return None
        path = environ.get("PATH_INFO", "")
        if path in self._stamp_readers:
            return self._stamp_readers[path]
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
        except HTTPException:  # a 404, a 405 or a redirect: the app answers those
            reader = None
        else:
            reader = getattr(self.view_functions.get(endpoint), "cached_for_visitors", None)
        if len(self._stamp_readers) >= KEPT_PATHS:
            self._stamp_readers.clear()
        self._stamp_readers[path] = reader
        return reader

    def _fill(self, environ: dict, start_response: StartResponse, etag: str) -> Iterable[bytes]:
        answered: list = []

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], Any]:
            answered[:] = [status, headers]
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = answered
        named = {name.lower(): value for name, value in headers}
        if (
            status.startswith("200 ")
            and named.get("etag") == quote_etag(etag)
            and named.get("cache-control") == VISITOR_CACHE_CONTROL
            and "set-cookie" not in named
        ):
            self.cache.set(f"response:{etag}", (status, headers, body), timeout=KEEP_SECONDS)
        return [body]


# Every response not marked cacheable above is for one person: never in a shared cache. The
# app's ``security_headers`` adds it to each response that does not set its own Cache-Control.
PRIVATE_BY_DEFAULT = ("Cache-Control", "private, no-cache")
