"""Visitors' pages come from a cache that is never stale, and nothing of a logged-in member's
is ever cached or marked storable by a shared cache (marketplace/caching.py)."""

from contextlib import contextmanager

import pytest
from flask import request_started
from redis import Redis
from sqlalchemy import select, text

from marketplace import caching
from marketplace.accounts import service as accounts
from marketplace.db import db, utcnow
from marketplace.problems.models import Problem
from marketplace.referrals import chains
from marketplace.workflows import funding
from tests import builders as build
from tests.conftest import POSTGRES
from tests.statements import statements

WEB_PAGES = ["/", "/problems", "/problems?sort=bounty", "/problems/{id}"]
API_ANSWERS = ["/api/v1/problems", "/api/v1/problems?limit=5", "/api/v1/problems/{id}"]
VISITOR_PAGES = WEB_PAGES + API_ANSWERS


@contextmanager
def requests_started(app):
    """The apps whose request cycle started while inside: the fast path starts none."""
    started = []

    def record(sender, **extra):
        started.append(sender)

    with request_started.connected_to(record, app):
        yield started


@pytest.fixture
def problem(session, world):
    return build.problem(session, world.owner, world.company.id, "open", title="Tune our Kafka consumers")


@pytest.mark.parametrize("page", VISITOR_PAGES)
def test_a_visitor_gets_the_page_from_the_cache_and_a_304_when_it_has_it(page, app, client, problem):
    url = page.format(id=problem.id)
    first = client.get(url)
    assert first.status_code == 200 and "Tune our Kafka consumers" in first.text
    assert first.headers["Cache-Control"] == "public, no-cache" and first.headers["ETag"]
    assert "Cookie" in first.headers["Vary"]
    assert "csrf_token" not in first.text and "Set-Cookie" not in first.headers  # nothing personal in it

    with statements(app) as log:
        again = client.get(url)
    assert again.text == first.text
    assert len(log) == 1, str(log)  # the version stamp, and nothing else

    unchanged = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304 and unchanged.data == b""


@pytest.mark.parametrize("page", VISITOR_PAGES)
def test_no_cached_page_is_stale_after_a_write(page, session, client, world, problem):
    url = page.format(id=problem.id)
    before = client.get(url)
    assert "Tune our Kafka consumers" in before.text

    funding.cancel_problem(session, world.owner, problem.id)  # a status change through a guarded update
    session.commit()
    after = client.get(url, headers={"If-None-Match": before.headers["ETag"]})

    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    if page.endswith("/problems/{id}"):
        assert "cancelled" in after.text
    else:
        assert "Tune our Kafka consumers" not in after.text  # the board lists open problems only


def test_a_new_problem_is_on_the_board_at_once(session, client, world, problem):
    assert "Fix our Postgres replication lag" not in client.get("/problems").text
    build.problem(session, world.owner, world.company.id, "open")
    assert "Fix our Postgres replication lag" in client.get("/problems").text


@pytest.mark.parametrize("page", WEB_PAGES)
def test_no_logged_in_content_is_cached_or_served_from_the_cache(page, client, browser, world, problem):
    url = page.format(id=problem.id)
    client.get(url)  # a visitor's copy is in the cache
    member = browser()
    member.login(world.owner.email)

    mine = member.get(url, follow_redirects=True)

    assert world.owner.name in mine.text  # the navigation is the member's, not the visitor's copy
    assert mine.headers["Cache-Control"] == "private, no-cache" and "ETag" not in mine.headers
    assert world.owner.name not in client.get(url).text  # and the member's page was not kept


def test_a_visitor_with_a_message_waiting_is_not_served_from_the_cache(client, browser, world, problem):
    client.get("/problems")
    member = browser()
    member.login(world.ann.email)
    logged_out = member.submit("/problems", action="/logout", follow=False)
    assert logged_out.status_code == 302

    page = member.get("/problems")
    assert "logged out" in page.text.lower()  # the flash is shown once...
    assert "logged out" not in client.get("/problems").text.lower()  # ...and never cached
    assert "logged out" not in member.get("/problems").text.lower()


