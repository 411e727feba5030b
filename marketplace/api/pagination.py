"""Cursors for the API's lists: ``limit`` (1 to 100, 20 by default) and an opaque ``cursor``
that continues after the last item of the previous page (keyset pagination, ``marketplace.keyset``),
so items added meanwhile are neither repeated nor skipped.

A cursor is the (sort key, id) of that last item and the list's name, signed with the app's
secret: a client cannot forge one or carry one to another list; any such cursor is 400
``bad_cursor``. Lists answered as an object carry ``next_cursor`` (null on the last page); lists
that have always been a JSON array stay arrays and give the next page as a ``Link: <…>; rel="next"``
header.
"""

from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode

import marshmallow as ma
from flask import current_app, request
from itsdangerous import BadData, URLSafeSerializer

from marketplace.api.inputs import InputSchema
from marketplace.errors import MarketplaceError
from marketplace.keyset import Key, Window

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageArgs(InputSchema):
    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"items per page, at most {MAX_LIMIT}"},
    )
    cursor = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=1000),
        metadata={"description": "the previous page's next_cursor; omit for the first page"},
    )


class CursorPageOut(ma.Schema):
    next_cursor = ma.fields.String(
        allow_none=True, metadata={"description": "pass as cursor for the next page; null on the last page"}
    )


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(cast(str, current_app.secret_key), salt="api-cursor")


def _bad_cursor() -> MarketplaceError:
    return MarketplaceError("This cursor is not one this list gave; start again without it.", code="bad_cursor")


def window(args: dict, list_name: str) -> Window:
    """The page ``args`` (``PageArgs``) ask for of the list ``list_name``."""
    cursor = args.get("cursor")
    if not cursor:
        return Window(limit=args["limit"])
    try:
        payload = _serializer().loads(cursor)
        name, value, row_id = payload["l"], payload["v"], payload["i"]
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["dt"])
    except (BadData, KeyError, TypeError, ValueError):
        raise _bad_cursor() from None
    if name != list_name or not isinstance(row_id, int) or isinstance(row_id, bool):
        raise _bad_cursor()
    return Window(limit=args["limit"], after=(value, row_id))


def cursor_after(list_name: str, key: Key | None) -> str | None:
    """The cursor that continues ``list_name`` after the item of ``key`` (None: no more pages)."""
    if key is None:
        return None
    value, row_id = key
    encoded: Any = {"dt": value.isoformat()} if isinstance(value, datetime) else value
    return _serializer().dumps({"l": list_name, "v": encoded, "i": row_id})


def next_link(cursor: str | None, limit: int) -> dict[str, str]:
    """The ``Link`` header of an array list's next page (none on the last page)."""
    if cursor is None:
        return {}
    query = {key: value for key, value in request.args.items() if key not in ("cursor", "limit")}
    query.update(cursor=cursor, limit=str(limit))
    return {"Link": f'<{request.base_url}?{urlencode(query)}>; rel="next"'}


PAGE_ERRORS = ((400, "bad_cursor"),)
