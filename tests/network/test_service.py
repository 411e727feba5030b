"""Connections (asked, confirmed, declined, cancelled, removed) and contact cards, through the
services: who may do what, and that nobody sees another member's cards or requests."""

import pytest
from sqlalchemy import func, select

from marketplace.accounts.service import update_profile
from marketplace.accounts.skills import parse_skill_list, skill_slug
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationError
from marketplace.network import service
from marketplace.network.models import ChangeKind, Connection, NetworkChange, RequestStatus
from marketplace.network.service import CardData
from marketplace.referrals import chains
from marketplace.workflows import forwarding
from tests.builders import connection as connect


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def connection_changes(session) -> list[tuple]:
    """The change log's connection entries (a member's skills are logged too)."""
    rows = session.execute(
        select(NetworkChange.kind, NetworkChange.a, NetworkChange.b)
        .where(NetworkChange.kind.in_([ChangeKind.CONNECT, ChangeKind.DISCONNECT]))
        .order_by(NetworkChange.id)
    )
    return [tuple(row) for row in rows]


def test_a_connection_is_asked_then_confirmed_and_stored_both_ways(session, world):
    request = service.request_connection(session, world.ann, email="BOB@example.com ", note="  We   worked at Acme ")
    session.commit()
    assert request.status == RequestStatus.PENDING and request.note == "We worked at Acme"
    assert count(session, Connection) == 0 and connection_changes(session) == []
    assert service.pending_requests(session, world.bob).incoming == [request]
    assert service.pending_requests(session, world.ann).outgoing == [request]

    service.answer_request(session, world.bob, request.id, "confirm")
    session.commit()
    assert service.is_connected(session, world.ann.id, world.bob.id)
    assert service.is_connected(session, world.bob.id, world.ann.id)
    assert [c.peer.name for c in service.connections_of(session, world.ann)] == ["Bob Martins"]
    assert [c.note for c in service.connections_of(session, world.bob)] == ["We worked at Acme"]
    assert connection_changes(session) == [(ChangeKind.CONNECT, world.ann.id, world.bob.id)]
    assert service.pending_requests(session, world.bob).incoming == []


def test_either_side_removes_a_connection(session, world):
    connect(session, world.ann, world.bob)
    service.remove_connection(session, world.bob, world.ann.id)
    session.commit()
    assert count(session, Connection) == 0
    assert connection_changes(session) == [
        (ChangeKind.CONNECT, world.ann.id, world.bob.id),
        (ChangeKind.DISCONNECT, world.bob.id, world.ann.id),
    ]
    with pytest.raises(NotFound):
        service.remove_connection(session, world.ann, world.bob.id)
    connect(session, world.bob, world.ann)  # and they may connect again
    assert service.is_connected(session, world.ann.id, world.bob.id)


def test_declined_and_cancelled_requests_make_no_connection(session, world):
    declined = service.request_connection(session, world.ann, user_id=world.bob.id, note="Old friends")
    cancelled = service.request_connection(session, world.ann, user_id=world.cleo.id, note="Neighbours")
    service.answer_request(session, world.bob, declined.id, "decline")
    service.answer_request(session, world.ann, cancelled.id, "cancel")
    session.commit()
    assert (declined.status, cancelled.status) == (RequestStatus.DECLINED, RequestStatus.CANCELLED)
    assert count(session, Connection) == 0 and connection_changes(session) == []
    with pytest.raises(Conflict, match="already declined"):
        service.answer_request(session, world.bob, declined.id, "confirm")


def test_asking_someone_who_already_asked_you_connects_you_both(session, world):
    theirs = service.request_connection(session, world.bob, user_id=world.ann.id, note="Climbing club")
    session.commit()
    answer = service.request_connection(session, world.ann, user_id=world.bob.id, note="Climbing")
    session.commit()
    assert answer.id == theirs.id and answer.status == RequestStatus.CONFIRMED
    assert service.is_connected(session, world.ann.id, world.bob.id)


def test_who_may_answer_a_request(session, world):
    request = service.request_connection(session, world.ann, user_id=world.bob.id, note="University")
    session.commit()
    with pytest.raises(NotFound):  # a stranger learns nothing about it
        service.answer_request(session, world.cleo, request.id, "confirm")
    with pytest.raises(Forbidden):
        service.answer_request(session, world.ann, request.id, "confirm")
    with pytest.raises(Forbidden):
        service.answer_request(session, world.bob, request.id, "cancel")
    assert count(session, Connection) == 0


