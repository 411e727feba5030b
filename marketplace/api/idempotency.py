"""``Idempotency-Key`` on the API's actions: the same key and request answer what the first
answer was (with ``Idempotent-Replayed: true``) instead of acting twice.

Keys are per member (the token's owner) and kept 24 hours. What is kept: successes (2xx) and
business refusals (a 403, 404 or 409 the action itself gave), because retrying those cannot
change the answer. Not kept, so the same key can be retried: a malformed or invalid body (400,
422), a refused token (401), too many requests (429) and our own failures (5xx). See
``marketplace.idempotency.service`` for why a saved answer can never outlive lost effects.
"""

import hashlib
import json
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, request

from marketplace.api.auth import current_api_user
from marketplace.api.contract import errors
from marketplace.db import db
from marketplace.errors import Conflict, MarketplaceError
from marketplace.idempotency import service

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# Visible ASCII, as a header carries it safely; a UUID is the usual choice.
KEY_FORMAT = re.compile(r"[\x21-\x7e]{1,255}")
# Refusals kept with the key: the action's own answer, the same on every retry.
KEPT_REFUSALS = (403, 404, 409)

PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "Any unique string (a UUID): retrying with it answers the first answer instead of acting twice.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}


def request_fingerprint() -> str:
    """The method, path, query and body, with the JSON body's keys and spacing normalised."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode() if raw else b""
    except ValueError:
        body = raw
    digest = hashlib.sha256(f"{request.method} {request.path}?{request.query_string.decode()}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Honour ``Idempotency-Key`` on ``view``, an action taking a token (the key's owner)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        user = current_api_user() if key is not None else None
        if key is None or user is None:  # without a token, the view answers 401
            return view(*args, **kwargs)
        if not KEY_FORMAT.fullmatch(key):
            raise MarketplaceError(
                "Idempotency-Key must be 1 to 255 visible ASCII characters.", code="bad_idempotency_key"
            )
        claimed = service.claim(db.session, user.id, key, request_fingerprint())
        if isinstance(claimed, service.Saved):
            return Response(claimed.body, claimed.status, mimetype="application/json", headers={REPLAYED: "true"})
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except MarketplaceError as error:
            db.session.rollback()
            if error.status in KEPT_REFUSALS:
                body = json.dumps({"error": {"code": error.code, "message": error.message}})
                service.save_refusal(db.session, claimed, error.status, body)
            else:
                service.release(db.session, claimed)
            raise
        except BaseException:
            db.session.rollback()
            service.release(db.session, claimed)
            raise
        if response.status_code < 400:
            service.save(db.session, claimed, response.status_code, response.get_data(as_text=True))
        else:
            db.session.rollback()
            service.release(db.session, claimed)
        return response

    documented: Any = wrapper
    documented._apidoc = {**getattr(wrapper, "_apidoc", {})}
    documented._apidoc["manual_doc"] = {**documented._apidoc.get("manual_doc", {}), "parameters": [PARAMETER]}
    return errors(
        (400, "bad_idempotency_key"),
        (Conflict.status, "idempotency_key_reused"),
        (Conflict.status, "idempotency_key_in_use"),
    )(documented)
