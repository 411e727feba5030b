"""Hostile text on every text field of the API: line breaks, NUL, a direction override, a
zero-width space, look-alike letters, JSON nested 100,000 deep, "%" and "_".

The fields come from the OpenAPI document (every string a request body or query takes, nested
objects and lists included), so a field added to a schema is covered here without a word. A
single-line field refuses every invisible character with a 422 naming it; a multi-line one
(``x-multi-line``) takes line breaks and drops zero-width spaces but refuses the rest; nothing
is ever a 500, and the mail the requests cause is delivered, never parked.
"""

import io
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from marketplace.db import db
from marketplace.jobs.models import Job, JobStatus
from marketplace.problems.models import Problem
from marketplace.referrals import chains
from tests.api.openapi import operations

LINE_BREAKS = {"CR LF": "Plain\r\nBcc: evil@example.com", "LF": "Plain\nline"}
ALWAYS_REFUSED = {"NUL": "Plain\x00text", "bidi override": "Plain \u202etxt.exe"}
ZERO_WIDTH = {"zero-width space": "Pla\u200bin"}
HARMLESS = {"look-alike letters": "Рlаin tеxt", "percent and underscore": "100%_off"}


@dataclass(frozen=True)
class TextField:
    method: str
    path: str
    location: str  # "json" or "query"
    name: tuple[str, ...]  # the field's path in the body, lists marked "[]"
    multi_line: bool

    @property
    def label(self) -> str:
        return ".".join(part for part in self.name if part != "[]")

    def request(self, value) -> dict:
        """The keyword arguments of a test-client call putting ``value`` in this field alone."""
        url = re.sub(r"\{[^}]+\}", "1", self.path)
        if self.location == "query":
            return {"path": url, "query_string": {self.label: value}}
        body = value
        for part in reversed(self.name):
            body = [body] if part == "[]" else {part: body}
        return {"path": url, "json": body}


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _strings(spec: dict, schema: dict, name: tuple[str, ...] = ()):
    """(name, property) of each string in ``schema``, through nested objects and lists."""
    schema = _resolve(spec, schema)
    if schema.get("type") == "string" and schema.get("format") not in ("password", "date", "date-time"):
        yield name, schema
    elif schema.get("type") == "array":
        yield from _strings(spec, schema.get("items", {}), (*name, "[]"))
    for key, prop in schema.get("properties", {}).items():
        yield from _strings(spec, prop, (*name, key))


def text_fields(spec: dict) -> list[TextField]:
    fields = []
    for method, path, _, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                for name, prop in _strings(spec, parameter["schema"], (parameter["name"],)):
                    fields.append(TextField(method, path, "query", name, bool(prop.get("x-multi-line"))))
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            for name, prop in _strings(spec, body["schema"]):
                fields.append(TextField(method, path, "json", name, bool(prop.get("x-multi-line"))))
    return fields


@pytest.fixture
def spec(client):
    return client.get("/api/v1/openapi.json").json


@pytest.fixture
def call(client, world, api):
    """Send a request as the company's owner (a token, so parsing is reached)."""
    headers = api(world.owner)._headers()

    def send(method: str, **kwargs):
        return client.open(method=method.upper(), headers=headers, **kwargs)

    return send


def no_mail_parked(session, sent_mail) -> None:
    sent_mail.deliver()
    session.expire_all()
    parked = session.scalars(select(Job).where(Job.kind == "email.send", Job.status == JobStatus.PARKED)).all()
    assert parked == []


def test_the_document_lists_the_text_fields_of_every_kind(spec):
    fields = {(f.method, f.path, f.label): f for f in text_fields(spec)}
    assert not fields[("post", "/api/v1/problems", "title")].multi_line
    assert fields[("post", "/api/v1/problems", "description")].multi_line
    assert ("post", "/api/v1/problems", "bounty.currency") in fields
    assert ("post", "/api/v1/problems", "skills") in fields
    assert ("get", "/api/v1/problems", "q") in fields
    assert ("post", "/api/v1/users", "name") in fields
    assert ("post", "/api/v1/users", "password") not in fields  # hashed, never shown: taken as typed


def test_single_line_fields_refuse_every_invisible_character_naming_the_field(spec, call, session, sent_mail):
    hostile = {**LINE_BREAKS, **ALWAYS_REFUSED, **ZERO_WIDTH}
    wrong = []
    for field in (f for f in text_fields(spec) if not f.multi_line):
        for what, value in hostile.items():
            response = call(field.method, **field.request(value))
            error = (response.get_json(silent=True) or {}).get("error", {})
            message = error.get("message", "")
            refusal = re.search(rf"(^|; ){re.escape(field.label)}: [^;]*one line of visible text", message)
            if response.status_code != 422 or not refusal:
                wrong.append((field, what, response.status_code, error))
    assert wrong == []
    no_mail_parked(session, sent_mail)


