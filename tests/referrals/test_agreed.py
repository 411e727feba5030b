"""The expert's side of the loop: the dashboard lists the introductions they agreed to, with
what came of each (templates/referrals/_agreed.html)."""

from marketplace.workflows import settlement as settlement_workflow
from tests import builders as build


def test_the_expert_sees_what_they_agreed_to_and_the_outcome(session, world, open_problem, browser):
    waiting = build.introduction(session, open_problem(title="Waiting one"), [world.ann], candidate=world.dev)
    accepted = build.introduction(session, open_problem(title="Accepted one"), [world.bob], candidate=world.dev)
    settlement_workflow.accept_introduction(session, world.owner, accepted.id)
    session.commit()
    dev = browser()
    dev.login(world.dev.email)
    html = dev.get("/dashboard").text
    agreed = html[html.index("Introductions I agreed to") :]
    assert "Waiting one" in agreed and "the company has not decided yet" in agreed
    assert "Accepted one" in agreed and "expect them to contact you" in agreed
    assert waiting.consent_token in agreed


def test_nothing_listed_before_agreeing(session, world, open_problem, browser):
    build.chain(session, open_problem(), [world.ann])
    dev = browser()
    dev.login(world.dev.email)
    assert "Introductions I agreed to" not in dev.get("/dashboard").text
