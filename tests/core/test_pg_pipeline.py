"""The reads a page sends ahead go to PostgreSQL through libpq's pipeline mode directly
(``marketplace.pg_pipeline``, docs/performance.md, "The reads sent ahead, without psycopg's
cursors"): each value must come back as psycopg's cursor gives it, an error must be the
server's own and leave the connection usable, and each statement is prepared once per
connection, as psycopg would prepare it."""

import os
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy.engine import make_url

from marketplace.pg_pipeline import can_read_together, positional, read_together
from tests.conftest import POSTGRES


def test_placeholders_are_numbered_in_order_and_a_name_used_twice_keeps_its_number():
    sql = "SELECT %(b)s, %(a)s, %(b)s, 'a%%b' FROM t WHERE x LIKE '10%%' AND y = %(c)s::INTEGER"

    numbered = "SELECT $1, $2, $1, 'a%b' FROM t WHERE x LIKE '10%' AND y = $3::INTEGER"
    assert positional(sql) == (numbered, ("b", "a", "c"))


def test_a_statement_without_parameters_is_left_as_it_is():
    assert positional("SELECT 1") == ("SELECT 1", ())


postgres_only = pytest.mark.skipif(not POSTGRES, reason="libpq's pipeline is PostgreSQL's")


@pytest.fixture
def connect(postgres_engine):
    """Connections of their own to the test database, closed afterwards."""
    opened = []
    address = make_url(os.environ.get("TEST_DATABASE_URL", "")).set(drivername="postgresql")

    def open_one(**options) -> psycopg.Connection:
        connection = psycopg.connect(address.render_as_string(hide_password=False), **options)
        opened.append(connection)
        return connection

    yield open_one
    for connection in opened:
        connection.close()


def prepared_here(connection: psycopg.Connection) -> set[str]:
    return {row[0] for row in connection.execute("SELECT name FROM pg_prepared_statements")}


VALUES = (
    "SELECT %(number)s::INTEGER, %(big)s::BIGINT, %(text)s::TEXT, %(flag)s::BOOLEAN, %(nothing)s::INTEGER,"
    " %(when)s::TIMESTAMPTZ, %(amount)s::NUMERIC, '{\"a\": [1, 2]}'::JSON, ARRAY[1, 2]::INTEGER[], 'x%%'"
)
GIVEN = {
    "number": 7,
    "big": 2**40,
    "text": 'Zoë\'s "quote" ⚡',
    "flag": True,
    "nothing": None,
    "when": datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
    "amount": Decimal("12.34"),
}


@postgres_only
def test_each_value_comes_back_as_psycopgs_cursor_gives_it(connect):
    connection = connect(autocommit=True)
    series = "SELECT n, 'row ' || n FROM generate_series(1, %(rows)s::INTEGER) AS n ORDER BY n"

    through_pipeline = read_together(connection, [(VALUES, GIVEN), (series, {"rows": 3}), (series, {"rows": 0})])

    with connection.cursor() as cursor:
        expected = [cursor.execute(VALUES, GIVEN).fetchall()]
        expected += [cursor.execute(series, {"rows": 3}).fetchall(), cursor.execute(series, {"rows": 0}).fetchall()]
    assert through_pipeline == expected
    assert through_pipeline[1] == [(1, "row 1"), (2, "row 2"), (3, "row 3")]
    assert through_pipeline[0][0][5] == GIVEN["when"] and through_pipeline[0][0][9] == "x%"


@postgres_only
def test_each_statement_is_prepared_once_per_connection_and_again_for_values_of_another_type(connect):
    connection = connect(autocommit=True)
    statement = "SELECT %(n)s::BIGINT + 1"

    assert read_together(connection, [(statement, {"n": 1}), (statement, {"n": 2})]) == [[(2,)], [(3,)]]
    once = prepared_here(connection)
    assert read_together(connection, [(statement, {"n": 3})]) == [[(4,)]]

    assert len(once) == 1 and prepared_here(connection) == once
    # An int that needs eight bytes is sent as a bigint: a statement of its own on the server.
    assert read_together(connection, [(statement, {"n": 2**40})]) == [[(2**40 + 1,)]]
    assert len(prepared_here(connection)) == 2


@postgres_only
def test_nothing_is_prepared_where_the_connection_says_not_to(connect):
    connection = connect(autocommit=True, prepare_threshold=None)

    assert read_together(connection, [("SELECT %(n)s::INTEGER", {"n": 5})]) == [[(5,)]]
    assert prepared_here(connection) == set()


@postgres_only
def test_a_failing_statement_raises_the_servers_error_and_the_connection_goes_on(connect):
    connection = connect(autocommit=True)
    good, bad = "SELECT %(n)s::INTEGER", "SELECT 1 / %(zero)s::INTEGER"

    with pytest.raises(psycopg.errors.DivisionByZero):
        read_together(connection, [(good, {"n": 1}), (bad, {"zero": 0}), ("SELECT 'after'", {})])

    assert connection.execute("SELECT 'usable'").fetchone() == ("usable",)
    # The statement skipped after the error was never prepared: it is, when next sent.
    assert read_together(connection, [("SELECT 'after'", {}), (bad, {"zero": 1})]) == [[("after",)], [(1,)]]


@postgres_only
def test_a_value_that_cannot_be_sent_fails_before_anything_is_sent(connect):
    connection = connect(autocommit=True)

    with pytest.raises(psycopg.ProgrammingError):
        read_together(connection, [("SELECT %(n)s::INTEGER", {"n": object()})])

    assert read_together(connection, [("SELECT %(n)s::INTEGER", {"n": 1})]) == [[(1,)]]


@postgres_only
def test_reads_run_in_the_transaction_a_connection_is_in_and_never_begin_one(connect):
    connection = connect()
    assert not can_read_together(connection), "psycopg would begin a transaction first"
    connection.execute("CREATE TEMPORARY TABLE seen (n INTEGER)")
    connection.execute("INSERT INTO seen VALUES (1)")

    assert can_read_together(connection)
    assert read_together(connection, [("SELECT count(*) FROM seen", {})]) == [[(1,)]]
    connection.rollback()
    assert can_read_together(connect(autocommit=True))


@postgres_only
def test_a_connection_the_server_ends_while_answering_fails_at_once_and_is_closed(connect):
    """So that SQLAlchemy takes it for lost and the page runs again on a new one."""
    connection = connect(autocommit=True)
    backend = connection.info.backend_pid

    def end_it() -> None:
        time.sleep(0.2)
        with connect(autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])

    ender = threading.Thread(target=end_it)
    ender.start()
    started = time.monotonic()
    try:
        with pytest.raises(psycopg.OperationalError):
            read_together(connection, [("SELECT 1", {}), ("SELECT pg_sleep(5)::TEXT", {}), ("SELECT 2", {})])
    finally:
        ender.join()
    assert time.monotonic() - started < 4, "it waited for the sleep the server never finished"
    assert connection.closed


@postgres_only
def test_other_threads_run_while_the_server_answers(connect):
    connection = connect(autocommit=True)
    finished = threading.Event()
    ticks = 0

    def count_meanwhile() -> None:
        nonlocal ticks
        while not finished.is_set():
            ticks += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count_meanwhile)
    counter.start()
    try:
        ticks_before = ticks
        assert read_together(connection, [("SELECT pg_sleep(0.3)::TEXT", {})]) == [[("",)]]
        ticks_during = ticks - ticks_before
    finally:
        finished.set()
        counter.join()
    assert ticks_during > 20, "the wait held the interpreter's lock"
