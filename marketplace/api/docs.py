"""The API's reference, readable in a browser at ``/api/docs``: Swagger UI over the OpenAPI
document at ``/api/v1/openapi.json`` (README.md, "The JSON API").

Swagger UI's files come from the pinned ``swagger-ui-bundle`` package and are served from this
origin, so the page loads nothing from elsewhere and the site's Content-Security-Policy
(``script-src 'self'``) holds; the one line that starts it is ``static/api-docs.js``.
"""

from flask import Blueprint, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from marketplace.errors import NotFound

bp = Blueprint("api_docs", __name__)

# Only what the page loads is served from the package (its license is Apache 2.0).
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})


@bp.get("/api/docs")
def reference():
    return render_template("api_docs.html")


@bp.get("/api/docs/assets/<name>")
def asset(name: str):
    if name not in ASSETS:
        raise NotFound("No such file.")
    return send_from_directory(str(swagger_ui_path), name, max_age=86_400)
