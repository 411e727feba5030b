"""Inviting someone who is not a member when adding a connection (network.service.invite_to_join):
the network page offers it when no member has the address; one e-mail goes out, once per
address, a few a day; when the address joins and proves it, a connection request from the
inviter waits for them."""

import pytest
from sqlalchemy import select

from marketplace.accounts import service as accounts
from marketplace.errors import Conflict, TooManyRequests
from marketplace.network import service as network
from marketplace.network.models import ConnectionRequest, RequestStatus
from tests import builders as build

NEWCOMER = "nina@elsewhere.example"


def test_the_page_offers_to_invite_an_address_without_an_account(world, browser, sent_mail):
    ann = browser()
    ann.login(world.ann.email)
    page = ann.submit("/network", {"email": NEWCOMER, "note": "We climbed together"}, action="/network/connect")
    assert 'id="invite-to-join"' in page.text and f"Invite {NEWCOMER} to join" in page.text
    done = ann.submit("/network", {"email": NEWCOMER, "note": "We climbed together"}, action="/network/invite")
    assert f"We e-mailed {NEWCOMER} your invitation." in done.text
    (mail,) = sent_mail.to(NEWCOMER)
    assert world.ann.name in mail["Subject"] and "We climbed together" in mail.get_body().get_content()


def test_one_invitation_per_address_and_a_few_a_day(session, world):
    network.invite_to_join(session, world.ann, email=NEWCOMER, note="We climbed together")
    with pytest.raises(Conflict):
        network.invite_to_join(session, world.ann, email=NEWCOMER.upper(), note="Again")
    with pytest.raises(Conflict):
        network.invite_to_join(session, world.ann, email=world.bob.email, note="Bob is a member")
    for i in range(network.JOIN_INVITATIONS_PER_DAY - 1):
        network.invite_to_join(session, world.ann, email=f"friend{i}@elsewhere.example", note="A friend")
    with pytest.raises(TooManyRequests):
        network.invite_to_join(session, world.ann, email="one-more@elsewhere.example", note="A friend")


def test_once_the_address_joins_and_proves_it_the_request_waits_for_them(session, world):
    network.invite_to_join(session, world.ann, email=NEWCOMER, note="We climbed together")
    session.commit()
    nina = build.user(session, "Nina Newcomer", NEWCOMER, verified=False)
    assert session.scalars(select(ConnectionRequest)).all() == []  # not before the address is proven
    accounts.mark_email_verified(session, nina)
    session.commit()
    (request,) = session.scalars(select(ConnectionRequest)).all()
    assert (request.from_user_id, request.to_user_id, request.status) == (world.ann.id, nina.id, RequestStatus.PENDING)
    assert request.note == "We climbed together"
