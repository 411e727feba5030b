"""Who is calling the API: only bearer tokens authenticate it (never the session cookie), which
is why its routes can be exempt from CSRF."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request

from marketplace import origin
from marketplace.accounts.models import User
from marketplace.accounts.service import user_for_token
from marketplace.db import db
from marketplace.errors import Unauthorized


def current_api_user() -> User | None:
    """The user of the request's bearer token, or None when there is none."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthorized("Send the token as 'Authorization: Bearer <token>'.", code="bad_token")
    user = user_for_token(db.session, raw.strip())
    origin.identify(user.id)
    return user


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = current_api_user()
        if user is None:
            raise Unauthorized("This needs an API token: 'Authorization: Bearer <token>'.")
        g.api_user = user
        return view(user, *args, **kwargs)

    wrapper.requires_token = True  # type: ignore[attr-defined]  # read by ``api.contract``
    return wrapper
