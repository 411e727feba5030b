"""The network over the API: connections and requests, contact cards, degree counts and the reach
search of a problem (names as docs/network.md, "Queries and privacy", allows: ``user_id`` and ``name`` of a member
who keeps their name off chains are ``null`` and "a member")."""

import marshmallow as ma

from marketplace.api.auth import token_required
from marketplace.api.contract import ApiBlueprint, errors
from marketplace.api.idempotency import idempotent
from marketplace.api.inputs import MULTI_LINE, InputSchema
from marketplace.api.pagination import PAGE_ERRORS, CursorPageOut, PageArgs, cursor_after, window
from marketplace.api.problems import ROW_ID
from marketplace.api.referrals import ReferralOut
from marketplace.db import db
from marketplace.errors import Conflict, EmailUnverified, Forbidden, NotFound, TooManyRequests
from marketplace.extensions import reach_graph
from marketplace.keyset import cut
from marketplace.network import imports, reach_service, service
from marketplace.referrals import visibility
from marketplace.workflows import forwarding, reach

blp = ApiBlueprint("network_api", __name__, description="Connections, contact cards and the reach search")


class ConnectionOut(ma.Schema):
    user_id = ma.fields.Integer(attribute="peer_id")
    name = ma.fields.Function(lambda c: c.peer.name)
    note = ma.fields.String()
    created_at = ma.fields.DateTime()


class ConnectionsOut(CursorPageOut):
    items = ma.fields.List(ma.fields.Nested(ConnectionOut))


class ConnectIn(InputSchema):
    user_id = ma.fields.Integer(required=True, strict=True, validate=ROW_ID)
    note = ma.fields.String(required=True)


class JoinInvitationIn(InputSchema):
    email = ma.fields.String(required=True)
    note = ma.fields.String(required=True)


class JoinInvitationOut(ma.Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    created_at = ma.fields.DateTime()


class RequestOut(ma.Schema):
    id = ma.fields.Integer()
    from_user = ma.fields.Function(lambda r: {"user_id": r.from_user_id, "name": r.from_user.name})
    to_user = ma.fields.Function(lambda r: {"user_id": r.to_user_id, "name": r.to_user.name})
    note = ma.fields.String()
    status = ma.fields.Function(lambda r: r.status.value)
    created_at = ma.fields.DateTime()
    decided_at = ma.fields.DateTime(allow_none=True)


class RequestsOut(ma.Schema):
    incoming = ma.fields.List(ma.fields.Nested(RequestOut))
    outgoing = ma.fields.List(ma.fields.Nested(RequestOut))


class CardIn(InputSchema):
    name = ma.fields.String(required=True)
    email = ma.fields.String(load_default=None, allow_none=True)
    other_emails = ma.fields.List(ma.fields.String(), load_default=list)
    company = ma.fields.String(load_default="")
    position = ma.fields.String(load_default="")
    tags = ma.fields.List(ma.fields.String(), load_default=list)
    notes = ma.fields.String(load_default="", metadata=MULTI_LINE)
    linkedin_url = ma.fields.String(load_default=None, allow_none=True)
    connected_on = ma.fields.Date(load_default=None, allow_none=True)


class CardOut(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    email = ma.fields.String(allow_none=True)
    other_emails = ma.fields.List(ma.fields.String(), attribute="other_email_list")
    company = ma.fields.String()
    position = ma.fields.String()
    tags = ma.fields.List(ma.fields.String(), attribute="tag_list")
    notes = ma.fields.String()
    source = ma.fields.Function(lambda c: c.source.value)
    linkedin_url = ma.fields.String(allow_none=True)
    connected_on = ma.fields.Date(allow_none=True)
    created_at = ma.fields.DateTime()


class CardsArgs(PageArgs):
    # 100 by default, the size the numbered pages always had, so a client that reads next_page
    # still gets every card.
    limit = ma.fields.Integer(
        load_default=service.CARDS_PER_PAGE, validate=ma.validate.Range(min=1, max=service.CARDS_PER_PAGE)
    )
    q = ma.fields.String(load_default="")
    tag = ma.fields.String(load_default="")
    page = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=1, max=100_000),
        metadata={"description": "deprecated: numbered pages; prefer cursor"},
    )


