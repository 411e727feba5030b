"""Connections (asked, then confirmed by the other side) and private contact cards.

Every function takes the acting member and lets them see and change only their own network: a
card or a request of someone else is "not found", never shown.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import cast

from sqlalchemy import CursorResult, Select, and_, delete, exists, func, literal, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, joinedload

from marketplace import signals, text
from marketplace.accounts.models import User
from marketplace.accounts.service import normalize_email, require_verified_email, user_by_email
from marketplace.db import utcnow
from marketplace.errors import Conflict, Forbidden, NotFound, TooManyRequests, ValidationError
from marketplace.keyset import Window, seek
from marketplace.network.changes import lock_network, record_change
from marketplace.network.models import (
    ChangeKind,
    Connection,
    ConnectionRequest,
    ContactCard,
    JoinInvitation,
    RequestStatus,
)

MAX_NOTE = 500
CARDS_PER_PAGE = 100

# Connections -----------------------------------------------------------------------------------


def _clean_note(note: str | None) -> str:
    note = " ".join((note or "").split())
    if not note:
        raise ValidationError("Say in a few words how you know each other.", code="invalid_note")
    if len(note) > MAX_NOTE:
        raise ValidationError(f"Keep the note under {MAX_NOTE} characters.", code="invalid_note")
    return note


def is_connected(session: Session, user_id: int, peer_id: int) -> bool:
    return session.get(Connection, (user_id, peer_id)) is not None


def _pending(session: Session, from_id: int, to_id: int) -> ConnectionRequest | None:
    return session.scalar(
        select(ConnectionRequest).where(
            ConnectionRequest.from_user_id == from_id,
            ConnectionRequest.to_user_id == to_id,
            ConnectionRequest.status == RequestStatus.PENDING,
        )
    )


def request_connection(
    session: Session, actor: User, *, note: str, user_id: int | None = None, email: str | None = None
) -> ConnectionRequest:
    """Ask a member (by id or e-mail) to connect. If they already asked the actor, that request
    is confirmed instead: both sides want the connection."""
    note = _clean_note(note)
    if (user_id is None) == (not email):
        raise ValidationError("Name exactly one member: by id, or by e-mail address.", code="invalid_member")
    lock_network(session)
    other = user_by_email(session, email) if email else session.get(User, user_id)
    if other is None:
        raise NotFound("No member has that e-mail address." if email else "No such member.")
    if other.id == actor.id:
        raise ValidationError("You cannot connect to yourself.", code="self_connection")
    if is_connected(session, actor.id, other.id):
        raise Conflict(f"You are already connected to {other.name}.", code="already_connected")
    theirs = _pending(session, other.id, actor.id)
    if theirs is not None:
        _confirm(session, theirs, actor.id)
        return theirs
    if _pending(session, actor.id, other.id) is not None:
        raise Conflict(f"You have already asked {other.name}; they have not answered yet.", code="already_requested")
    request = ConnectionRequest(from_user_id=actor.id, to_user_id=other.id, note=note)
    session.add(request)
    session.flush()
    signals.connection_requested.send(request, session=session)
    return request


def answer_request(session: Session, actor: User, request_id: int, action: str) -> ConnectionRequest:
    """``confirm`` or ``decline`` (the member asked), or ``cancel`` (the member who asked)."""
    if action not in ("confirm", "decline", "cancel"):
        raise ValidationError("Confirm, decline or cancel a request.", code="invalid_action")
    lock_network(session)
    request = session.get(ConnectionRequest, request_id, populate_existing=True)
    if request is None or actor.id not in (request.from_user_id, request.to_user_id):
        raise NotFound("No such connection request.")
    answerer = request.from_user_id if action == "cancel" else request.to_user_id
    if actor.id != answerer:
        raise Forbidden(
            "Only the member who asked can cancel a request."
            if action == "cancel"
            else "Only the member who was asked can answer a request."
        )
    if request.status != RequestStatus.PENDING:
        raise Conflict(f"This request is already {request.status.value}.", code="request_answered")
    if action == "confirm":
        _confirm(session, request, actor.id)
    else:
        request.status = RequestStatus.DECLINED if action == "decline" else RequestStatus.CANCELLED
        request.decided_at = utcnow()
        session.flush()
    return request


def _confirm(session: Session, request: ConnectionRequest, actor_id: int) -> None:
    """Confirm the request (and the reverse one, if both asked) and store both directions."""
    a, b = request.from_user_id, request.to_user_id
    now = utcnow()
    request.status, request.decided_at = RequestStatus.CONFIRMED, now
    session.execute(
        update(ConnectionRequest)
        .where(
            ConnectionRequest.from_user_id == b,
            ConnectionRequest.to_user_id == a,
            ConnectionRequest.status == RequestStatus.PENDING,
        )
        .values(status=RequestStatus.CONFIRMED, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add_all(
        [
            Connection(user_id=a, peer_id=b, note=request.note, created_at=now),
            Connection(user_id=b, peer_id=a, note=request.note, created_at=now),
        ]
    )
    session.flush()
    record_change(session, ChangeKind.CONNECT, a, b)
    signals.connection_confirmed.send(request, session=session, actor_id=actor_id)


# Inviting someone who is not a member yet ------------------------------------------------------

# A member may invite this many addresses a day: each invitation is an e-mail to a stranger.
JOIN_INVITATIONS_PER_DAY = 10


def invite_to_join(session: Session, actor: User, *, email: str, note: str) -> JoinInvitation:
    """Invite an address that has no account to join and connect: one e-mail (the notifications
    send it on ``member_invited_to_join``), once per address, at most ``JOIN_INVITATIONS_PER_DAY``
    a day. Once someone proves the address is theirs, it becomes a connection request from the
    actor (``join_invitations_to_requests``)."""
    note = _clean_note(note)
    address = normalize_email(email)
    require_verified_email(actor, "invite anyone")
    if user_by_email(session, address) is not None:
        raise Conflict("That address belongs to a member already: ask them to connect instead.", code="already_member")
    invited = session.scalar(
        select(JoinInvitation).where(JoinInvitation.inviter_id == actor.id, JoinInvitation.email == address)
    )
    if invited is not None:
        raise Conflict(f"You invited {address} on {invited.created_at:%d %b %Y} already.", code="already_invited")
    today = session.scalar(
        select(func.count()).where(
            JoinInvitation.inviter_id == actor.id, JoinInvitation.created_at > utcnow() - timedelta(days=1)
        )
    )
    if (today or 0) >= JOIN_INVITATIONS_PER_DAY:
        raise TooManyRequests(
            f"You can invite {JOIN_INVITATIONS_PER_DAY} people a day; try again tomorrow.", retry_after=3600
        )
    invitation = JoinInvitation(inviter_id=actor.id, email=address, note=note)
    session.add(invitation)
    session.flush()
    signals.member_invited_to_join.send(invitation, session=session)
    return invitation


def join_invitations_to_requests(user: User, *, session: Session, **_: object) -> None:
    """A member proved their address: each member who invited it asks them to connect (a
    request they confirm or decline like any other)."""
    waiting = session.scalars(
        select(JoinInvitation).where(JoinInvitation.email == user.email, JoinInvitation.joined_at.is_(None))
    ).all()
    for invitation in waiting:
        invitation.joined_at = utcnow()
        inviter = session.get(User, invitation.inviter_id)
        if inviter is None or is_connected(session, inviter.id, user.id):
            continue
        if _pending(session, inviter.id, user.id) is None and _pending(session, user.id, inviter.id) is None:
            request_connection(session, inviter, user_id=user.id, note=invitation.note)
    session.flush()


def remove_connection(session: Session, actor: User, peer_id: int) -> None:
    """Either side may end a connection; both directions go."""
    lock_network(session)
    result = session.execute(
        delete(Connection).where(
            or_(
                and_(Connection.user_id == actor.id, Connection.peer_id == peer_id),
                and_(Connection.user_id == peer_id, Connection.peer_id == actor.id),
            )
        )
    )
    if cast(CursorResult, result).rowcount == 0:
        raise NotFound("You are not connected to that member.")
    record_change(session, ChangeKind.DISCONNECT, actor.id, peer_id)


def connections_of(session: Session, user: User, window: Window | None = None) -> list[Connection]:
    """The member's connections by name; with a ``window``, that page, by (name, member id)."""
    query = (
        select(Connection)
        .join(User, User.id == Connection.peer_id)
        .options(joinedload(Connection.peer))
        .where(Connection.user_id == user.id)
    )
    if window is not None:
        return list(session.scalars(seek(query, User.name, Connection.peer_id, window, descending=False)))
    return list(session.scalars(query.order_by(User.name)))


