"""The problem page's forward and introduce forms: a mistake re-renders the page with what was
typed and the error beside the field, instead of a flash over an emptied form."""

from sqlalchemy import select

from marketplace.referrals import chains
from marketplace.referrals.models import Referral
from tests.builders import logged_in


def test_a_bad_address_keeps_what_was_typed_and_names_the_mistake(browser, world, open_problem, session):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    session.commit()
    ann = logged_in(browser, world.ann)

    page = ann.submit(
        f"/problems/{problem.id}",
        {"to_email": "bob-at-example.com", "note": "You know DBAs"},
        action=f"/problems/{problem.id}/forward",
    )

    assert page.status_code == 200
    assert 'value="bob-at-example.com"' in page.text and "You know DBAs</textarea>" in page.text
    assert "invalid-feedback" in page.text
    session.expire_all()
    assert session.scalars(select(Referral).where(Referral.depth == 2)).all() == []


def test_an_empty_address_and_a_short_introduction_are_answered_beside_their_fields(
    browser, world, open_problem, session
):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    session.commit()
    ann = logged_in(browser, world.ann)

    forwarded = ann.submit(f"/problems/{problem.id}", {"to_email": ""}, action=f"/problems/{problem.id}/forward")
    introduced = ann.submit(
        f"/problems/{problem.id}",
        {"candidate_email": "dev@example.com", "message": "short"},
        action=f"/problems/{problem.id}/introductions",
    )

    assert "This field is required." in forwarded.text
    assert 'value="dev@example.com"' in introduced.text
    assert "Field must be between 10 and 5000 characters long." in introduced.text
