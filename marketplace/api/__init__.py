"""The JSON API v1: bearer-token auth, one error format, and an OpenAPI document from the code.

Each domain's ``api.py`` defines a flask-smorest blueprint; they are registered here under
``/api/v1``. Only bearer tokens authenticate the API (never the session cookie), which is why
its routes can be exempt from CSRF.
"""

from functools import wraps

from flask import Flask, request
from flask_smorest import Api

from marketplace.db import db
from marketplace.errors import Unauthorized
from marketplace.extensions import csrf


class MarketplaceApi(Api):
    """flask-smorest, minus its app-wide error handler: ``marketplace.web`` has the only one."""

    def _register_error_handlers(self):
        pass


api = MarketplaceApi()


def current_api_user():
    """The user of the request's bearer token, or None when there is none."""
    from marketplace.accounts.service import user_for_token

    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthorized("Send the token as 'Authorization: Bearer <token>'.", code="bad_token")
    return user_for_token(db.session, raw.strip())


def token_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        user = current_api_user()
        if user is None:
            raise Unauthorized("This needs an API token: 'Authorization: Bearer <token>'.")
        return view(user, *args, **kwargs)

    return wrapper


def init_app(app: Flask) -> None:
    from marketplace.api.accounts import blp as accounts_blp
    from marketplace.api.ledger import blp as ledger_blp
    from marketplace.api.network import blp as network_blp
    from marketplace.api.notifications import blp as notifications_blp
    from marketplace.api.payments import blp as payments_blp
    from marketplace.api.problems import blp as problems_blp
    from marketplace.api.referrals import blp as referrals_blp

    api.init_app(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    blueprints = (accounts_blp, problems_blp, referrals_blp, network_blp, notifications_blp, ledger_blp, payments_blp)
    for blueprint in blueprints:
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint, url_prefix="/api/v1")
