"""Pages for visitors who are not logged in, served from a cache that is never stale
(docs/performance.md, "Caching").

The board, the home page and a public problem's page show visitors nothing but problems, so
``problems.service.last_change`` (the newest ``updated_at``, one indexed read) is a version
stamp for all of them: every write to a problem moves it. A visitor's page is kept under its
path and that stamp, and answered with an ``ETag`` made of the same, so a browser that has it
gets a 304 and a write makes every older copy unreachable at once.

Nothing a logged-in member sees is cached or stored by a shared cache: their requests skip this
entirely, and ``private_by_default`` marks every other response ``private, no-cache``. A visitor
with a message waiting (a flash after logging out, say) is not served from the cache either,
so the message is shown once and never stored.
"""

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, make_response, request, session
from flask_login import current_user

from marketplace.db import db
from marketplace.extensions import page_cache
from marketplace.problems import service as problems

# How long an entry may sit unused; correctness does not depend on it (the stamp does that).
KEEP_SECONDS = 600


def cached_for_visitors(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user.is_authenticated or session.get("_flashes"):
            return view(*args, **kwargs)
        stamp = problems.last_change(db.session)
        etag = hashlib.sha256(f"{stamp}|{request.full_path}".encode()).hexdigest()[:32]
        if request.if_none_match.contains(etag):
            response = Response(status=304)
        else:
            body = page_cache.get(etag)
            if body is None:
                rendered = make_response(view(*args, **kwargs))
                if rendered.status_code != 200:
                    return rendered
                body = rendered.get_data(as_text=True)
                page_cache.set(etag, body, timeout=KEEP_SECONDS)
            response = make_response(body)
        response.set_etag(etag)
        if stamp is not None:
            response.last_modified = stamp
        # Any cache may keep it, but must ask again each time (the ETag makes that a 304).
        response.headers["Cache-Control"] = "public, no-cache"
        response.vary.add("Cookie")
        return response

    return wrapper


def private_by_default(response: Response) -> Response:
    """Every response not marked cacheable above is for one person: never in a shared cache."""
    response.headers.setdefault("Cache-Control", "private, no-cache")
    return response
