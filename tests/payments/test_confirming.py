"""After paying, the problem page tells the company the real state (marketplace/web/problems.py,
``confirming_payment``): while the problem awaits Stripe's webhook it says so and reloads itself,
a bounded number of times, and once the problem is open it neither says so nor reloads."""

from marketplace.web.problems import CONFIRMING_RELOADS
from marketplace.workflows import funding
from tests import builders as build

REFRESH = 'http-equiv="refresh"'


def test_back_from_checkout_the_page_says_it_is_confirming_and_reloads(session, world, browser):
    problem = build.problem(session, world.owner, world.company.id, "published")
    owner = browser()
    owner.login(world.owner.email)
    back = owner.get(f"/problems/{problem.id}/funded")
    assert back.status_code == 302 and back.headers["Location"].endswith(f"/problems/{problem.id}?confirming=1")
    page = owner.get(f"/problems/{problem.id}?confirming=1").text
    assert "Payment received, confirming with Stripe…" in page
    assert f'{REFRESH} content="3; url=/problems/{problem.id}?confirming=2"' in page
    assert "Fund the bounty" not in page  # no second payment while the first is confirmed


def test_it_stops_reloading_after_a_while_and_says_what_happens_next(session, world, browser):
    problem = build.problem(session, world.owner, world.company.id, "published")
    owner = browser()
    owner.login(world.owner.email)
    page = owner.get(f"/problems/{problem.id}?confirming={CONFIRMING_RELOADS + 5}").text
    assert REFRESH not in page and "Stripe has not confirmed it yet" in page


def test_once_the_webhook_landed_the_page_shows_the_open_problem(session, world, browser):
    problem = build.problem(session, world.owner, world.company.id, "published")
    funding.fund_problem(session, problem.id)
    session.commit()
    owner = browser()
    owner.login(world.owner.email)
    page = owner.get(f"/problems/{problem.id}?confirming=7").text
    assert REFRESH not in page and "confirming with Stripe" not in page


def test_only_the_company_sees_the_confirming_state(session, world, browser):
    problem = build.problem(session, world.owner, world.company.id, "published", visibility="public")
    ann = browser()
    ann.login(world.ann.email)
    response = ann.get(f"/problems/{problem.id}?confirming=1")
    assert REFRESH not in response.text and "confirming with Stripe" not in response.text
