"""Connection requests and confirmations reach the other member as notifications
(``signals.connection_requested``/``connection_confirmed``, marketplace/notifications/receivers.py)."""

from sqlalchemy import select

from marketplace.network import service as network
from marketplace.notifications.models import Notification


def notifications_of(session, user) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)))


def test_the_member_asked_hears_who_asks_and_the_asker_hears_the_confirmation(session, world):
    request = network.request_connection(session, world.ann, email=world.bob.email, note="We met at PGConf")
    session.commit()
    (asked,) = notifications_of(session, world.bob)
    assert asked.kind == "connection_request" and asked.title == f"{world.ann.name} asks to connect with you"
    assert asked.body == "We met at PGConf" and asked.link == "/network"
    assert notifications_of(session, world.ann) == []

    network.answer_request(session, world.bob, request.id, "confirm")
    session.commit()
    (confirmed,) = notifications_of(session, world.ann)
    assert confirmed.kind == "connection_confirmed" and world.bob.name in confirmed.title
    assert len(notifications_of(session, world.bob)) == 1  # Bob confirmed: nothing more to tell him


def test_when_both_asked_the_first_to_ask_hears_it(session, world):
    network.request_connection(session, world.ann, email=world.bob.email, note="Worked together")
    network.request_connection(session, world.bob, email=world.ann.email, note="Worked together")
    session.commit()
    assert [n.kind for n in notifications_of(session, world.ann)] == ["connection_confirmed"]
    assert [n.kind for n in notifications_of(session, world.bob)] == ["connection_request"]


def test_a_declined_request_tells_nobody_more(session, world):
    request = network.request_connection(session, world.ann, email=world.bob.email, note="Worked together")
    network.answer_request(session, world.bob, request.id, "decline")
    session.commit()
    assert notifications_of(session, world.ann) == []
