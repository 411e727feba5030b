"""Bounds on a request, checked before any view reads it.

A path holding a control character (NUL, CR, LF...) names nothing here and is answered 404, and
a page's query string holding one is answered 400, before a token or a search word holding NUL
reaches PostgreSQL, which cannot even compare such text. (The API's query arguments go through
its input schemas, which name the field they refuse.)

A JSON body larger than ``MAX_JSON_LENGTH`` is answered 413, and one nested deeper than
``MAX_JSON_DEPTH`` is answered 400 ``bad_json``: Python's parser recurses once per level, so a
body of 100,000 opening brackets would otherwise end in a ``RecursionError`` (a 500). The depth
is counted by scanning the brackets outside strings, which takes no recursion at all.
"""

import re
import unicodedata

from flask import current_app, request

from marketplace.errors import MarketplaceError, NotFound

# A JSON string (escapes included), whose brackets are text, not structure.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """How deeply ``body``'s arrays and objects nest (0 for a scalar); unbalanced input counts
    as deep as it opens."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", body)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _has_control(value: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in value)


def check_url(path_is_api: bool) -> None:
    """Refuse a path (404) or a page's query string (400) holding a control character."""
    if _has_control(request.path):
        raise NotFound("No such page.")
    if not path_is_api and any(
        _has_control(key) or _has_control(value) for key, value in request.args.items(multi=True)
    ):
        raise MarketplaceError("The address holds control characters.", code="invalid_query")


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def check_json_body(path_is_json: bool) -> None:
    """Refuse a JSON body (an ``application/json`` one, or any body sent to the API or a webhook,
    ``path_is_json``) that is too large (413) or too deep (400 ``bad_json``)."""
    uploaded_form = request.mimetype in FORM_TYPES  # a file upload keeps MAX_CONTENT_LENGTH
    if not (request.is_json or (path_is_json and request.content_length and not uploaded_form)):
        return
    request.max_content_length = current_app.config["MAX_JSON_LENGTH"]
    body = request.get_data(cache=True)  # past the limit: RequestEntityTooLarge, a 413
    limit = current_app.config["MAX_JSON_DEPTH"]
    if json_depth(body) > limit:
        raise MarketplaceError(f"The JSON body nests deeper than {limit} levels.", code="bad_json", status=400)
