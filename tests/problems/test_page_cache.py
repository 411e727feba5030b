"""Visitors' pages come from a cache that is never stale, and nothing of a logged-in member's
is ever cached or marked storable by a shared cache (marketplace/caching.py)."""

import pytest
from flask import request_started

from marketplace.workflows import funding
from tests import builders as build
from tests.statements import statements

WEB_PAGES = ["/", "/problems", "/problems?sort=bounty", "/problems/{id}"]
API_ANSWERS = ["/api/v1/problems", "/api/v1/problems?limit=5", "/api/v1/problems/{id}"]
VISITOR_PAGES = WEB_PAGES + API_ANSWERS


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
    started = []

    def record(sender, **extra):
        started.append(sender)

    with request_started.connected_to(record, app), statements(app) as log:
        again = client.get(url)
        unchanged = client.get(url, headers={"If-None-Match": first.headers["ETag"]})

    assert started == [] and len(log) == 2, str(log)  # the stamp, once per request
    assert again.status_code == 200 and again.data == first.data
    assert {k: v for k, v in again.headers.items()} == {k: v for k, v in first.headers.items()}
    assert unchanged.status_code == 304 and unchanged.data == b"" and unchanged.headers["ETag"] == first.headers["ETag"]


def test_a_visitor_with_a_session_cookie_still_gets_the_cached_body_through_the_app(app, client, problem):
    client.get("/login")  # a session cookie now holds the form's CSRF token
    first = client.get("/problems")
    started = []

    def record(sender, **extra):
        started.append(sender)

    with request_started.connected_to(record, app), statements(app) as log:
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
