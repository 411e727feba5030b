"""The JSON API v1: bearer-token auth (``auth.py``), one error format, and an OpenAPI document
from the code.

Each module here defines a flask-smorest blueprint for one domain; they are registered under
``/api/v1``, exempt from CSRF because only bearer tokens authenticate the API. What every route
promises (errors, examples, idempotency, pages) is in ``docs/api.md``.
"""

from flask import Flask
from flask_smorest import Api

from marketplace.api import docs
from marketplace.api.accounts import blp as accounts_blp
from marketplace.api.document import DocumentPlugin
from marketplace.api.ledger import blp as ledger_blp
from marketplace.api.network import blp as network_blp
from marketplace.api.notifications import blp as notifications_blp
from marketplace.api.payments import blp as payments_blp
from marketplace.api.problems import blp as problems_blp
from marketplace.api.referrals import blp as referrals_blp
from marketplace.api.webhooks import blp as webhooks_blp
from marketplace.extensions import csrf
from marketplace.idempotency import service as idempotency
from marketplace.jobs.service import register_periodic


class MarketplaceApi(Api):
    """flask-smorest, minus its app-wide error handler (``marketplace.web`` has the only one) and
    its generic "default" error response: each route declares its own (``api.contract``)."""

    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self):
        pass


api = MarketplaceApi(spec_kwargs={"extra_plugins": [DocumentPlugin()]})


def init_app(app: Flask) -> None:
    api.init_app(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    blueprints = (
        accounts_blp,
        problems_blp,
        referrals_blp,
        network_blp,
        notifications_blp,
        ledger_blp,
        payments_blp,
        webhooks_blp,
    )
    for blueprint in blueprints:
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint, url_prefix="/api/v1")
    register_periodic("prune idempotency keys", idempotency.prune)
    app.register_blueprint(docs.bp)
