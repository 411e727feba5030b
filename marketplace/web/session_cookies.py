"""The browser's session: Flask's signed cookie, with its signing serializer built once.

Flask builds the serializer that signs and checks the session cookie anew on every request, and
building one serializes an empty dict to learn whether its serializer writes text. On a member's
page that came to 1% of the request (docs/performance.md, "What limits them"). The serializer
holds nothing but its keys and settings, so one per set of keys serves every request; a changed
``SECRET_KEY`` or ``SECRET_KEY_FALLBACKS`` gets its own.
"""

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class SignedCookieSessions(SecureCookieSessionInterface):
    """Flask's own session interface; only the serializer is kept between requests."""

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if keys not in self._serializers:
            self._serializers[keys] = super().get_signing_serializer(app)
        return self._serializers[keys]