@dataclass
class PendingRequests:
    incoming: list[ConnectionRequest]
    outgoing: list[ConnectionRequest]


def pending_requests(session: Session, user: User) -> PendingRequests:
    def of(column: InstrumentedAttribute[int], other: InstrumentedAttribute[User]) -> list[ConnectionRequest]:
        return list(
            session.scalars(
                select(ConnectionRequest)
                .options(joinedload(other))
                .where(column == user.id, ConnectionRequest.status == RequestStatus.PENDING)
                .order_by(ConnectionRequest.created_at.desc())
            )
        )

    return PendingRequests(
        incoming=of(ConnectionRequest.to_user_id, ConnectionRequest.from_user),
        outgoing=of(ConnectionRequest.from_user_id, ConnectionRequest.to_user),
    )


def member_suggestions(session: Session, user: User) -> list[tuple[ContactCard, User]]:
    """Cards whose e-mail belongs to a member the user is not connected to and has no pending
    request with: "these contacts are members; connect?"."""
    asked = exists().where(
        ConnectionRequest.status == RequestStatus.PENDING,
        or_(
            and_(ConnectionRequest.from_user_id == user.id, ConnectionRequest.to_user_id == User.id),
            and_(ConnectionRequest.from_user_id == User.id, ConnectionRequest.to_user_id == user.id),
        ),
    )
    connected = exists().where(Connection.user_id == user.id, Connection.peer_id == User.id)
    rows = session.execute(
        select(ContactCard, User)
        .join(User, User.email == ContactCard.email_key)
        .where(
            ContactCard.owner_id == user.id,
            ContactCard.staged_import_id.is_(None),
            User.id != user.id,
            ~connected,
            ~asked,
        )
        .order_by(ContactCard.name)
    )
    return [(card, member) for card, member in rows]


