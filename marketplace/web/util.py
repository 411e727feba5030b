"""Small helpers shared by the views."""

from urllib.parse import urlsplit

from flask import request
from flask_wtf import FlaskForm

from marketplace.db import db
from marketplace.errors import MarketplaceError, ValidationError


def form_error(form: FlaskForm, error: MarketplaceError) -> None:
    """Show a service's error on the form it came from, so the form re-renders with it; whatever
    the request had begun to change is dropped, as the error handler would."""
    db.session.rollback()
    form.form_errors.append(error.message)


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
