"""What every route of the API promises in its OpenAPI document: its error answers, derived from
the typed errors of ``marketplace.errors``, beside its success.

``ApiBlueprint`` declares what follows from the route itself: 401 for a route that takes a
token, 404 for one with an id in its path, 422 for one that reads a body or a query. A route adds
what its service can refuse with ``@errors(Forbidden, Conflict, ...)``; ``tests/api/test_contract.py``
checks every route declares its errors and every body has an example, and the contract test
(``tests/api/test_fuzz.py``) that no answer falls outside them.
"""

from collections.abc import Callable, Iterable
from copy import deepcopy
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from marketplace.errors import MarketplaceError, NotFound, Unauthorized, ValidationError


class ErrorDetailOut(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "stable, for programs: e.g. not_found"})
    message = ma.fields.String(required=True, metadata={"description": "for people; may change"})


class ErrorOut(ma.Schema):
    error = ma.fields.Nested(ErrorDetailOut, required=True)


# What a route may answer whatever it does: a body nested too deep or too large is refused
# before any route runs (``marketplace.web.request_limits``), whether the route reads one or not.
ALWAYS: tuple[type[MarketplaceError] | tuple[int, str], ...] = ((400, "bad_json"), (413, "request_entity_too_large"))
# What a route reading a JSON body may answer when the body is not JSON.
MALFORMED_BODY = (400, "bad_request")


def _status_and_code(error: type[MarketplaceError] | tuple[int, str]) -> tuple[int, str]:
    return error if isinstance(error, tuple) else (error.status, error.code)


def errors(*raised: type[MarketplaceError] | tuple[int, str]) -> Callable[[Any], Any]:
    """Declare the error answers a route may give: typed errors (their status and code) or
    ``(status, code)`` pairs for a code a service passes explicitly. Repeated declarations
    merge: one response per status, naming every code it may carry."""

    def decorate(view: Any) -> Any:
        declared: dict[int, list[str]] = {s: list(c) for s, c in getattr(view, "_error_codes", {}).items()}
        for error in raised:
            status, code = _status_and_code(error)
            codes = declared.setdefault(status, [])
            if code not in codes:
                codes.append(code)
        view._error_codes = declared
        view._apidoc = deepcopy(getattr(view, "_apidoc", {}))
        responses = view._apidoc.setdefault("response", {}).setdefault("responses", {})
        for status, codes in declared.items():
            responses[status] = [
                {
                    "schema": ErrorOut,
                    "description": f"{HTTPStatus(status).phrase}: {', '.join(f'`{c}`' for c in codes)}",
                    "example": {"error": {"code": codes[0], "message": "What went wrong, for people."}},
                    "content_type": None,
                }
            ]
        return view

    return decorate


def declared_errors(view: Any) -> dict[int, list[str]]:
    """The statuses a route declares, each with its codes."""
    return getattr(view, "_error_codes", {})


class ApiBlueprint(Blueprint):
    """A flask-smorest blueprint whose routes declare the errors that follow from their shape."""

    def route(self, rule: str, **options: Any) -> Callable[[Any], Any]:
        register = super().route(rule, **options)

        def decorator(view: Any) -> Any:
            return register(errors(*_implied(rule, view))(view))

        return decorator


def _implied(rule: str, view: Any) -> Iterable[type[MarketplaceError] | tuple[int, str]]:
    yield from ALWAYS
    if getattr(view, "requires_token", False):
        yield Unauthorized
        yield (Unauthorized.status, "bad_token")
    if "<" in rule:
        yield NotFound
    arguments = getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    if arguments:
        yield ValidationError
    if any(argument["in"] == "json" for argument in arguments):
        yield MALFORMED_BODY