# Contact cards ---------------------------------------------------------------------------------

_EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")
MAX_TAGS = 30


@dataclass
class CardData:
    """A card's fields, cleaned; what forms, the API and imports hand to the service."""

    name: str
    email: str | None = None
    other_emails: list[str] = field(default_factory=list)
    company: str = ""
    position: str = ""
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    linkedin_url: str | None = None
    connected_on: date | None = None

    @property
    def keys(self) -> list[str]:
        """Lower-cased e-mails: two cards sharing one are the same person."""
        return [e.lower() for e in [self.email, *self.other_emails] if e]

    def merge(self, other: "CardData") -> list[str]:
        """Fill this card's empty fields from ``other`` and add its tags and e-mails; returns
        what changed, for the import preview."""
        changed = []
        for name in ("company", "position", "notes", "linkedin_url", "connected_on"):
            if not getattr(self, name) and getattr(other, name):
                setattr(self, name, getattr(other, name))
                changed.append(name.replace("_", " "))
        new_tags = [tag for tag in other.tags if tag not in self.tags]
        if new_tags:
            self.tags = (self.tags + new_tags)[:MAX_TAGS]
            changed.append("tags")
        new_emails = [e for e in [other.email, *other.other_emails] if e and e.lower() not in self.keys]
        if new_emails:
            if self.email is None:
                self.email = new_emails.pop(0)
            self.other_emails += new_emails
            changed.append("e-mails")
        return changed

    @classmethod
    def of(cls, card: ContactCard) -> "CardData":
        return cls(
            name=card.name,
            email=card.email,
            other_emails=card.other_email_list,
            company=card.company,
            position=card.position,
            tags=card.tag_list,
            notes=card.notes,
            linkedin_url=card.linkedin_url,
            connected_on=card.connected_on,
        )


def _text(value: str | None, label: str, limit: int) -> str:
    """One line, repaired: a card's fields may come from someone else's export (``text.flattened``)."""
    value = text.flattened(value)
    if len(value) > limit:
        raise ValidationError(f"Keep the {label} under {limit} characters.", code="invalid_card")
    return value


