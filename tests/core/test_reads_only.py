"""A request by a safe method changes nothing (``marketplace.db``, docs/architecture.md, "The
life of one request"): its session is bound to an engine that cannot write, so a GET that writes
by mistake fails before anything is stored, and on PostgreSQL a page's reads run in autocommit,
without the BEGIN and COMMIT round trips of a transaction. A view that must record something on a
GET says so and writes as a POST does."""

import pytest
from sqlalchemy import bindparam, event, select, text, update
from sqlalchemy.exc import DBAPIError

from marketplace.accounts.models import User
from marketplace.db import Prepared, connection_of, db, writes_on_safe_method
from tests import builders as build
from tests.conftest import POSTGRES, csrf_token


def rename(user_id: int, name: str) -> str:
    """A view's body that writes: the member's name changed, in the request's unit of work."""
    db.session.execute(update(User).where(User.id == user_id).values(name=name))
    return "renamed"


def rename_unflushed(user_id: int, name: str) -> str:
    """The same through the ORM: a change the session holds and has not written yet."""
    db.session.get(User, user_id).name = name
    return "renamed"


@pytest.fixture
def routes(app, world):
    """Three views added to the app before its first request: one that writes by mistake on a
    GET, the same taking a POST, and one marked as writing on a GET."""
    member = world.ann.id
    app.add_url_rule("/test/rename", "rename_by_mistake", lambda: rename(member, "Renamed by a GET"))
    app.add_url_rule("/test/rename-unflushed", "rename_unflushed", lambda: rename_unflushed(member, "Renamed later"))
    app.add_url_rule("/test/rename", "rename_on_post", lambda: rename(member, "Renamed by a POST"), methods=["POST"])
    marked = writes_on_safe_method(lambda: rename(member, "Renamed by a marked GET"))
    app.add_url_rule("/test/rename-marked", "rename_marked", marked)
    app.add_url_rule("/test/name", "name", lambda: db.session.scalar(select(User.name).where(User.id == member)))
    app.add_url_rule("/test/bind", "bind", lambda: str(db.session.get_bind() is db.read_engine))
    app.add_url_rule("/test/bind", "bind_post", lambda: str(db.session.get_bind() is db.read_engine), methods=["POST"])
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # these test views have no form
    return app.test_client()


def name_of(session, user_id: int) -> str:
    """As stored, read in a transaction of the test's own that ends at once (on SQLite it holds
    the write lock, and the next request would wait for it)."""
    name = session.scalar(select(User.name).where(User.id == user_id))
    session.rollback()
    return name


def test_a_get_that_writes_fails_and_stores_nothing(routes, world, session):
    with pytest.raises(DBAPIError, match="read-only|readonly"):
        routes.get("/test/rename")
    assert name_of(session, world.ann.id) == world.ann.name


def test_a_get_holding_an_unwritten_change_fails_and_stores_nothing(routes, world, session):
    """A page that only reads is not committed, yet a change it holds is not dropped in silence:
    it is committed all the same, and the engine that cannot write refuses it."""
    with pytest.raises(DBAPIError, match="read-only|readonly"):
        routes.get("/test/rename-unflushed")
    assert name_of(session, world.ann.id) == world.ann.name


def test_a_page_that_only_reads_ends_its_transaction_without_a_commit(routes, world):
    """Closing the session ends a reader's transaction; a COMMIT would only add its bookkeeping."""
    commits = []

    def count(connection) -> None:
        commits.append(connection)

    event.listen(db.read_engine, "commit", count)
    try:
        assert routes.get("/test/name").text == world.ann.name
    finally:
        event.remove(db.read_engine, "commit", count)
    assert commits == []


def test_a_post_and_a_view_marked_as_writing_on_a_get_write(routes, world, session):
    assert routes.post("/test/rename").text == "renamed"
    assert name_of(session, world.ann.id) == "Renamed by a POST"
    assert routes.get("/test/rename-marked").text == "renamed"
    assert name_of(session, world.ann.id) == "Renamed by a marked GET"


def test_only_a_safe_request_reads_through_the_read_engine(routes):
    assert routes.get("/test/bind").text == "True"
    assert routes.head("/test/bind").status_code == 200
    assert routes.post("/test/bind").text == "False"


def test_on_postgresql_a_page_reads_in_autocommit_and_a_post_in_a_transaction(app, world, browser, session):
    """No BEGIN and no COMMIT around a page's reads: each costs a round trip to the server."""
    if db.is_sqlite:
        pytest.skip("SQLite has no round trips; its readers begin deferred")
    seen = []

    @app.after_request
    def note_autocommit(response):
        seen.append(db.session.connection().connection.driver_connection.autocommit)
        return response

    member = build.logged_in(browser, world.ann)
    seen.clear()
    assert member.get("/dashboard").status_code == 200
    assert seen == [True]
    assert member.submit("/dashboard", action="/logout", follow=False).status_code == 302
    assert seen == [True, True, False]  # the form's page, then its POST


def close_every_connection_from_the_server() -> None:
    """As a restart of the database, or a pooler's idle timeout, would."""
    with db.engine.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )


@pytest.mark.skipif(not POSTGRES, reason="SQLite has no connection to close")
@pytest.mark.parametrize("page", ["the dashboard", "a problem page, whose reads go ahead together"])
def test_a_page_whose_connection_the_server_closed_is_read_again_on_a_new_one(app, world, browser, open_problem, page):
    """The read engine does not ping before each checkout (one round trip less on every page):
    a page that finds its connection closed drops that pool and runs once more, unseen."""
    address = "/dashboard" if page == "the dashboard" else f"/problems/{open_problem().id}"
    member = build.logged_in(browser, world.ann)
    first = member.get(address)
    assert first.status_code == 200  # the read engine's pool now holds a connection
    stale_pool = db.read_engine.pool
    close_every_connection_from_the_server()

    again = member.get(address)

    assert again.status_code == 200 and without_csrf_tokens(again.text) == without_csrf_tokens(first.text)
    assert db.read_engine.pool is not stale_pool, "the page ran again on a new pool"
    assert member.get(address).status_code == 200


def without_csrf_tokens(page: str) -> str:
    """The page without its CSRF token (every form of a request carries the same one), which
    carries the second it was signed in: on a busy machine the same page rendered again may
    fall in the next second."""
    return page.replace(csrf_token(page), "<csrf token>")


@pytest.mark.skipif(not POSTGRES, reason="SQLite has no connection to close")
def test_a_prepared_statement_on_a_closed_connection_says_the_connection_is_lost(app, world):
    """So that the request is run again, as after a statement through SQLAlchemy."""
    with app.app_context():
        session = db.session
        connection = connection_of(session)
        close_every_connection_from_the_server()
        with pytest.raises(DBAPIError) as raised:
            Prepared(select(User.name).where(User.id == bindparam("id"))).fetchall(connection, {"id": world.ann.id})
        assert raised.value.connection_invalidated and connection.invalidated
        session.rollback()
