"""The problem page's forward and introduce forms: a mistake re-renders the page with what was
typed and the error beside the field, instead of a flash over an emptied form."""

import re

from sqlalchemy import select

from marketplace.referrals import chains
from marketplace.referrals.models import Referral
from tests.builders import logged_in
from tests.conftest import csrf_token


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


def test_a_field_in_error_is_marked_invalid_and_tied_to_its_message(browser, world, open_problem, session):
    """``templates/_form.html`` writes each field's markup itself: an error marks the field
    invalid for browsers and screen readers and names the message that explains it, and the
    limits the validators set reach the input."""
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    session.commit()
    ann = logged_in(browser, world.ann)

    page = ann.submit(f"/problems/{problem.id}", {"to_email": "", "note": ""}, action=f"/problems/{problem.id}/forward")

    field = re.search(r'<input class="form-control is-invalid" id="to_email"[^>]*>', page.text)
    assert field, page.text
    assert 'aria-invalid="true"' in field.group(0) and 'aria-describedby="to_email-help"' in field.group(0)
    assert 'maxlength="254"' in field.group(0) and " required" in field.group(0)
    assert re.search(r'<div class="invalid-feedback d-block" id="to_email-help">[^<]+</div>', page.text)
    note = re.search(r'<textarea class="form-control" id="note"[^>]*>', page.text)
    assert note and 'aria-describedby="note-help"' in note.group(0)
    assert '<small class="form-text text-body-secondary" id="note-help">Why you thought of them.' in page.text


def test_a_password_is_never_written_back_into_the_page(browser, world):
    page = browser().submit("/login", {"email": "ann@example.com", "password": "not-her-password"})
    assert page.status_code in (200, 401)
    field = re.search(r'<input class="form-control[^"]*" id="password"[^>]*>', page.text)
    assert field and "value=" not in field.group(0) and "not-her-password" not in page.text


def test_a_checkbox_label_and_its_description_read_as_two_phrases(browser, world):
    """The description follows the label on the same line: without white space between them a
    browser runs the two together ("chainsIf unticked")."""
    page = logged_in(browser, world.ann).get("/profile")
    assert re.search(r"Show my name on referral chains</label>\s+<small", page.text), page.text


def test_a_blank_form_carries_the_viewers_own_token_and_posts_to_its_own_problem(browser, world, open_problem, session):
    """The empty forward and introduce forms are rendered once per process for each problem
    (``web.util.form_markup``): each viewer must still get the token of their own session, and
    each problem forms that post to it."""
    first, second = open_problem(), open_problem(title="Tune our Kafka consumers")
    for problem in (first, second):
        for member in (world.ann, world.bob):
            chains.pick_from_board(session, member, problem.id)
    session.commit()
    ann, bob = logged_in(browser, world.ann), logged_in(browser, world.bob)

    for problem in (first, second, first):
        for member in (ann, bob):
            page = member.get(f"/problems/{problem.id}").text
            forms = re.findall(r'<form action="([^"]+)" method="post" class="form" novalidate>(.*?)</form>', page, re.S)
            assert [action for action, _ in forms] == [
                f"/problems/{problem.id}/forward",
                f"/problems/{problem.id}/introductions",
            ]
            tokens = {re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', body).group(1) for _, body in forms}
            assert tokens == {csrf_token(page)}

    forwarded = bob.submit(
        f"/problems/{second.id}", {"to_email": "cleo@example.com"}, action=f"/problems/{second.id}/forward"
    )
    assert forwarded.status_code == 200
    session.expire_all()
    sent = session.scalars(select(Referral).where(Referral.sender_id == world.bob.id)).all()
    assert [(referral.problem_id, referral.recipient_user_id) for referral in sent] == [(second.id, world.cleo.id)]
