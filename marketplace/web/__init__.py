"""The HTML side: blueprints, the one error handler, security headers and template helpers."""

import functools
from typing import Any, NamedTuple, cast

from flask import Flask, Request, flash, g, has_request_context, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.local import LocalProxy

from marketplace import origin
from marketplace.accounts.service import user_for_session
from marketplace.caching import PRIVATE_BY_DEFAULT, VisitorFastPath
from marketplace.config import settings_of
from marketplace.db import db, request_reads_only
from marketplace.errors import MarketplaceError, TooManyRequests
from marketplace.extensions import login_manager
from marketplace.web import csrf_tokens
from marketplace.web.accounts import bp as accounts_bp
from marketplace.web.admin import bp as admin_bp
from marketplace.web.filters import register_filters
from marketplace.web.fraud import bp as fraud_bp
from marketplace.web.ledger import bp as ledger_bp
from marketplace.web.main import bp as main_bp
from marketplace.web.navigation import load_member, navigation_of
from marketplace.web.network import bp as network_bp
from marketplace.web.notifications import bp as notifications_bp
from marketplace.web.payments import bp as payments_bp
from marketplace.web.problems import bp as problems_bp
from marketplace.web.referrals import bp as referrals_bp
from marketplace.web.request_limits import check_json_body, check_url
from marketplace.web.session_cookies import SignedCookieSessions
from marketplace.web.stripe_webhooks import bp as webhooks_bp
from marketplace.web.webhooks import bp as company_webhooks_bp

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self' http://127.0.0.1:* http://localhost:*; frame-ancestors 'none'; base-uri 'self'"
)