@pytest.mark.parametrize(
    ("target", "note", "error", "code"),
    [
        ("ann@example.com", "Me", ValidationError, "self_connection"),
        ("nobody@example.com", "Hi", NotFound, "not_found"),
        ("bob@example.com", "   ", ValidationError, "invalid_note"),
        ("bob@example.com", "x" * 501, ValidationError, "invalid_note"),
    ],
)
def test_requests_that_are_refused(session, world, target, note, error, code):
    with pytest.raises(error) as raised:
        service.request_connection(session, world.ann, email=target, note=note)
    assert raised.value.code == code


def test_no_second_request_and_no_request_to_a_connection(session, world):
    service.request_connection(session, world.ann, user_id=world.bob.id, note="Work")
    session.commit()
    with pytest.raises(Conflict, match="already asked"):
        service.request_connection(session, world.ann, user_id=world.bob.id, note="Work again")
    connect(session, world.ann, world.cleo)
    with pytest.raises(Conflict, match="already connected"):
        service.request_connection(session, world.cleo, user_id=world.ann.id, note="Again")


def test_one_click_forward_goes_to_connections_only(session, world, open_problem):
    """A board visitor forwarding to a connection picks the problem up first."""
    problem = open_problem()
    connect(session, world.ann, world.bob)
    with pytest.raises(NotFound):
        forwarding.forward_to_connection(session, world.ann, problem.id, world.cleo.id)
    referral = forwarding.forward_to_connection(session, world.ann, problem.id, world.bob.id)
    session.commit()
    assert referral.recipient_user_id == world.bob.id and referral.depth == 2
    assert chains.place_of(session, world.ann, problem.id).depth == 1


# Contact cards ---------------------------------------------------------------------------------


def card(name, **fields) -> CardData:
    return CardData(name=name, **fields)


def test_cards_are_searched_by_words_accents_and_tags(session, world):
    service.create_card(
        session,
        world.ann,
        card("Björn Åkesson", company="Fjällräven Data", tags=["PostgreSQL", " former  colleague "]),
    )
    service.create_card(
        session, world.ann, card("Chloé Dubois", email="chloe@example.org", notes="Knows 100% of Kafka")
    )
    service.create_card(session, world.bob, card("Bjorn Bob's", company="Fjällräven"))
    session.commit()

    def names(**query):
        return [c.name for c in service.search_cards(session, world.ann, **query).items]

    assert names() == ["Björn Åkesson", "Chloé Dubois"]
    assert names(q="bjorn") == names(q="ÅKESSON") == names(q="fjallraven data") == ["Björn Åkesson"]
    assert names(q="CHLOE@example") == names(q="100%") == ["Chloé Dubois"]
    assert names(q="100_") == []
    assert names(tag="postgresql") == names(tag="Former Colleague") == ["Björn Åkesson"]
    assert names(tag="former") == []
    assert service.search_cards(session, world.ann, q="bjorn").items[0].tag_list == ["postgresql", "former colleague"]


def test_nobody_sees_or_changes_another_members_cards(session, world):
    bobs = service.create_card(session, world.bob, card("Secret Source", email="source@example.com"))
    session.commit()
    assert service.search_cards(session, world.ann, q="secret").items == []
    for attempt in (
        lambda: service.get_card(session, world.ann, bobs.id),
        lambda: service.update_card(session, world.ann, bobs.id, card("Mine now")),
        lambda: service.delete_card(session, world.ann, bobs.id),
    ):
        with pytest.raises(NotFound):
            attempt()
    session.rollback()
    assert service.get_card(session, world.bob, bobs.id).name == "Secret Source"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": "  "}, "invalid_name"),
        ({"name": "A", "email": "not-an-address"}, "invalid_email"),
        ({"name": "A", "linkedin_url": "javascript:alert(1)"}, "invalid_url"),
        ({"name": "A", "company": "x" * 201}, "invalid_card"),
        ({"name": "A", "tags": [f"t{i}" for i in range(31)]}, "invalid_card"),
    ],
)
def test_invalid_cards_are_refused(session, world, fields, code):
    with pytest.raises(ValidationError) as raised:
        service.create_card(session, world.ann, CardData(**fields))
    assert raised.value.code == code


def test_one_card_per_e_mail_address(session, world):
    first = service.create_card(session, world.ann, card("Dev Patel", email="dev.patel@example.com"))
    other = service.create_card(session, world.ann, card("Someone"))
    session.commit()
    with pytest.raises(Conflict):
        service.create_card(session, world.ann, card("Dev P.", email="DEV.PATEL@example.com"))
    with pytest.raises(Conflict):
        service.update_card(session, world.ann, other.id, card("Someone", email="Dev.Patel@example.com"))
    session.rollback()
    service.update_card(session, world.ann, first.id, card("Dev Patel", email="Dev.Patel@Example.com"))
    service.create_card(session, world.bob, card("Dev", email="dev.patel@example.com"))  # Bob's own card


