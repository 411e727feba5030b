"""Small helpers shared by the views."""

import functools
from collections.abc import Callable, Hashable, Sequence
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import current_app, request
from flask_wtf import FlaskForm
from markupsafe import Markup, escape

from marketplace.db import Read, db, reading_ahead
from marketplace.errors import MarketplaceError, ValidationError
from marketplace.web.csrf_tokens import request_token

Rendering = TypeVar("Rendering", bound=Callable[..., Markup])


def form_error(form: FlaskForm, error: MarketplaceError) -> None:
    """Show a service's error on the form it came from, so the form re-renders with it; whatever
    the request had begun to change is dropped, as the error handler would."""
    db.session.rollback()
    form.form_errors.append(error.message)


def form_markup(form: FlaskForm | None, blank: type[FlaskForm], action: str) -> Markup:
    """``form`` as ``form_with_errors`` (templates/_form.html) renders it, to show what was typed
    beside its errors; or, with None, a ``blank`` form with nothing typed in it yet.

    A blank form is the same markup for every viewer and address but for its CSRF token and its
    ``action``, so each process renders it once for each form and puts the request's token and
    address in it. Only for forms whose empty state follows from their class alone: no default
    taken from the viewer."""
    if form is not None:
        return _form_with_errors(form, action)
    if current_app.jinja_env.auto_reload:  # an edit to the template shows at once
        return _form_with_errors(blank(formdata=None), action)
    markup = _BLANK_FORMS.get(blank)
    if markup is None:
        markup = _BLANK_FORMS[blank] = token_marked(_form_with_errors(blank(formdata=None), _ACTION_MARK))
    return with_request_token(markup.replace(_ACTION_MARK, str(escape(action))))


def token_marked(rendered: str) -> str:
    """Markup rendered in this request, as text to keep between requests: the request's CSRF
    token (its session's) stands as a mark that ``with_request_token`` fills."""
    return str(rendered).replace(request_token(), _TOKEN_MARK)


def with_request_token(kept: str) -> Markup:
    """Markup ``token_marked`` kept, with this request's CSRF token."""
    return Markup(str(kept).replace(_TOKEN_MARK, request_token()))


def _form_with_errors(form: FlaskForm, action: str) -> Markup:
    macros: Any = current_app.jinja_env.get_template("_form.html").module
    return macros.form_with_errors(form, action=action)


# Stand for the address and the token in a blank form's markup: no field or label contains them.
_ACTION_MARK = "address-of-the-form"
_TOKEN_MARK = "csrf-token-of-the-request"
_BLANK_FORMS: dict[type[FlaskForm], str] = {}


def rendered_once(*, maxsize: int) -> Callable[[Rendering], Rendering]:
    """Each process renders a fragment once for each value of its arguments, which must be
    everything the fragment shows and hashable; while templates reload (development), on every
    call, so that an edit to a template shows at once."""

    def decorate(render: Rendering) -> Rendering:
        kept = functools.lru_cache(maxsize=maxsize)(render)

        @wraps(render)
        def rendered(*args: Hashable) -> Markup:
            return (render if current_app.jinja_env.auto_reload else kept)(*args)

        return cast(Rendering, rendered)

    return decorate


def safe_next() -> str | None:
    """The ``next`` target after log-in, only if it stays on this site."""
    target = request.args.get("next") or request.form.get("next")
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def whole_number(value: str) -> int | None:
    """``value`` as a whole number of at most 18 digits (so it fits a 64-bit column), or None.
    Only ASCII digits count: ``"²"`` is a digit to ``str.isdigit`` but not a number to ``int``."""
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def int_arg(name: str) -> int | None:
    """A whole number from the query string (``whole_number``), None when absent."""
    value = request.args.get(name, "").strip()
    if not value:
        return None
    number = whole_number(value)
    if number is None:
        raise ValidationError(f"'{name}' must be a whole number.", code="invalid_query")
    return number


def reads_ahead(reads: Callable[..., Sequence[Read]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the view inside ``db.reading_ahead`` of ``reads(**view_args)``: the statements its
    page will run, by what its address and its member say. Put it right under the route, above
    every decorator that reads (``cached_for_visitors`` loads the member)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(**view_args: Any) -> Any:
            with reading_ahead(db.session, lambda: reads(**view_args)):
                return view(**view_args)

        return wrapper

    return decorate
