"""The referral marketplace: companies post problems with bounties, members broker introductions
through their networks, and the bounty is settled along the chain that found the expert."""

from pathlib import Path

from flask import Flask
from flask import typing as ft
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from marketplace import api, cli, web, workflows
from marketplace import config as config_module
from marketplace.accounts import passwords
from marketplace.audit import registry as audit_registry
from marketplace.extensions import (
    bootstrap,
    csrf,
    database,
    init_login_throttle,
    init_rate_limits,
    init_reach_graph,
    login_manager,
    page_cache,
)
from marketplace.fraud import registry as fraud_registry
from marketplace.network import registry as network_registry
from marketplace.notifications import registry as notifications_registry
from marketplace.payments import registry as payments_registry
from marketplace.web.templating import TemplateEnvironment, freeze_globals
from marketplace.webhooks import registry as webhooks_registry

ROOT = Path(__file__).resolve().parent.parent


class MarketplaceApp(Flask):
    """Flask, with the templates' environment of ``marketplace.web.templating``, and views that
    only read run once more when the database had closed their connection (``db.run_reads_only``)."""

    jinja_environment = TemplateEnvironment
    # The templates are the repository's own files, a bounded set: kept in a plain dict rather
    # than Jinja's least-recently-used cache of 400, whose every lookup (each render, include and
    # import) takes a lock and moves the template to the end of a queue, by a linear search.
    jinja_options = {"cache_size": -1}

    def dispatch_request(self) -> ft.ResponseReturnValue:
        return database.run_reads_only(super().dispatch_request)


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in URLs, bounded to what the database can hold: a larger id is a 404."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(config: dict | None = None) -> Flask:
    """The app factory; ``config`` overrides the environment (tests pass their database here).

    Upper-case keys that name a setting (``DATABASE_URL``, ``SECRET_KEY``, ``APP_ENV``...) go
    through the typed ``Settings``; any other key (``TESTING``, ``RATELIMIT_ENABLED``...) goes to
    ``app.config`` as given. Refuses to start with unsafe settings (see ``Settings.unsafe``).
    """
    overrides = dict(config or {})
    settings = config_module.load(overrides)
    unsafe = settings.unsafe()
    if unsafe:
        raise config_module.ConfigurationError(
            f"Refusing to start with APP_ENV={settings.app_env}: " + " ".join(unsafe)
        )
    app = MarketplaceApp(
        __name__,
        instance_path=settings.instance_path,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        BOOTSTRAP_SERVE_LOCAL=True,
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=5 * 1024 * 1024,  # an upload: a LinkedIn export or a vCard file
        MAX_JSON_LENGTH=1024 * 1024,
        MAX_JSON_DEPTH=32,
        LOGIN_THROTTLE_FREE_FAILURES=5,
        LOGIN_THROTTLE_WINDOW=15 * 60,
        LOGIN_THROTTLE_FIRST_DELAY=1,
        LOGIN_THROTTLE_MAX_DELAY=60,
        API_TITLE="Referral Marketplace API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
    )
    app.config["TESTING"] = settings.testing
    config_module.install(app, settings)
    app.config.update({key: value for key, value in overrides.items() if not config_module.is_setting(key)})
    app.url_map.converters["int"] = RowIdConverter
    if settings.proxy_hops:
        # Behind a reverse proxy: the client's address (rate limits, the audit log, fraud checks)
        # and scheme (links, secure cookies) as the trusted proxies forwarded them.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    passwords.configure(app.config.get("PASSWORD_HASH_METHOD", passwords.DEFAULT_METHOD))
    database.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    bootstrap.init_app(app)
    init_rate_limits(app)
    page_cache.init_app(app)
    init_reach_graph(app)
    init_login_throttle(app)

    workflows.init_app(app)
    network_registry.init_app(app)
    notifications_registry.init_app(app)
    payments_registry.init_app(app)
    audit_registry.init_app(app)
    fraud_registry.init_app(app)
    webhooks_registry.init_app(app)
    web.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    freeze_globals(app.jinja_env)
    return app