def test_contacts_who_are_members_are_suggested_until_asked(session, world, make_user):
    service.create_card(session, world.ann, card("Bobby", email="BOB@example.com"))
    service.create_card(session, world.ann, card("Cleo D", email="cleo@example.com"))
    service.create_card(session, world.ann, card("Not a member", email="zed@example.com"))
    service.create_card(session, world.ann, card("Me", email="ann@example.com"))
    service.create_card(session, world.cleo, card("Zed", email="zed@example.com"))
    session.commit()
    assert [(c.name, m.name) for c, m in service.member_suggestions(session, world.ann)] == [
        ("Bobby", "Bob Martins"),
        ("Cleo D", "Cleo Duarte"),
    ]
    zed = make_user("Zed Zimmer", "zed@example.com")  # a card's e-mail signs up
    assert [m.name for _, m in service.member_suggestions(session, world.ann)] == [
        "Bob Martins",
        "Cleo Duarte",
        "Zed Zimmer",
    ]
    service.request_connection(session, world.ann, user_id=world.bob.id, note="Work")
    service.request_connection(session, zed, user_id=world.ann.id, note="Gym")
    connect(session, world.ann, world.cleo)
    assert service.member_suggestions(session, world.ann) == []
    assert [m.name for _, m in service.member_suggestions(session, world.cleo)] == ["Zed Zimmer"]


# Skills ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "slug"),
    [
        ("Postgres", "postgresql"),
        ("  POSTGRESQL ", "postgresql"),
        ("pg", "postgresql"),
        ("K8s", "kubernetes"),
        ("Machine   Learning", "machine-learning"),
        ("machine_learning", "machine-learning"),
        ("ML", "machine-learning"),
        ("Node.JS", "node.js"),
        ("nodejs", "node.js"),
        ("Ruby on Rails", "ruby-on-rails"),
        ("RoR", "ruby-on-rails"),
        ("mongo", "mongodb"),
        ("-- Kafka --", "kafka"),
    ],
)
def test_skill_names_are_normalised(typed, slug):
    assert skill_slug(typed) == slug


def test_skill_lists_keep_one_of_each_in_order():
    assert parse_skill_list("Postgres, postgresql , PG, k8s,, Kubernetes, go") == ["postgresql", "kubernetes", "go"]


def test_members_and_problems_share_the_vocabulary(session, world, open_problem):
    problem = open_problem(skills=["PG", "Kubernetes"])
    assert sorted(s.slug for s in problem.skills) == ["kubernetes", "postgresql"]
    assert [s.slug for s in world.dev.skills] == ["postgresql"]
    postgresql = next(s for s in problem.skills if s.slug == "postgresql")
    assert postgresql.id == world.dev.skills[0].id and postgresql.name == "PostgreSQL"


def test_skill_names_keep_the_case_they_were_given(session):
    """GDPR stays GDPR and FinOps stays FinOps, typed so or in lower case; a name typed in lower
    case gets a capital first letter, and an alias is shown by the name it stands for."""
    from marketplace.accounts.skills import resolve_skills

    names = [s.name for s in resolve_skills(session, "gdpr, FinOps, Data Mesh, data-governance, golang, MLflow")]

    assert names == ["GDPR", "FinOps", "Data Mesh", "Data governance", "Go", "MLflow"]


def test_a_change_of_name_or_of_showing_it_is_logged_for_the_reach_and_no_other_profile_edit_is(session, world):
    """Every process forgets the name it kept of a member the log names (``ReachGraph``)."""

    def appearance_changes() -> list[int]:
        kind = ChangeKind.APPEARANCE
        return list(
            session.scalars(select(NetworkChange.a).where(NetworkChange.kind == kind).order_by(NetworkChange.id))
        )

    ann = world.ann
    skills = ", ".join(skill.name for skill in ann.skills)
    update_profile(session, ann, name=ann.name, headline="DBA for hire", skills=skills, show_name_on_chains=True)
    assert appearance_changes() == []
    update_profile(session, ann, name=ann.name, headline="", skills=skills, show_name_on_chains=False)
    update_profile(session, ann, name="Ann Li-Park", headline="", skills=skills, show_name_on_chains=False)
    assert appearance_changes() == [ann.id, ann.id]