class CardPageOut(CursorPageOut):
    items = ma.fields.List(ma.fields.Nested(CardOut))
    next_page = ma.fields.Integer(allow_none=True, metadata={"description": "deprecated: see next_cursor"})


class PersonOut(ma.Schema):
    user_id = ma.fields.Integer(allow_none=True)
    name = ma.fields.String()


class ReachItemOut(PersonOut):
    hops = ma.fields.Integer()
    path = ma.fields.List(ma.fields.Nested(PersonOut))
    mutual = ma.fields.Integer(metadata={"description": "connections the expert shares with the path's start"})
    track_record = ma.fields.Integer(metadata={"description": "introductions the expert made that were accepted"})


class ReachArgs(InputSchema):
    k = ma.fields.Integer(load_default=10, validate=ma.validate.Range(min=1, max=100))


class ReachOut(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ReachItemOut))


class NetworkOut(ma.Schema):
    first = ma.fields.Integer(metadata={"description": "confirmed connections"})
    second = ma.fields.Integer(metadata={"description": "members exactly two hops away"})
    third = ma.fields.Integer(metadata={"description": "members exactly three hops away"})


# Connections -----------------------------------------------------------------------------------


@blp.get("/me/connections")
@errors(*PAGE_ERRORS)
@token_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, ConnectionsOut)
def my_connections(user, args):
    """The caller's connections by name, a page at a time."""
    seen = window(args, "connections")
    rows = service.connections_of(db.session, user, seen)
    items, last = cut(rows, seen, lambda connection: (connection.peer.name, connection.peer_id))
    return {"items": items, "next_cursor": cursor_after("connections", last)}


@blp.get("/me/connections/requests")
@token_required
@blp.response(200, RequestsOut)
def my_requests(user):
    return service.pending_requests(db.session, user)


@blp.post("/connections")
@errors(NotFound, Conflict)
@idempotent
@token_required
@blp.arguments(ConnectIn, example={"user_id": 7, "note": "We worked together at Acme"})
@blp.response(201, RequestOut)
def request_connection(user, data):
    request = service.request_connection(db.session, user, user_id=data["user_id"], note=data["note"])
    return request


@blp.post("/connections/invitations")
@errors(EmailUnverified, Conflict, TooManyRequests)
@idempotent
@token_required
@blp.arguments(JoinInvitationIn, example={"email": "sam@example.org", "note": "We ran the Berlin data meetup together"})
@blp.response(201, JoinInvitationOut)
def invite_to_join(user, data):
    """Invite an address that has no account: one e-mail in your name, once per address, ten a
    day; once they join and confirm the address, your connection request waits for them."""
    return service.invite_to_join(db.session, user, email=data["email"], note=data["note"])


def _answer(user, request_id: int, action: str):
    request = service.answer_request(db.session, user, request_id, action)
    return request


@blp.post("/connections/requests/<int:request_id>/confirm")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.response(200, RequestOut)
def confirm_request(user, request_id):
    """The member who was asked confirms: both directions of the connection are stored."""
    return _answer(user, request_id, "confirm")


@blp.post("/connections/requests/<int:request_id>/decline")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.response(200, RequestOut)
def decline_request(user, request_id):
    return _answer(user, request_id, "decline")


@blp.post("/connections/requests/<int:request_id>/cancel")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.response(200, RequestOut)
def cancel_request(user, request_id):
    """The member who asked withdraws the request."""
    return _answer(user, request_id, "cancel")


@blp.delete("/connections/<int:user_id>")
@token_required
@blp.response(204)
def remove_connection(user, user_id):
    service.remove_connection(db.session, user, user_id)


@blp.get("/me/network")
@token_required
@blp.response(200, NetworkOut)
def my_network(user):
    first, second, third = reach_service.degree_counts(db.session, reach_graph(), user)
    return {"first": first, "second": second, "third": third}


# Contact cards ---------------------------------------------------------------------------------


