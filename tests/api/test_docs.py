"""The API's reference at /api/docs loads from this origin alone (marketplace/api/docs.py): the
site's Content-Security-Policy allows nothing else, and a reader offline still gets it."""

import re

from flask import url_for


def test_the_reference_and_everything_it_loads_answer_from_this_origin(app, client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    loaded = re.findall(r'(?:src|href|data-spec)="([^"]+)"', html)
    assert loaded and all(url.startswith("/") and not url.startswith("//") for url in loaded), loaded
    assert "<script>" not in html  # no inline script: the CSP would refuse it
    for url in loaded:
        answer = client.get(url)
        assert answer.status_code == 200, url
    with app.test_request_context():
        spec = url_for("api-docs.openapi_json")
        assert spec in loaded and client.get(spec).get_json()["info"]["title"] == "Referral Marketplace API"


def test_only_the_files_the_reference_needs_are_served(client):
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/api/docs/assets/index.html").status_code == 404
    assert client.get("/api/docs/assets/..%2F__init__.py").status_code == 404


def test_the_footer_and_the_profile_link_to_it(world, browser):
    person = browser()
    person.login(world.ann.email)
    assert 'href="/api/docs"' in person.get("/dashboard").text
    assert 'href="/api/docs"' in person.get("/profile").text
