"""Each session's CSRF token, signed once per process instead of on every page.

Flask-WTF signs the session's CSRF secret anew for every request that shows a form
(``generate_csrf``): a new serializer, its key derived, a timestamp, an HMAC. With
``WTF_CSRF_TIME_LIMIT`` None, as here, a token never expires: it is good for as long as the
session's secret, and its timestamp is never checked. So the token signed first for a session is
as good as a new one, and each process keeps it by the secret key and the session's secret
(docs/performance.md, "The tree and the reach panel drawn once for each state"). A new secret
key, a new session or a cleared one has a new secret, so a new token. Under a time limit nothing
is kept and every page signs its own, as Flask-WTF does.
"""

from flask import Flask, current_app, g, session
from flask_wtf.csrf import generate_csrf

# Flask-WTF's names: the session's secret and the request's signed token (in ``g``) share it.
FIELD = "csrf_token"
# Tokens kept per process, one for each session seen; emptied when full.
TOKENS_KEPT = 10_000
_signed: dict[tuple[str | bytes | None, str], str] = {}


def request_token() -> str:
    """This request's CSRF token: the one this process signed for the session before, or the
    one signed for this request (a form Flask-WTF built may have signed it already), kept for
    the session's next pages. Every form of the request carries it: Flask-WTF's own forms read
    it from ``g``."""
    if current_app.config["WTF_CSRF_TIME_LIMIT"] is not None:
        return generate_csrf()
    token = g.get(FIELD)
    if token is None:
        secret = session.get(FIELD)
        token = _signed.get((current_app.secret_key, secret)) if secret is not None else None
        if token is not None:
            setattr(g, FIELD, token)
            return token
        token = generate_csrf()  # which gives the session its secret if it has none yet
    key = (current_app.secret_key, session[FIELD])
    if _signed.get(key) != token:
        if len(_signed) >= TOKENS_KEPT:
            _signed.clear()
        _signed[key] = token
    return token


def init_app(app: Flask) -> None:
    """Templates' ``csrf_token()`` is this one: ``CSRFProtect`` gives them Flask-WTF's as a
    global (which macros imported without context see) and through a context processor (which
    every page's own context sees); this overrides both, the processor by coming after it."""
    app.jinja_env.globals["csrf_token"] = request_token
    app.context_processor(lambda: {"csrf_token": request_token})