def test_multi_line_fields_take_line_breaks_and_refuse_controls_and_overrides(spec, call, session, sent_mail):
    multi_line = [f for f in text_fields(spec) if f.multi_line]
    assert multi_line
    wrong = []
    for field in multi_line:
        for what, value in {**LINE_BREAKS, **ZERO_WIDTH, **ALWAYS_REFUSED}.items():
            response = call(field.method, **field.request(value))
            assert response.status_code < 500, (field, what, response.status_code)
            error = (response.get_json(silent=True) or {}).get("error", {})
            named = f"{field.label}: " in error.get("message", "")
            if named != (what in ALWAYS_REFUSED):
                wrong.append((field, what, response.status_code, error))
    assert wrong == []
    no_mail_parked(session, sent_mail)


def test_look_alike_letters_and_like_wildcards_are_never_a_server_error(spec, call, session, sent_mail):
    for field in text_fields(spec):
        for what, value in HARMLESS.items():
            response = call(field.method, **field.request(value))
            assert response.status_code < 500, (field, what, response.status_code)
    no_mail_parked(session, sent_mail)


def test_json_nested_100k_deep_is_a_bad_json_400_on_every_route_with_a_body(spec, call):
    routes = [
        (method, re.sub(r"\{[^}]+\}", "1", path))
        for method, path, _, operation in operations(spec)
        if "requestBody" in operation
    ]
    assert len(routes) > 10
    for method, url in routes:
        response = call(method, path=url, data="[" * 100_000, content_type="application/json")
        assert response.status_code == 400, (method, url)
        assert response.get_json()["error"]["code"] == "bad_json"
        shallow = call(method, path=url, data="[" * 20 + "]" * 20, content_type="application/json")
        assert shallow.status_code < 500 and shallow.get_json()["error"]["code"] != "bad_json"


def test_a_json_body_over_the_limit_is_a_413_in_the_error_shape(app, call):
    too_long = '{"name": "' + "x" * app.config["MAX_JSON_LENGTH"] + '"}'
    response = call("post", path="/api/v1/companies", data=too_long, content_type="application/json")
    assert response.status_code == 413
    assert set(response.get_json()["error"]) == {"code", "message"}


def test_a_file_upload_to_the_api_is_held_to_the_upload_limit_not_the_json_one(app, call):
    """A vCard file of 1.5 MiB is past the JSON limit but within the 5 MiB upload limit."""
    cards = "".join(
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Contact Number {n}\r\nEMAIL:contact{n}@example.org\r\nEND:VCARD\r\n"
        for n in range(20_000)
    ).encode()
    assert app.config["MAX_JSON_LENGTH"] < len(cards) < app.config["MAX_CONTENT_LENGTH"]

    response = call("post", path="/api/v1/me/card-imports", data={"file": (io.BytesIO(cards), "contacts.vcf")})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "preview"
    too_big = call(
        "post",
        path="/api/v1/me/card-imports",
        data={"file": (io.BytesIO(b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)), "contacts.vcf")},
    )
    assert too_big.status_code == 413 and too_big.get_json()["error"]["code"]


def test_multi_line_text_is_stored_with_plain_line_breaks_and_no_zero_width_characters(api, world, session):
    response = api(world.owner).post(
        "/problems",
        {
            "company_id": world.company.id,
            "title": "Fix our Postgres replication lag",
            "description": "Replicas fall behind.\r\nAt peak\u200b they are minutes late.",
            "skills": ["postgres"],
            "bounty": {"amount": 100_000, "currency": "usd"},
            "publish": False,
        },
    )
    assert response.status_code == 201
    stored = session.get(Problem, response.get_json()["id"])
    assert stored.description == "Replicas fall behind.\nAt peak they are minutes late."


def test_a_title_stored_before_the_rules_still_mails_with_a_one_line_subject(session, world, open_problem, sent_mail):
    problem = open_problem()
    problem.title = "Fix replication\r\nBcc: everyone@example.com \u202eexe.txt"
    session.commit()
    chains.pick_from_board(session, world.ann, problem.id)
    chains.forward(session, world.ann, problem.id, to_email="friend@elsewhere.example")
    session.commit()

    (message,) = sent_mail.to("friend@elsewhere.example")
    assert "Fix replication Bcc: everyone@example.com exe.txt" in message["Subject"]
    assert message["Bcc"] is None
    no_mail_parked(db.session, sent_mail)
