"""Anonymity holds everywhere (marketplace/referrals/appearance.py).

One settled problem with two members who keep their names off chains, walked as every person
involved and as an outsider: every page and every API answer that a GET can reach, every e-mail
and every in-app notification. A name may reach only the people who may see it.

Ann (anonymous) picks the problem and forwards it to Bob; Bob forwards it to Cleo (anonymous);
Cleo forwards it to an address that has no account and introduces Dev, who agrees with a note;
the company accepts.
"""

import re

import pytest
from sqlalchemy import update

from marketplace.accounts.models import User
from marketplace.referrals import chains, introductions
from marketplace.workflows import settlement as settlement_workflow

STRANGER = "stranger@elsewhere.example"


@pytest.fixture
def settled(session, world, open_problem):
    session.execute(update(User).where(User.id.in_([world.ann.id, world.cleo.id])).values(show_name_on_chains=False))
    session.commit()
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    to_bob = chains.forward(session, world.ann, problem.id, to_user_id=world.bob.id)
    chains.claim(session, world.bob, to_bob.token)
    to_cleo = chains.forward(session, world.bob, problem.id, to_user_id=world.cleo.id)
    chains.claim(session, world.cleo, to_cleo.token)
    chains.forward(session, world.cleo, problem.id, to_email=STRANGER, note="You might know someone")
    introduction = introductions.introduce(
        session, world.cleo, problem.id, candidate_user_id=world.dev.id, message="Dev rebuilt replication twice."
    )
    introductions.consent(session, introduction, world.dev, accept=True, note="Evenings work best for me.")
    settlement_workflow.accept_introduction(session, world.owner, introduction.id)
    session.commit()
    return problem, introduction, {"ann": to_bob.token, "bob": to_bob.token, "cleo": to_cleo.token}


def secrets_hidden_from(world, viewer) -> dict[str, str]:
    """What this viewer must never see, by what it is. Bob dealt with both anonymous members
    directly; Dev was introduced by Cleo; only Cleo sent the problem to the stranger's address."""
    hidden = {}
    if viewer not in (world.ann, world.bob):
        hidden["Ann's name"] = world.ann.name
    if viewer not in (world.cleo, world.bob, world.dev):
        hidden["Cleo's name"] = world.cleo.name
    if viewer is not world.cleo:
        hidden["the stranger's address"] = STRANGER
    return hidden


def get_routes(app, ids: dict[str, object]) -> list[str]:
    """Every GET route of the pages and the API, with its arguments filled in; routes whose
    arguments this walk cannot fill (static files, e-mail links) are listed by the caller's check."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static" or rule.endpoint.startswith("bootstrap"):
            continue
        if not set(rule.arguments) <= set(ids):
            continue
        urls.append(rule.build({name: ids[name] for name in rule.arguments}, append_unknown=False)[1])
    return urls


def test_anonymous_members_stay_anonymous_on_every_route_e_mail_and_notification(
    app, settled, world, browser, api, sent_mail
):
    problem, introduction, tokens = settled
    viewers = [world.owner, world.admin, world.employee, world.outsider, world.dev, world.ann, world.bob, world.cleo]
    seen_routes: set[str] = set()
    for viewer in viewers:
        hidden = secrets_hidden_from(world, viewer)
        person = browser()
        person.login(viewer.email)
        caller = api(viewer)
        ids = {"problem_id": problem.id, "introduction_id": introduction.id, "user_id": viewer.id}
        own_token = next((token for name, token in tokens.items() if viewer is getattr(world, name)), None)
        if own_token:
            ids["token"] = own_token
        for url in get_routes(app, ids):
            seen_routes.add(re.sub(r"/\d+", "/<id>", url))
            response = caller.get(url.removeprefix("/api/v1")) if url.startswith("/api/") else person.get(url)
            assert response.status_code < 500, (viewer.name, url, response.status_code)
            for what, text in hidden.items():
                assert text not in response.text, f"{what} shown to {viewer.name} on {url}"
        for message in sent_mail.to(viewer.email):
            for what, text in hidden.items():
                assert text not in message.as_string(), f"{what} e-mailed to {viewer.name}: {message['Subject']}"
        inbox = caller.get("/me/notifications").get_json()["items"]
        for what, text in hidden.items():
            assert text not in str(inbox), f"{what} in {viewer.name}'s notifications"

    # The walk reached the pages that show chains: the problem page, its tree, the landing page.
    assert {"/problems/<id>", "/api/v1/problems/<id>/tree", "/api/v1/problems/<id>/introductions"} <= seen_routes
    assert any(route.startswith("/r/") for route in seen_routes)


def test_the_names_are_there_for_those_who_may_see_them(settled, world, browser, api):
    """The walk above is not vacuous: Bob sees both names, Cleo the stranger's address."""
    problem, _, _ = settled
    bob = browser()
    bob.login(world.bob.email)
    page = bob.get(f"/problems/{problem.id}").text
    assert world.ann.name in page and world.cleo.name in page

    tree = str(api(world.cleo).get(f"/problems/{problem.id}/tree").get_json())
    assert STRANGER in tree and world.ann.name not in tree

    listed = api(world.owner).get(f"/problems/{problem.id}/introductions").get_json()
    assert [(i["introducer"], i["introducer_id"], i["candidate_note"]) for i in listed] == [
        ("Anonymous member", None, "Evenings work best for me.")
    ]


def picture_in(html: str) -> str:
    """The referral tree's picture on a page (templates/referrals/_tree_svg.html)."""
    found = re.search(r'<svg[^>]*role="img".*?</svg>', html, re.S)
    assert found, "no picture of the referral tree"
    return found.group(0)


def test_the_tree_picture_names_only_whom_each_viewer_may_see(settled, world, browser):
    """The picture (its boxes and their tooltips) follows the same rule as the text tree: the
    company sees Ann and Cleo as anonymous members; Bob, who dealt with both, sees their names."""
    problem, _, _ = settled
    for viewer in (world.owner, world.employee, world.ann, world.bob, world.cleo):
        person = browser()
        person.login(viewer.email)
        picture = picture_in(person.get(f"/problems/{problem.id}").text)
        for what, text in secrets_hidden_from(world, viewer).items():
            assert text not in picture, f"{what} in {viewer.name}'s picture"
        if viewer in (world.owner, world.employee):
            assert picture.count("Anonymous member") >= 2 and world.bob.name in picture
    bob = browser()
    bob.login(world.bob.email)
    picture = picture_in(bob.get(f"/problems/{problem.id}").text)
    assert world.ann.name in picture and world.cleo.name in picture
