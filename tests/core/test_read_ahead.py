"""A page that knows what it will read asks PostgreSQL for all of it in one round trip
(``db.reading_ahead``, docs/performance.md, "Round trips"), and each statement then gets the
rows it would have read, once; where the request may write, and on SQLite, nothing is read
ahead."""

import pytest
from sqlalchemy import bindparam, create_engine, select, update

from marketplace.accounts.models import User
from marketplace.db import Prepared, connection_of, db, reading_ahead, request_reads_only
from marketplace.referrals import chains
from tests import builders as build
from tests.conftest import POSTGRES
from tests.statements import statements

NAME_OF = Prepared(select(User.name).where(User.id == bindparam("id")))


def rename_elsewhere(user_id: int, name: str) -> None:
    """Rename on a connection of its own, committed, as another request would (on an engine of
    its own, so that the statements counted are the reader's)."""
    engine = create_engine(db.engine.url)
    with engine.begin() as connection:
        connection.execute(update(User).where(User.id == user_id).values(name=name))
    engine.dispose()


@pytest.fixture
def reading_request(app):
    """A request context whose request only reads, as a GET's is."""
    with app.test_request_context("/"):
        token = request_reads_only.set(True)
        yield db.session
        db.remove()
        request_reads_only.reset(token)


@pytest.mark.skipif(not POSTGRES, reason="SQLite runs statements in the process: no round trip to save")
def test_statements_read_ahead_are_answered_from_one_round_trip_once_each(app, world, reading_request):
    session = reading_request
    with (
        statements(app) as log,
        reading_ahead(session, lambda: [NAME_OF.read(id=world.ann.id), NAME_OF.read(id=world.bob.id)]),
    ):
        assert (log.round_trips, len(log)) == (1, 2), "both sent in one round trip"
        rename_elsewhere(world.ann.id, "Ann Renamed")
        connection = connection_of(session)

        assert NAME_OF.fetchall(connection, {"id": world.bob.id}) == [(world.bob.name,)]
        assert NAME_OF.fetchall(connection, {"id": world.ann.id}) == [(world.ann.name,)], "as read ahead"
        assert log.round_trips == 1

        assert NAME_OF.fetchall(connection, {"id": world.ann.id}) == [("Ann Renamed",)], "asked again"
        assert NAME_OF.fetchall(connection, {"id": world.employee.id}) == [(world.employee.name,)]
        assert log.round_trips == 3


@pytest.mark.parametrize("where", ["a request that may write", "SQLite"])
def test_nothing_is_read_ahead_where_the_request_may_write_nor_on_sqlite(app, world, where):
    if where == "SQLite" and POSTGRES:
        pytest.skip("on PostgreSQL")
    with app.test_request_context("/", method="POST"):
        token = request_reads_only.set(where == "SQLite")
        try:
            with statements(app) as log, reading_ahead(db.session, lambda: [NAME_OF.read(id=world.ann.id)]):
                assert log == []
                rename_elsewhere(world.ann.id, "Ann Renamed")
                assert NAME_OF.fetchall(connection_of(db.session), {"id": world.ann.id}) == [("Ann Renamed",)]
                assert log.round_trips == 1
        finally:
            db.remove()
            request_reads_only.reset(token)


@pytest.mark.skipif(not POSTGRES, reason="SQLite runs statements in the process: nothing is read ahead")
def test_nothing_is_read_ahead_on_a_connection_that_would_first_begin_a_transaction(app, world, reading_request):
    """Statements sent ahead run where they are sent: on the engine that writes, whose
    connection would first begin a transaction, each runs in its turn, inside it."""
    session = db.session_factory(bind=db.engine)
    try:
        with statements(app) as log, reading_ahead(session, lambda: [NAME_OF.read(id=world.ann.id)]):
            assert log == []
            assert NAME_OF.fetchall(connection_of(session), {"id": world.ann.id}) == [(world.ann.name,)]
            assert log.round_trips == 1
    finally:
        session.close()


def test_a_chain_members_problem_page_asks_postgresql_in_one_round_trip(app, session, world, open_problem, browser):
    """Everything it reads by its address and its member at once; the names along the reach
    panel's paths, which wait for the search, are the process's own once read (docs/network.md,
    "Names on paths"). On SQLite one statement at a time, in the process."""
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    referral = chains.forward(session, world.ann, problem.id, to_user_id=world.bob.id)
    chains.claim(session, world.bob, referral.token)
    build.connection(session, world.ann, world.cleo)
    build.connection(session, world.cleo, world.dev)  # who holds the problem's skill
    session.commit()
    ann = build.logged_in(browser, world.ann)
    page = ann.get(f"/problems/{problem.id}")  # the reach index, its names and the compiled statements warm
    assert page.status_code == 200

    with statements(app) as log:
        again = ann.get(f"/problems/{problem.id}")

    assert again.status_code == 200 and "Bob Martins" in again.text and "Dev Sharma" in again.text
    if POSTGRES:
        assert log.round_trips == 1, f"{log.round_trips} round trips:\n{log}"
    else:
        assert log.round_trips == len(log)
