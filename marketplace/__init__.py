"""The referral marketplace: companies post problems with bounties, members broker introductions
through their networks, and the bounty is settled along the chain that found the expert."""

from pathlib import Path

from flask import Flask
from werkzeug.routing import IntegerConverter

from marketplace import config as config_module

ROOT = Path(__file__).resolve().parent.parent


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in URLs, bounded to what the database can hold: a larger id is a 404."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(config: dict | None = None) -> Flask:
    """The app factory; ``config`` overrides the environment (tests pass their database here)."""
    settings = config_module.from_environment()
    settings.update(config or {})
    app = Flask(
        __name__,
        instance_path=settings["INSTANCE_PATH"],
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
        MAX_CONTENT_LENGTH=5 * 1024 * 1024,
        API_TITLE="Referral Marketplace API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
    )
    app.config.update(settings)
    app.url_map.converters["int"] = RowIdConverter
    app.config["REMEMBER_COOKIE_SECURE"] = app.config["SESSION_COOKIE_SECURE"]
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from marketplace.accounts import passwords
    from marketplace.extensions import bootstrap, csrf, database, limiter, login_manager

    passwords.configure(app.config.get("PASSWORD_HASH_METHOD", passwords.DEFAULT_METHOD))
    database.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    bootstrap.init_app(app)
    limiter.init_app(app)

    from marketplace import api, cli, web
    from marketplace.notifications import events, mail  # noqa: F401 - registers their jobs

    web.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    return app