def clean_email(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValidationError(f"'{value[:60]}' is not an e-mail address.", code="invalid_email")
    return value


def clean_tags(raw: str | list[str]) -> list[str]:
    """Lower-case tags without commas, each once, in the order given."""
    tags: list[str] = []
    for tag in raw.split(",") if isinstance(raw, str) else raw:
        tag = " ".join(str(tag).casefold().split())[:50]
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.", code="invalid_card")
    return tags


def clean_url(value: str | None) -> str | None:
    """Only web addresses: the card page links to it."""
    value = (value or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"https?://[^\s\"'<>]+", value, flags=re.IGNORECASE) or len(value) > 500:
        raise ValidationError(f"'{value[:60]}' is not a web address (https://…).", code="invalid_url")
    return value


def clean_card(data: CardData) -> CardData:
    """Validate and normalise every field; raises ``ValidationError`` naming the first bad one."""
    name = _text(data.name, "name", 200)
    if not name:
        raise ValidationError("Give the card a name.", code="invalid_name")
    email = clean_email(data.email)
    others = [e for e in (clean_email(e) for e in data.other_emails) if e and e.lower() != (email or "").lower()]
    return CardData(
        name=name,
        email=email,
        other_emails=list(dict.fromkeys(others)),
        company=_text(data.company, "company", 200),
        position=_text(data.position, "position", 200),
        tags=clean_tags(data.tags),
        notes=text.multi_line(data.notes, "Notes").strip()[:5000],
        linkedin_url=clean_url(data.linkedin_url),
        connected_on=data.connected_on,
    )


def fold(text: str) -> str:
    """Case- and accent-insensitive form for searching: "Björn" and "bjorn" fold alike."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def card_fields(data: CardData) -> dict:
    """Column values for a card holding ``data`` (already cleaned)."""
    return {
        "name": data.name,
        "email": data.email,
        "email_key": data.email.lower() if data.email else None,
        "other_emails": ",".join(data.other_emails),
        "company": data.company,
        "position": data.position,
        "tags": ",".join(data.tags),
        "notes": data.notes,
        "linkedin_url": data.linkedin_url,
        "connected_on": data.connected_on,
        "search_text": fold(" ".join([data.name, *data.keys, data.company, data.position, *data.tags, data.notes])),
    }


def visible_cards(owner_id: int) -> Select[ContactCard]:
    """The owner's cards, without those of an import still being confirmed."""
    return select(ContactCard).where(ContactCard.owner_id == owner_id, ContactCard.staged_import_id.is_(None))


@dataclass
class CardPage:
    items: list[ContactCard]
    next_page: int | None


def search_cards(
    session: Session, owner: User, *, q: str = "", tag: str = "", page: int = 1, window: Window | None = None
) -> CardPage:
    """The owner's cards matching every word of ``q`` and the tag, by name, a page at a time
    (numbered pages, or with a ``window`` the keyset page after a card: ``keyset.seek``)."""
    q, tag = text.single_line(q, "The search"), text.single_line(tag, "The tag")
    query = visible_cards(owner.id)
    for word in fold(q).split():
        query = query.where(ContactCard.search_text.contains(word, autoescape=True))
    tag = " ".join(tag.casefold().split())
    if tag:
        query = query.where((literal(",") + ContactCard.tags + ",").contains(f",{tag},", autoescape=True))
    if window is not None:
        rows = list(
            session.scalars(seek(query, func.lower(ContactCard.name), ContactCard.id, window, descending=False))
        )
        return CardPage(rows, None)
    page = max(page, 1)
    query = query.order_by(func.lower(ContactCard.name), ContactCard.id)
    items = list(session.scalars(query.limit(CARDS_PER_PAGE + 1).offset((page - 1) * CARDS_PER_PAGE)))
    return CardPage(items[:CARDS_PER_PAGE], page + 1 if len(items) > CARDS_PER_PAGE else None)


def all_cards(session: Session, owner: User) -> list[ContactCard]:
    return list(session.scalars(visible_cards(owner.id).order_by(func.lower(ContactCard.name), ContactCard.id)))


def get_card(session: Session, owner: User, card_id: int) -> ContactCard:
    card = session.get(ContactCard, card_id)
    if card is None or card.owner_id != owner.id or card.staged_import_id is not None:
        raise NotFound("No such card.")
    return card


def _check_unique_email(session: Session, owner: User, data: CardData, card_id: int | None = None) -> None:
    if not data.email:
        return
    clash = session.scalar(
        visible_cards(owner.id).where(ContactCard.email_key == data.email.lower(), ContactCard.id != (card_id or 0))
    )
    if clash is not None:
        raise Conflict(f"Your card for {clash.name} already has this e-mail address.", code="duplicate_card")


def create_card(session: Session, owner: User, data: CardData) -> ContactCard:
    data = clean_card(data)
    _check_unique_email(session, owner, data)
    card = ContactCard(owner_id=owner.id, **card_fields(data))
    session.add(card)
    session.flush()
    return card


def update_card(session: Session, owner: User, card_id: int, data: CardData) -> ContactCard:
    card = get_card(session, owner, card_id)
    data = clean_card(data)
    _check_unique_email(session, owner, data, card.id)
    for name, value in card_fields(data).items():
        setattr(card, name, value)
    session.flush()
    return card


def delete_card(session: Session, owner: User, card_id: int) -> None:
    session.delete(get_card(session, owner, card_id))
    session.flush()
