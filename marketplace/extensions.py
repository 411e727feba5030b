"""Flask extensions, created unbound and ``init_app``-ed by the app factory."""

from typing import cast

from flask import Flask, current_app
from flask_bootstrap import Bootstrap5
from flask_caching import Cache
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from itsdangerous import URLSafeTimedSerializer
from limits.storage import Storage, storage_from_string

from marketplace.accounts.login_throttle import LoginThrottle
from marketplace.db import db as database
from marketplace.network.reach_service import ReachGraph
from marketplace.referrals import records

login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = "Log in to continue."
login_manager.login_message_category = "info"

csrf = CSRFProtect()
bootstrap = Bootstrap5()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def init_rate_limits(app: Flask) -> None:
    """Flask-Limiter on the app, its limits checked by each limited view alone.

    Every limit of this app is on its view (no default, application or blueprint limit), and a
    limited view checks its limits itself when it runs. The check Flask-Limiter adds before every
    request could only find nothing, and it cost a tenth of a member's lightest page, so it is
    taken off again (docs/security.md); a limit for every view at once is refused rather than
    silently never checked."""
    for key in ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION"):
        if app.config.get(key):
            raise RuntimeError(f"{key} is not supported: put the limit on each view it is for.")
    limiter.init_app(app)
    before_request = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in before_request:  # not there when limits are switched off
        before_request.remove(limiter._check_request_limit)


# Rendered pages for visitors who are not logged in (``marketplace.caching``): SimpleCache in each
# process by default, Redis when CACHE_URL is set.
page_cache = Cache()


def init_login_throttle(app: Flask) -> None:
    """The per-account log-in throttle, counting in the rate limiter's storage (its docstring says why)."""
    app.extensions["login_throttle"] = LoginThrottle(
        # RATELIMIT_STORAGE_URI names a synchronous storage (memory://, redis://), as Flask-Limiter needs.
        storage=cast(Storage, storage_from_string(app.config["RATELIMIT_STORAGE_URI"])),
        signer=URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="device-cookie"),
        free_failures=app.config["LOGIN_THROTTLE_FREE_FAILURES"],
        window=app.config["LOGIN_THROTTLE_WINDOW"],
        first_delay=app.config["LOGIN_THROTTLE_FIRST_DELAY"],
        max_delay=app.config["LOGIN_THROTTLE_MAX_DELAY"],
    )


def login_throttle() -> LoginThrottle:
    """The app's per-account log-in throttle."""
    throttle: LoginThrottle = current_app.extensions["login_throttle"]
    return throttle


def init_reach_graph(app: Flask) -> None:
    """Each process keeps one reach index over the app's database (docs/network.md)."""
    app.extensions["reach_graph"] = ReachGraph(track_records=records.track_records)


def reach_graph() -> ReachGraph:
    """This process's reach index for the app's database."""
    graph: ReachGraph = current_app.extensions["reach_graph"]
    return graph


__all__ = [
    "bootstrap",
    "csrf",
    "database",
    "init_login_throttle",
    "init_rate_limits",
    "init_reach_graph",
    "limiter",
    "login_manager",
    "login_throttle",
    "page_cache",
    "reach_graph",
]
