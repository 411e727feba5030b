"""Bounds on a JSON request body, checked before anything parses it.

A JSON body larger than ``MAX_JSON_LENGTH`` is answered 413, and one nested deeper than
``MAX_JSON_DEPTH`` is answered 400 ``bad_json``: Python's parser recurses once per level, so a
body of 100,000 opening brackets would otherwise end in a ``RecursionError`` (a 500). The depth
is counted by scanning the brackets outside strings, which takes no recursion at all.
"""

import re

from flask import current_app, request

from marketplace.errors import MarketplaceError

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


def check_json_body(path_is_json: bool) -> None:
    """Refuse a JSON body (an ``application/json`` one, or any body sent to the API or a webhook,
    ``path_is_json``) that is too large (413) or too deep (400 ``bad_json``)."""
    if not (request.is_json or (path_is_json and request.content_length)):
        return
    request.max_content_length = current_app.config["MAX_JSON_LENGTH"]
    body = request.get_data(cache=True)  # past the limit: RequestEntityTooLarge, a 413
    limit = current_app.config["MAX_JSON_DEPTH"]
    if json_depth(body) > limit:
        raise MarketplaceError(f"The JSON body nests deeper than {limit} levels.", code="bad_json", status=400)