def test_every_other_response_is_private(client, world, api):
    assert client.get("/login").headers["Cache-Control"] == "private, no-cache"
    assert api(world.ann).get("/me").headers["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize("page", VISITOR_PAGES)
def test_a_cookieless_visitor_is_answered_before_the_request_cycle(page, app, client, problem):
    """The fast path (``VisitorFastPath``): after the first visitor, the same page under the same
    stamp costs one statement and no Flask request at all, with the same headers and body."""
    url = page.format(id=problem.id)
    first = client.get(url)
    with requests_started(app) as started, statements(app) as log:
        again = client.get(url)
        unchanged = client.get(url, headers={"If-None-Match": first.headers["ETag"]})

    assert started == [] and len(log) == 2, str(log)  # the stamp, once per request
    assert again.status_code == 200 and again.data == first.data
    assert {k: v for k, v in again.headers.items()} == {k: v for k, v in first.headers.items()}
    assert unchanged.status_code == 304 and unchanged.data == b"" and unchanged.headers["ETag"] == first.headers["ETag"]


def test_the_fast_path_remembers_where_each_path_goes_and_no_more_paths_than_its_bound(app, problem, monkeypatch):
    """It matches a path against the app's rules once, then remembers the answer, whether the
    path is a visitor's cached page or not; anyone can ask for any path, so it forgets them all
    when it holds ``KEPT_PATHS``."""
    monkeypatch.setattr(caching, "KEPT_PATHS", 3)
    fast_path = app.wsgi_app
    client = app.test_client(use_cookies=False)  # a visitor who keeps no cookie, the login form's neither
    page, login, nowhere = f"/problems/{problem.id}", "/login", "/no/such/page"
    first = client.get(page)
    for _ in range(2):
        with requests_started(app) as started:
            assert client.get(page).data == first.data
            assert client.get(login).status_code == 200
            assert client.get(nowhere).status_code == 404
        assert started == [app, app], "the login form and the 404 through the app, the page from the fast path"
    assert set(fast_path._stamp_readers) == {page, login, nowhere}

    client.get("/problems/999999")
    assert set(fast_path._stamp_readers) == {"/problems/999999"}, "forgotten at the bound, then the new one kept"
    with requests_started(app) as started:
        assert client.get(page).data == first.data
    assert started == []


@pytest.mark.skipif(not POSTGRES, reason="SQLite has no connection to close")
def test_a_visitor_is_answered_when_the_database_closed_the_fast_paths_connection(app, client, problem):
    """The fast path's connections are not pinged before each use (``Database.read_engine``):
    one the server closed fails, and that request is answered through the app instead."""
    first = client.get("/problems")
    client.get("/problems")  # the fast path's pool now holds a connection
    with db.engine.connect() as connection:  # as a restart of the database would
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )

    with requests_started(app) as started:
        closed = client.get("/problems")
        again = client.get("/problems")

    assert closed.status_code == 200 and closed.data == first.data
    assert again.status_code == 200 and again.data == first.data
    assert started == [app], "the first through the app, the next from the fast path again"


@pytest.mark.skipif(not POSTGRES, reason="SQLite lets one writer at a time hold the database")
def test_a_write_that_commits_after_a_newer_one_still_reaches_the_visitors(app, client, session, world, problem):
    """Two writers at once, each with the time the app's clock gave it: the first writes its
    problem, the second writes another and commits first. The board a visitor gets in between
    is answered but neither kept nor given an ETag, so once the first commits the board shows
    it, though the newest time was already the second's (marketplace/caching.py,
    ``writers_in_flight``)."""
    other = build.problem(session, world.owner, world.company.id, "open", title="Speed up our CI")
    assert client.get("/problems").headers["ETag"]  # kept
    write = text("UPDATE problems SET title = :title, updated_at = :at WHERE id = :id")
    with db.engine.connect() as first, db.engine.connect() as second:
        first.execute(write, {"title": "Retitled while in flight", "at": utcnow(), "id": problem.id})
        second.execute(write, {"title": "Speed up our CI builds", "at": utcnow(), "id": other.id})
        second.commit()
        during = client.get("/problems")
        first.commit()
    after = client.get("/problems")

    assert "Speed up our CI builds" in during.text and "Retitled while in flight" not in during.text
    assert "Retitled while in flight" in after.text and after.headers["ETag"]
    assert "ETag" not in during.headers and "Last-Modified" not in during.headers


@pytest.mark.skipif(not POSTGRES, reason="SQLite's writers take turns, on one host's clock")
def test_a_rows_time_comes_from_the_databases_clock_not_from_what_the_app_sent(session, world, problem):
    """A write gets the time of the moment it holds its lock, from the clock every writer shares
    (``db.database_clock_statements``): not an older one from a web host's clock."""
    (referral,) = build.chain(session, problem, [world.ann])
    with db.engine.connect() as connection:
        before = connection.execute(text("SELECT clock_timestamp()")).scalar()
        for table, row in (("problems", problem.id), ("referrals", referral.id), ("users", world.ann.id)):
            connection.execute(text(f"UPDATE {table} SET updated_at = '2000-01-01Z' WHERE id = :id"), {"id": row})
            written = connection.execute(text(f"SELECT updated_at FROM {table} WHERE id = :id"), {"id": row}).scalar()
            assert written >= before, table
        connection.rollback()


def test_a_guarded_status_change_moves_the_time_and_reads_it_back_from_the_database(session, world, problem):
    """The guarded ``UPDATE`` of a status change sets ``updated_at`` by the column's own
    expression (``db.write_time``), as the ORM's flush does, and the instance reads the value the
    database wrote instead of one of its own."""
    before = problem.updated_at
    funding.cancel_problem(session, world.owner, problem.id)
    session.commit()
    stored = session.scalar(select(Problem.updated_at).where(Problem.id == problem.id))
    assert problem.updated_at == stored > before


