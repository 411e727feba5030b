"""The referral tree as a picture on the problem page (marketplace/web/tree_picture.py): the
company at the root, each link's state, the paid chain with each share, the viewer's place,
an accessible name and description, and the text tree kept beside it."""

import re

from marketplace.money import format_money
from marketplace.referrals import chains
from tests import builders as build


def picture_in(html: str) -> str:
    found = re.search(r'<svg[^>]*role="img".*?</svg>', html, re.S)
    assert found, "no picture of the referral tree"
    return found.group(0)


def test_the_company_sees_the_paid_chain_with_each_share(session, world, open_problem, browser):
    problem = open_problem()
    result = build.accepted(session, world.owner, problem, [world.ann, world.bob])
    owner = browser()
    owner.login(world.owner.email)
    html = owner.get(f"/problems/{problem.id}").text
    picture = picture_in(html)
    assert 'aria-labelledby="tree-picture-title tree-picture-desc"' in picture
    assert f'<title id="tree-picture-title">Referral tree of {problem.title}</title>' in picture
    assert "the paid chain has 2 links" in picture
    assert world.company.name in picture and world.ann.name in picture and world.bob.name in picture
    for share in result.settlement.shares:
        assert f"paid {format_money(share.amount, problem.currency)}" in picture
    assert picture.count('class="tree-node paid') == 3  # the company and both links
    assert "introduction accepted" in picture
    # Positions and sizes are whole units: written without a decimal point.
    geometry = re.findall(r' (?:x|y|width|height|viewBox|transform|d)="([^"]*)"', picture)
    assert len(geometry) > 20 and not any("." in value for value in geometry), geometry
    # The text tree stays on the page as the accessible alternative.
    assert "<details><summary" in html and "The tree as a list" in html


def test_a_member_sees_their_place_and_the_path_above_it_only(session, world, open_problem, browser):
    problem = open_problem()
    build.chain(session, problem, [world.ann, world.bob])
    build.chain(session, problem, [world.cleo])
    bob = browser()
    bob.login(world.bob.email)
    picture = picture_in(bob.get(f"/problems/{problem.id}").text)
    assert f"{world.bob.name} (you)" in picture and 'class="tree-node mine"' in picture
    assert world.ann.name in picture and "forwarded" in picture
    assert world.cleo.name not in picture  # another chain: not Bob's to see
    assert "paid" not in picture


def test_an_unclaimed_forward_is_drawn_as_sent(session, world, open_problem, browser):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    chains.forward(session, world.ann, problem.id, to_email="friend@elsewhere.example")
    session.commit()
    ann = browser()
    ann.login(world.ann.email)
    picture = picture_in(ann.get(f"/problems/{problem.id}").text)
    assert "sent, not claimed yet" in picture
    assert "friend@elsewhere.example" in picture  # Ann sent it: the address is hers to see


def test_no_picture_for_a_visitor(world, open_problem, client):
    problem = open_problem()
    assert 'role="img"' not in client.get(f"/problems/{problem.id}").text
