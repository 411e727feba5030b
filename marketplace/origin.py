"""Where the current state change comes from: the member acting and the address they called from.

The audit log records both, but the domains and their signals know nothing of HTTP. The web
layer declares the origin of each request (``begin`` before it, the signed-in member or the API
token's owner once known, ``end`` after it); a receiver reads ``current()``. Outside a request
(the worker, the command line, a webhook's job) the origin is empty: the system acted.
"""

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass
class Origin:
    ip: str | None = None
    actor_id: int | None = None


_current: ContextVar[Origin | None] = ContextVar("origin", default=None)


def begin(ip: str | None) -> Token:
    """A request from ``ip`` starts; its member is not known yet. Returns the token for ``end``."""
    return _current.set(Origin(ip=ip))


def identify(user_id: int) -> None:
    """The request is made by this member (a session's user, or an API token's owner)."""
    origin = _current.get()
    if origin is not None:
        origin.actor_id = user_id


def end(token: Token) -> None:
    _current.reset(token)


def current() -> Origin:
    """The current request's origin, or an empty one outside a request."""
    return _current.get() or Origin()
