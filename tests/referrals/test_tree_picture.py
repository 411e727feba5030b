"""The referral tree as a picture on the problem page (marketplace/web/tree_picture.py): the
company at the root, each link's state, the paid chain with each share, the viewer's place,
an accessible name and description, and the text tree kept beside it."""

import re

from marketplace.accounts import service as accounts
from marketplace.money import format_money
from marketplace.referrals import chains
from marketplace.referrals.models import ReferralStatus
from marketplace.web.tree_picture import Link, Sketch, tree_section
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


def test_a_tree_is_drawn_once_for_each_sketch_of_it(app):
    """Each process draws the section once for what it shows (``tree_section``): an equal
    sketch, made anew on another view, gets the same markup; one that differs in anything it
    shows is drawn anew."""
    link = Link(7, "Ann Example", ReferralStatus.CLAIMED, 3, ())
    sketch = Sketch("Fix our replication", "Acme", "USD", (link,), 7, (), ())
    with app.test_request_context():
        drawn = tree_section(sketch)
        assert tree_section(Sketch(*sketch)) is drawn
        assert "Ann Example (you)" in drawn and "The tree as a list" in drawn
        elsewhere = tree_section(sketch._replace(place_id=None))
        assert "Ann Example (you)" not in elsewhere and "Ann Example" in elsewhere


def test_each_change_to_a_tree_shows_the_next_time_it_is_seen(session, world, open_problem, browser):
    """No drawing outlives what it shows: a forward, its claim and a change of name each show
    on the next view of the same page by the same member."""
    problem = open_problem()
    build.chain(session, problem, [world.ann])
    ann = browser()
    ann.login(world.ann.email)
    page = f"/problems/{problem.id}"
    assert "forwarded" not in picture_in(ann.get(page).text)
    referral = chains.forward(session, world.ann, problem.id, to_email=world.bob.email)
    session.commit()
    assert "sent, not claimed yet" in picture_in(ann.get(page).text)
    chains.claim(session, world.bob, referral.token)
    session.commit()
    claimed = picture_in(ann.get(page).text)
    assert world.bob.name in claimed and "sent, not claimed yet" not in claimed
    accounts.update_profile(session, world.bob, name="Robert Renamed", headline="", skills=[], show_name_on_chains=True)
    session.commit()
    assert "Robert Renamed" in picture_in(ann.get(page).text)
