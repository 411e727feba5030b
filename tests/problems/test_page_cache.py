"""Visitors' pages come from a cache that is never stale, and nothing of a logged-in member's
is ever cached or marked storable by a shared cache (marketplace/web/caching.py)."""

import pytest

from marketplace.workflows import funding
from tests import builders as build
from tests.statements import statements

VISITOR_PAGES = ["/", "/problems", "/problems?sort=bounty", "/problems/{id}"]


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
    if page.startswith("/problems/"):
        assert "cancelled" in after.text
    else:
        assert "Tune our Kafka consumers" not in after.text  # the board lists open problems only


def test_a_new_problem_is_on_the_board_at_once(session, client, world, problem):
    assert "Fix our Postgres replication lag" not in client.get("/problems").text
    build.problem(session, world.owner, world.company.id, "open")
    assert "Fix our Postgres replication lag" in client.get("/problems").text


@pytest.mark.parametrize("page", VISITOR_PAGES)
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
