"""Notifications over the API."""

import marshmallow as ma

from marketplace.api.auth import token_required
from marketplace.api.contract import ApiBlueprint, errors
from marketplace.api.idempotency import idempotent
from marketplace.api.inputs import InputSchema
from marketplace.api.pagination import PAGE_ERRORS, CursorPageOut, PageArgs, cursor_after, window
from marketplace.db import db
from marketplace.keyset import cut
from marketplace.notifications import service
from marketplace.notifications.kinds import choosable
from marketplace.notifications.models import Delivery

blp = ApiBlueprint("notifications_api", __name__, description="Notifications")


class NotificationOut(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String()
    title = ma.fields.String()
    body = ma.fields.String()
    link = ma.fields.String()
    created_at = ma.fields.DateTime()
    read = ma.fields.Function(lambda n: n.read_at is not None)


class InboxArgs(PageArgs):
    unread = ma.fields.Boolean(load_default=False)
    before_id = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=1, max=2**63 - 1),
        metadata={"description": "deprecated: prefer cursor"},
    )


class InboxOut(CursorPageOut):
    items = ma.fields.List(ma.fields.Nested(NotificationOut))
    unread = ma.fields.Integer()


class ReadIn(InputSchema):
    ids = ma.fields.List(
        ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=2**63 - 1)),
        load_default=None,
        validate=ma.validate.Length(max=1000),
    )


class ReadOut(ma.Schema):
    marked = ma.fields.Integer()
    unread = ma.fields.Integer()


@blp.get("/me/notifications")
@errors(*PAGE_ERRORS)
@token_required
@blp.arguments(InboxArgs, location="query")
@blp.response(200, InboxOut)
def list_notifications(user, args):
    """Newest first, a page at a time (``before_id``, the older way, still works)."""
    seen = window(args, "notifications")
    rows = service.inbox(db.session, user, unread_only=args["unread"], before_id=args["before_id"], window=seen)
    items, last = cut(rows, seen, lambda notification: (notification.id, notification.id))
    return {
        "items": items,
        "unread": service.unread_count(db.session, user),
        "next_cursor": cursor_after("notifications", last),
    }


@blp.post("/me/notifications/read")
@idempotent
@token_required
@blp.arguments(ReadIn, example={"ids": [12, 13]})
@blp.response(200, ReadOut)
def mark_read(user, data):
    marked = service.mark_read(db.session, user, data["ids"])
    return {"marked": marked, "unread": service.unread_count(db.session, user)}


class SettingsIn(InputSchema):
    preferences = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf(list(choosable()))),
        values=ma.fields.String(validate=ma.validate.OneOf([d.value for d in Delivery])),
        load_default=dict,
        metadata={"description": "kind: immediately, digest or off; a kind left out keeps its setting"},
    )
    digest_hour = ma.fields.Integer(strict=True, load_default=None, validate=ma.validate.Range(min=0, max=23))


class SettingsOut(ma.Schema):
    preferences = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    digest_hour = ma.fields.Integer()


def _settings(user):
    chosen = service.preferences(db.session, user)
    return {
        "preferences": {k: v.value for k, v in chosen.items()},
        "digest_hour": service.digest_hour(db.session, user),
    }


@blp.put("/me/notification-settings")
@token_required
@blp.arguments(SettingsIn, example={"preferences": {"chain_grew": "digest"}, "digest_hour": 8})
@blp.response(200, SettingsOut)
def update_settings(user, data):
    """The notification settings page: how each kind is delivered, and the digest's hour (UTC)."""
    for kind, delivery in data["preferences"].items():
        service.set_preference(db.session, user, kind, delivery)
    if data["digest_hour"] is not None:
        service.set_digest_hour(db.session, user, data["digest_hour"])
    return _settings(user)
