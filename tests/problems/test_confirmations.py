"""Confirmation pages before money moves, as the server answers them: only a manager of the
company reaches them, they state the amounts, and a decision already taken is not offered again.
(The clicks themselves are in tests/browser/test_money_moves.py.)"""

from tests import builders as build
from tests.builders import logged_in


def test_the_accept_confirmation_states_each_share_and_only_managers_see_it(browser, world, open_problem, session):
    problem = open_problem()
    introduction = build.introduction(session, problem, [world.ann, world.bob, world.cleo], world.dev)
    url = f"/introductions/{introduction.id}/accept"

    page = logged_in(browser, world.owner).get(url)

    assert page.status_code == 200
    assert "Link 1: Ann Li" in page.text and "Link 3: Cleo Duarte" in page.text and "Platform fee" in page.text
    assert f'action="/introductions/{introduction.id}/accept"' in page.text and 'name="csrf_token"' in page.text
    assert logged_in(browser, world.employee).get(url).status_code == 403
    # Whoever may not see the introduction is told it does not exist, as the API answers them.
    for outsider in (world.ann, world.outsider):
        refused = logged_in(browser, outsider).get(url)
        assert refused.status_code == 404 and "No such introduction." in refused.text


def test_a_decided_introduction_or_a_closed_problem_is_not_offered_again(browser, world, open_problem, session):
    problem = open_problem()
    result = build.accepted(session, world.owner, problem, [world.ann])
    owner = logged_in(browser, world.owner)

    accept_again = owner.get(f"/introductions/{result.introduction.id}/accept", follow_redirects=True)
    cancel_now = owner.get(f"/problems/{problem.id}/cancel", follow_redirects=True)

    assert "no longer waiting for your decision" in accept_again.text
    assert "can no longer be cancelled" in cancel_now.text


def test_the_cancel_confirmation_says_nothing_was_charged_for_an_unpaid_problem(browser, world, session):
    problem = build.problem(session, world.owner, world.company.id, "published")
    session.commit()

    page = logged_in(browser, world.owner).get(f"/problems/{problem.id}/cancel")

    assert "was never paid, so nothing is charged or refunded" in page.text
    assert "Cancel the problem" in page.text
    assert logged_in(browser, world.employee).get(f"/problems/{problem.id}/cancel").status_code == 403


def test_coming_back_from_checkout_without_paying_says_nothing_was_charged(browser, world, session, client):
    problem = build.problem(session, world.owner, world.company.id, "published")
    session.commit()
    url = f"/problems/{problem.id}?payment=cancelled"

    assert "Payment cancelled: nothing was charged." in logged_in(browser, world.owner).get(url).text
    assert "Payment cancelled" not in logged_in(browser, world.owner).get(f"/problems/{problem.id}").text


def test_the_favicon_is_the_mark(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert b"<svg" in response.data