def security_headers_of(*, secure: bool) -> tuple[tuple[str, str], ...]:
    """What every response carries unless its view says otherwise; over HTTPS, HSTS as well."""
    headers = (
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
        PRIVATE_BY_DEFAULT,
    )
    return (*headers, ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")) if secure else headers


class BootstrapTags(NamedTuple):
    css: Markup
    js: Markup


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/webhooks/")


def error_response(status: int, code: str, message: str):
    """JSON ``{"error": {"code", "message"}}`` for the API, an HTML page or a flash elsewhere."""
    db.session.rollback()
    if wants_json():
        return jsonify(error={"code": code, "message": message}), status
    if request.method == "POST" and status in (400, 403, 409, 422) and request.referrer:
        flash(message, "danger")
        return redirect(request.referrer)
    return render_template("error.html", status=status, message=message), status


def with_retry_after(response, error: TooManyRequests):
    """``response`` (as a view returns it) with the Retry-After header ``error`` asks for."""
    body, status = response if isinstance(response, tuple) else (response, error.status)
    return body, status, {"Retry-After": str(error.retry_after)}


def _describe_field_errors(errors, path: str = ""):
    """Flatten marshmallow's nested error messages into ``field.sub: problem`` lines."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            # The top level is the request location (json, query), which names no field.
            field = f"{path}.{key}" if path else ("" if key in LOCATIONS else str(key))
            yield from _describe_field_errors(value, field)
    elif isinstance(errors, list):
        text = " ".join(str(e) for e in errors if not isinstance(e, dict | list))
        if text:
            yield f"{path}: {text}" if path else text
        for nested in (e for e in errors if isinstance(e, dict | list)):
            yield from _describe_field_errors(nested, path)
    else:
        yield f"{path}: {errors}" if path else str(errors)


LOCATIONS = {"json", "query", "form", "headers", "files", "cookies", "view_args"}

# ``url_for``'s own options: a link that names one is built by Flask every time.
_URL_OPTIONS = frozenset({"_anchor", "_method", "_scheme", "_external"})


def init_app(app: Flask) -> None:
    blueprints = (
        main_bp, accounts_bp, problems_bp, referrals_bp, network_bp, notifications_bp, admin_bp, ledger_bp,
        payments_bp, webhooks_bp, fraud_bp, company_webhooks_bp,
    )  # fmt: skip
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    register_filters(app)
    csrf_tokens.init_app(app)
    app.session_interface = SignedCookieSessions()
    app.wsgi_app = VisitorFastPath(app, app.wsgi_app)  # type: ignore[method-assign]

    @app.before_request
    def _declare_origin() -> None:
        """The audit log records the address each change came from (``marketplace.origin``)."""
        g.origin_token = origin.begin(request.remote_addr)

    @app.teardown_request
    def _forget_origin(_exc: BaseException | None) -> None:
        token = g.pop("origin_token", None)
        if token is not None:
            origin.end(token)

    @login_manager.user_loader
    def load_user(session_id: str):
        # A page that only reads loads its member with the navigation bar it will show.
        user = user_for_session(db.session, session_id, load_member if request_reads_only.get() else None)
        if user is not None:
            origin.identify(user.id)
        return user

    @app.before_request
    def bounded_request():
        check_url(wants_json())
        check_json_body(wants_json())

    @app.errorhandler(MarketplaceError)
    def handle_marketplace_error(error: MarketplaceError):
        response = error_response(error.status, error.code, error.message)
        if isinstance(error, TooManyRequests):
            return with_retry_after(response, error)
        return response

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error: CSRFError):
        return error_response(400, "csrf", "The form expired or came from elsewhere; please try again.")

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
        field_errors = (getattr(error, "data", None) or {}).get("messages")
        if field_errors:  # webargs' validation errors, by location then field
            code = "invalid"
            message = "; ".join(_describe_field_errors(field_errors))
        return error_response(error.code or 500, code, message)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        if app.testing and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise error
        return error_response(500, "internal", "Something went wrong on our side; nothing was changed.")

    default_headers = security_headers_of(secure=settings_of(app).session_cookie_secure)

    @app.after_request
    def security_headers(response):
        """Each of ``default_headers`` the view did not set itself. The response's headers are
        read once: ``Headers.setdefault`` scans them three times per header, on every request."""
        present = {name.lower() for name, _ in response.headers}
        response.headers.extend([(name, value) for name, value in default_headers if name.lower() not in present])
        return response

    @functools.lru_cache(maxsize=4)
    def bootstrap_tags_under(script_root: str) -> BootstrapTags:
        bootstrap = app.extensions["bootstrap"]
        return BootstrapTags(css=bootstrap.load_css(), js=bootstrap.load_js())

    def bootstrap_tags() -> BootstrapTags:
        """Bootstrap-Flask's ``<link>`` and ``<script>`` tags, built once: ``load_css`` and
        ``load_js`` built them on every render from settings that do not change while the app
        runs; only where the app is mounted moves their links."""
        return bootstrap_tags_under(request.script_root)

    app.jinja_env.globals["bootstrap_tags"] = bootstrap_tags

    # A link depends only on the endpoint, its values and where the app is mounted: no URL
    # defaults, no host or subdomain matching here (``remembered_url_for`` refuses to start
    # otherwise). Bounded: a list of many problems churns it, never grows it.
    if app.url_default_functions or app.url_map.host_matching or app.subdomain_matching:
        raise RuntimeError("links depend on more than their values here: remembered_url_for is wrong")

    @functools.lru_cache(maxsize=8192)
    def url_under(script_root: str, endpoint: str, values: tuple) -> str:
        return url_for(endpoint, **dict(values))

    def remembered_url_for(endpoint: str, **values: Any) -> str:
        """Flask's ``url_for`` for the templates, each link remembered once built: building one
        took 6 µs, as long as the rest of a list's row, and a member's page builds dozens (one a
        row, fourteen in the navigation; docs/performance.md, "Instructions per request").
        Relative endpoints, Flask's own options (``_external``, ``_anchor``...) and values that
        cannot be a key (a list) are built as Flask builds them, as is any link outside a
        request. The request is taken from its proxy once: each attribute read through the
        proxy looks the request up again, and that was two fifths of a remembered link's cost."""
        if endpoint[0] == "." or not _URL_OPTIONS.isdisjoint(values):
            return url_for(endpoint, **values)
        try:
            script_root = cast("LocalProxy[Request]", request)._get_current_object().script_root
        except RuntimeError:  # outside a request
            return url_for(endpoint, **values)
        try:
            return url_under(script_root, endpoint, tuple(values.items()))
        except TypeError:  # an unhashable value; a wrong one fails again, as Flask's own
            return url_for(endpoint, **values)

    app.jinja_env.globals["url_for"] = remembered_url_for

    @app.context_processor
    def settings():
        """``app_settings`` in every template: the typed settings (the banner reads its APP_ENV)."""
        return {"app_settings": settings_of(app)}

    @app.context_processor
    def navigation():
        if not has_request_context() or not current_user.is_authenticated:
            return {"my_companies": [], "unread_notifications": 0}
        companies, unread = navigation_of(db.session, current_user)
        return {"my_companies": companies, "unread_notifications": unread}

    @app.teardown_request
    def _forget_navigation(_exc: BaseException | None) -> None:
        """What ``load_member`` kept is this request's: ``g`` outlives it when an app context
        was pushed around several requests (a command, a test)."""
        g.pop("member_navigation", None)