@blp.get("/me/cards")
@errors(*PAGE_ERRORS)
@token_required
@blp.arguments(CardsArgs, location="query")
@blp.response(200, CardPageOut)
def my_cards(user, args):
    """The caller's cards matching ``q`` and ``tag`` by name: ``limit`` and ``cursor``, or the
    deprecated numbered ``page``."""
    limit, cursor, numbered = args.pop("limit"), args.pop("cursor"), args.pop("page")
    if numbered is not None and cursor is None:
        page = service.search_cards(db.session, user, **args, page=numbered)
        return {"items": page.items, "next_page": page.next_page, "next_cursor": None}
    seen = window({"limit": limit, "cursor": cursor}, "cards")
    rows = service.search_cards(db.session, user, **args, window=seen).items
    items, last = cut(rows, seen, lambda card: (card.name.lower(), card.id))
    first_of_numbered = cursor is None and limit == service.CARDS_PER_PAGE and last is not None
    return {"items": items, "next_page": 2 if first_of_numbered else None, "next_cursor": cursor_after("cards", last)}


CARD_EXAMPLE = {"name": "Noor Haddad", "email": "noor@example.org", "company": "Globex", "tags": ["postgres"]}


@blp.post("/me/cards")
@errors(Conflict)
@idempotent
@token_required
@blp.arguments(CardIn, example=CARD_EXAMPLE)
@blp.response(201, CardOut)
def create_card(user, data):
    card = service.create_card(db.session, user, service.CardData(**data))
    return card


@blp.get("/me/cards/<int:card_id>")
@token_required
@blp.response(200, CardOut)
def get_card(user, card_id):
    return service.get_card(db.session, user, card_id)


@blp.put("/me/cards/<int:card_id>")
@errors(Conflict)
@token_required
@blp.arguments(CardIn, example=CARD_EXAMPLE)
@blp.response(200, CardOut)
def update_card(user, data, card_id):
    card = service.update_card(db.session, user, card_id, service.CardData(**data))
    return card


@blp.delete("/me/cards/<int:card_id>")
@token_required
@blp.response(204)
def delete_card(user, card_id):
    service.delete_card(db.session, user, card_id)


# The reach search ------------------------------------------------------------------------------


@blp.get("/problems/<int:problem_id>/reach")
@token_required
@blp.arguments(ReachArgs, location="query")
@blp.response(200, ReachOut)
def problem_reach(user, args, problem_id):
    """Members within three hops who hold the problem's skills; for the company's own people,
    searched from every colleague."""
    problem = visibility.get_visible(db.session, user, problem_id)
    return {"items": reach.problem_reach(db.session, reach_graph(), user, problem, args["k"])}


@blp.post("/problems/<int:problem_id>/forward-to/<int:user_id>")
@errors(Conflict)
@idempotent
@token_required
@blp.response(201, ReferralOut)
def forward_to_connection(user, problem_id, user_id):
    """Forward a problem to one of the caller's connections (the problem page's reach panel)."""
    return forwarding.forward_to_connection(db.session, user, problem_id, user_id)


# Importing cards -------------------------------------------------------------------------------


class ImportFileIn(ma.Schema):
    file = ma.fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class ImportOut(ma.Schema):
    id = ma.fields.Integer()
    filename = ma.fields.String()
    source = ma.fields.Function(lambda imported: imported.source.value)
    status = ma.fields.Function(lambda imported: imported.status.value)
    total = ma.fields.Integer()
    processed = ma.fields.Integer()
    created_at = ma.fields.DateTime()


@blp.post("/me/card-imports")
@idempotent
@token_required
@blp.arguments(ImportFileIn, location="files", example={"file": "(a LinkedIn Connections.csv or a .vcf file)"})
@blp.response(201, ImportOut)
def upload_cards(user, files):
    """A LinkedIn export or a vCard file, parsed into a preview to confirm (or cancel)."""
    upload = files["file"]
    return imports.preview(db.session, user, upload.filename or "", upload.read())


@blp.post("/me/card-imports/<int:import_id>/confirm")
@errors(Conflict)
@idempotent
@token_required
@blp.response(200, ImportOut)
def confirm_import(user, import_id):
    """Import the previewed cards: at once when the file is small, else through the worker."""
    return imports.confirm(db.session, user, import_id)


@blp.post("/me/card-imports/<int:import_id>/cancel")
@errors(Conflict)
@idempotent
@token_required
@blp.response(200, ImportOut)
def cancel_import(user, import_id):
    """Drop a preview, or stop an import being confirmed."""
    return imports.cancel(db.session, user, import_id)