def test_a_visitor_with_a_session_cookie_still_gets_the_cached_body_through_the_app(app, client, problem):
    client.get("/login")  # a session cookie now holds the form's CSRF token
    first = client.get("/problems")
    with requests_started(app) as started, statements(app) as log:
        again = client.get("/problems")
    assert started == [app] and len(log) == 1, str(log)
    assert again.data == first.data and again.headers["ETag"] == first.headers["ETag"]


def test_an_api_caller_with_a_token_gets_their_own_answer_never_a_visitors(app, client, api, session, world, problem):
    hidden = build.problem(
        session, world.owner, world.company.id, "open", title="Quietly hire a CFO", visibility="private"
    )
    for_visitors = client.get("/api/v1/problems")
    assert for_visitors.headers["Cache-Control"] == "public, no-cache" and "Quietly hire a CFO" not in for_visitors.text

    owners = api(world.owner).get("/problems")
    assert "Quietly hire a CFO" in owners.text  # the company sees its private problem
    assert owners.headers["Cache-Control"] == "private, no-cache" and "ETag" not in owners.headers
    assert "Quietly hire a CFO" not in client.get("/api/v1/problems").text  # and it was not kept for visitors
    assert client.get(f"/api/v1/problems/{hidden.id}").status_code == 404


# The landing page a referral link opens ---------------------------------------------------------


@pytest.fixture
def link(session, world, problem):
    """The address of a link Bob sent Cleo, unclaimed, on a chain Ann started."""
    build.chain(session, problem, [world.ann, world.bob])
    sent = chains.forward(session, world.bob, problem.id, to_user_id=world.cleo.id)
    session.commit()
    return f"/r/{sent.token}"


def test_a_visitor_opening_a_link_is_answered_from_the_cache(app, client, link):
    first = client.get(link)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "public, no-cache"
    assert "Bob Martins thinks you can help" in first.text and "Ann Li" in first.text
    with requests_started(app) as started, statements(app) as log:
        again = client.get(link)
    assert started == [] and len(log) == 1, str(log)  # one statement reads the three stamps
    assert again.data == first.data


def _claim(session, world, problem, token):
    chains.claim(session, world.cleo, token)


def _rename_the_sender(session, world, problem, token):
    accounts.update_profile(session, world.bob, name="Robert Martins", headline="", skills="", show_name_on_chains=True)


def _hide_the_first_link(session, world, problem, token):
    accounts.update_profile(session, world.ann, name="Ann Li", headline="", skills="", show_name_on_chains=False)


def _close_the_problem(session, world, problem, token):
    funding.cancel_problem(session, world.owner, problem.id)


@pytest.mark.parametrize(
    ("write", "shown", "gone"),
    [
        (_claim, "This link has been used", "Sign up to join"),
        (_rename_the_sender, "Robert Martins thinks you can help", "Bob Martins"),
        (_hide_the_first_link, "Anonymous member", "Ann Li"),
        (_close_the_problem, "This problem is no longer open", "Sign up to join"),
    ],
    ids=["the link is claimed", "its sender is renamed", "a link above hides its name", "the problem closes"],
)
def test_no_cached_landing_is_stale_after_a_write_to_what_it_shows(
    write, shown, gone, session, client, world, problem, link
):
    before = client.get(link)
    assert gone in before.text and shown not in before.text

    write(session, world, problem, link.removeprefix("/r/"))
    session.commit()
    after = client.get(link, headers={"If-None-Match": before.headers["ETag"]})

    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert shown in after.text and gone not in after.text


def test_the_member_a_link_was_sent_to_gets_their_own_landing(client, browser, world, link):
    assert "Join the chain" not in client.get(link).text  # a visitor's copy is in the cache
    cleo = browser()
    cleo.login(world.cleo.email)

    mine = cleo.get(link)

    assert "Join the chain" in mine.text and mine.headers["Cache-Control"] == "private, no-cache"
    assert "Join the chain" not in client.get(link).text


def test_a_link_nobody_was_given_is_not_found_and_not_kept(client):
    assert client.get("/r/no-such-token").status_code == 404
    assert client.get("/r/no-such-token").status_code == 404


REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.mark.parametrize("app_overrides", [{"FRAUD_SCREENING": False, "CACHE_URL": REDIS_URL}])
def test_with_a_cache_url_the_visitors_pages_live_in_redis_for_every_process(app, client, problem):
    """CACHE_URL puts the page cache in Redis, where every worker process finds what one of them
    rendered: the fast path answers from it, and without it the page is rendered again."""
    store = Redis.from_url(REDIS_URL)
    store.flushdb()
    first = client.get("/problems")
    assert store.dbsize() > 0  # the page went to Redis, not to this process's memory

    with requests_started(app) as started:
        again = client.get("/problems")
    assert started == [] and again.data == first.data

    store.flushdb()
    with requests_started(app) as started:
        rendered = client.get("/problems")
    assert started == [app] and rendered.data == first.data
