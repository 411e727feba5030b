"""Who may call what: every route of the JSON API v1 against five kinds of caller.

The callers: nobody (no token), an outsider (a member with no part in anything), a chain member
(Ann, who holds a place in the chains of both the public and the private problem), an employee and
an admin of the company that posted the problems. Every refusal answers
``{"error": {"code": str, "message": str}}``; bodies that are malformed or of the wrong shape are
refused with a JSON 4xx, never a 500; a token that is wrong or revoked is a 401.
"""

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from devtools.stripe_emulator import Emulator
from marketplace import create_app
from marketplace.accounts import service as accounts
from marketplace.db import db, make_engine
from marketplace.models import metadata
from marketplace.network import service as network
from marketplace.referrals import chains, introductions
from marketplace.webhooks import service as webhooks
from marketplace.webhooks.models import DeliveryStatus
from tests import builders as build
from tests.conftest import FAST_PASSWORD_HASH, PASSWORD

# Speed: the matrix is ~140 tests, each with its own scene. Building an app and a schema for each
# (as the shared ``app`` fixture does) and hashing nine passwords with scrypt would be most of the
# run time, so this module keeps one app and empties its tables before each test instead.


@pytest.fixture(scope="module")
def emulator():
    emu = Emulator(auto_deliver=False).start(port=0)
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def app(tmp_path_factory, postgres_engine, emulator):
    """The shared ``app`` fixture's configuration, built once for the module."""
    tmp = tmp_path_factory.mktemp("authorization")
    if postgres_engine is None:
        url = f"sqlite:///{tmp / 'test.db'}"
        engine = make_engine(url)
        metadata.create_all(engine)
        engine.dispose()
        shutil.copyfile(tmp / "test.db", tmp / "empty.db")
    else:
        url = os.environ["TEST_DATABASE_URL"]  # the schema is the session's (``postgres_engine``)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret",
            "INSTANCE_PATH": str(tmp / "instance"),
            "BASE_URL": "http://localhost",
            "RATELIMIT_ENABLED": False,
            "STRIPE_SECRET_KEY": "sk_test_authorization",
            "STRIPE_API_BASE": emulator.url,
            "PASSWORD_HASH_METHOD": FAST_PASSWORD_HASH,
        }
    )
    yield app
    db.remove()
    db.dispose()


def copy_back(engine, kept: str) -> None:
    """SQLite: the database file replaced by its copy named ``kept``, beside it, once no pool of
    the app holds a connection to it (the read engine's included)."""
    db.dispose()
    path = Path(engine.url.database)
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(path.with_name(kept), path)


def delete_every_row(connection) -> None:
    """PostgreSQL: every row deleted in ``connection``'s transaction, with row triggers off (the
    ledger refuses DELETE; TRUNCATE is far slower here)."""
    connection.execute(text("SET LOCAL session_replication_role = replica"))
    for table in reversed(metadata.sorted_tables):
        connection.execute(table.delete())


def empty_tables(engine) -> None:
    """Back to an empty schema: SQLite gets a fresh copy of the empty database file, PostgreSQL
    deletes every row."""
    if engine.dialect.name == "sqlite":
        copy_back(engine, "empty.db")
        return
    with engine.begin() as connection:
        delete_every_row(connection)


@pytest.fixture(autouse=True)
def clean_slate(app, monkeypatch):
    """Each test starts from empty tables and no mail."""
    empty_tables(db.engine)
    app.extensions.setdefault("sent_mail", []).clear()
    yield
    db.remove()


@dataclass
class Scene:
    """Ids and tokens only: plain values, so using them never touches the test's session."""

    company: int
    public: int
    private: int
    draft: int
    link: str
    invitation: str
    pending: int
    awaiting: int
    proposed: int
    bob: int
    dev: int
    ethan: int
    request: int
    card: int
    token: int
    endpoint: int
    delivery: int
    missing: int = 2**31  # an id nothing has


@pytest.fixture
def scene(session, world, open_problem) -> Scene:
    """The public problem: Ann picked it, sent an e-mail link to a newcomer, introduced Dev (who has
    not answered yet) and put herself forward (proposed). The private problem: the employee shared
    it with Ann, who claimed it. A draft, and an invitation to join the company (as employee)
    addressed to the outsider. Everyone has confirmed their address. Ann is connected to Bob, has
    asked the employee to connect, and keeps a contact card and an API token named "Laptop". The
    company has a webhook endpoint with one delivered test ping."""
    public = open_problem()
    chains.pick_from_board(session, world.ann, public.id)
    link = chains.forward(session, world.ann, public.id, to_email="newcomer@elsewhere.example")
    awaiting = introductions.introduce(
        session, world.ann, public.id, candidate_email="dev@example.com", message="Dev rebuilt replication at scale."
    )
    proposed = introductions.introduce(
        session, world.ann, public.id, candidate_user_id=world.ann.id, message="I have fixed this twice before."
    )
    private = open_problem(visibility="private")
    shared = chains.forward(session, world.employee, private.id, to_user_id=world.ann.id)
    chains.claim(session, world.ann, shared.token)
    draft = build.problem(session, world.owner, world.company.id, "draft")
    pending, invitation = accounts.invite(
        session, world.owner, world.company.id, email=world.outsider.email, role="employee"
    )
    asked = network.request_connection(session, world.bob, user_id=world.ann.id, note="Neighbours")
    network.answer_request(session, world.ann, asked.id, "confirm")
    request = network.request_connection(session, world.ann, user_id=world.employee.id, note="Same climbing gym")
    card = network.create_card(session, world.ann, network.CardData(name="Nadia Noor", email="nadia@elsewhere.example"))
    token, _ = accounts.create_api_token(session, world.ann, name="Laptop")
    endpoint, _ = webhooks.create_endpoint(
        session, world.owner, world.company.id, url="https://hooks.acme.example.com/in", event_types=["problem.funded"]
    )
    delivery = webhooks.ping(session, world.owner, world.company.id, endpoint.id)
    delivery.status = DeliveryStatus.SUCCEEDED
    session.commit()
    return Scene(
        company=world.company.id, public=public.id, private=private.id, draft=draft.id, link=link.token,
        invitation=invitation, pending=pending.id, awaiting=awaiting.id, proposed=proposed.id, bob=world.bob.id,
        dev=world.dev.id, ethan=world.employee.id, request=request.id, card=card.id, token=token.id,
        endpoint=endpoint.id, delivery=delivery.id,
    )  # fmt: skip


PROBLEM = {
    "title": "Tune our Kafka consumers",
    "description": "Consumer lag grows every evening and we do not know why.",
    "skills": ["kafka"],
    "bounty": {"amount": 50_000, "currency": "usd"},
}
BODIES = {
    "POST /me/donations": {"to_user_id": "{dev}", "amount": 500, "currency": "usd"},
    "POST /problems/{public}/disputes": {"reason": "The expert never showed up to the first meeting."},
    "POST /users": {"email": "new.member@elsewhere.example", "password": PASSWORD, "name": "New Member"},
    "POST /tokens": {"email": "otto@example.com", "password": PASSWORD},
    "POST /companies": {"name": "Beta Labs"},
    "POST /companies/{company}/members": {"email": "new.hire@elsewhere.example", "role": "employee"},
    "POST /problems": {**PROBLEM, "company_id": "{company}"},
    "PUT /problems/{draft}": PROBLEM,
    "POST /problems/{public}/referrals": {"to_email": "friend@elsewhere.example"},
    "POST /problems/{private}/referrals": {"to_email": "friend@elsewhere.example"},
    "POST /problems/{public}/introductions": {
        "candidate_email": "expert@elsewhere.example",
        "message": "She ran the same migration last year.",
    },
    "POST /introductions/{awaiting}/consent": {"accept": True},
    "POST /connections": {"user_id": "{dev}", "note": "We met at a meetup"},
    "POST /connections/invitations": {"email": "newcomer@elsewhere.example", "note": "We met at a meetup"},
    "POST /me/cards": {"name": "New Contact"},
    "PUT /me/cards/{card}": {"name": "Renamed"},
    "POST /companies/{company}/webhooks": {"url": "https://crm.acme.example.com/in", "event_types": ["problem.funded"]},
    "PATCH /companies/{company}/webhooks/{endpoint}": {"description": "Our CRM"},
    "PATCH /me": {"headline": "Replication, mostly"},
    "POST /me/password": {"current_password": PASSWORD, "new_password": "an entirely new passphrase 42"},
    "POST /me/email": {"email": "moved@elsewhere.example", "password": PASSWORD},
    "PUT /me/notification-settings": {"preferences": {"chain_grew": "digest"}, "digest_hour": 9},
}

ACTORS = ("anonymous", "outsider", "member", "employee", "admin")
WHO = {"anonymous": None, "outsider": "outsider", "member": "ann", "employee": "employee", "admin": "admin"}

# fmt: off
#                                                  anonymous outsider member employee admin
MATRIX = {
    "POST /users":                                   (201,      201,     201,   201,    201),
    "POST /tokens":                                  (201,      201,     201,   201,    201),
    "GET /me":                                       (401,      200,     200,   200,    200),
    "GET /me/tokens":                                (401,      200,     200,   200,    200),
    "POST /me/email-verification":                   (401,      409,     409,   409,    409),
    "DELETE /me/tokens/{token}":                     (401,      404,     204,   404,    404),
    "POST /companies":                               (401,      201,     201,   201,    201),
    "POST /companies/{company}/members":             (401,      404,     404,   403,    201),
    "POST /invitations/{invitation}/accept":         (401,      200,     403,   403,    403),
    "DELETE /companies/{company}/invitations/{pending}": (401,   404,     404,   403,    204),
    "DELETE /companies/{company}/members/{ethan}":   (401,      404,     404,   403,    204),
    "POST /problems":                                (401,      404,     404,   201,    201),
    "GET /problems":                                 (200,      200,     200,   200,    200),
    "GET /problems/{public}":                        (200,      200,     200,   200,    200),
    "GET /problems/{private}":                       (404,      404,     200,   200,    200),
    "GET /problems/{draft}":                         (404,      404,     404,   200,    200),
    "PUT /problems/{draft}":                         (401,      404,     404,   200,    200),
    "POST /problems/{draft}/publish":                (401,      404,     404,   200,    200),
    "POST /problems/{public}/cancel":                (401,      404,     404,   403,    200),
    "POST /problems/{public}/pick":                  (401,      201,     409,   409,    409),
    "POST /problems/{private}/pick":                 (401,      404,     409,   409,    409),
    "POST /problems/{public}/referrals":             (401,      403,     201,   201,    201),
    "POST /problems/{private}/referrals":            (401,      404,     201,   201,    201),
    "POST /referrals/{link}/claim":                  (401,      200,     409,   409,    409),
    "GET /problems/{public}/tree":                   (401,      404,     200,   200,    200),
    "GET /problems/{private}/tree":                  (401,      404,     200,   200,    200),
    "GET /members/{dev}/record":                     (401,      200,     200,   200,    200),
    "POST /problems/{public}/introductions":         (401,      403,     201,   201,    201),
    "GET /problems/{public}/introductions":          (401,      404,     404,   200,    200),
    "POST /introductions/{awaiting}/consent":        (401,      404,     403,   403,    403),
    "POST /introductions/{proposed}/accept":         (401,      404,     403,   403,    200),
    "POST /introductions/{proposed}/decline":        (401,      404,     404,   403,    200),
    "POST /introductions/{proposed}/withdraw":       (401,      404,     200,   403,    403),
    "GET /me/notifications":                         (401,      200,     200,   200,    200),
    "POST /me/notifications/read":                   (401,      200,     200,   200,    200),
    "GET /me/connections":                           (401,      200,     200,   200,    200),
    "GET /me/connections/requests":                  (401,      200,     200,   200,    200),
    "POST /connections":                             (401,      201,     201,   201,    201),
    "POST /connections/invitations":                 (401,      201,     201,   201,    201),
    "POST /connections/requests/{request}/confirm":  (401,      404,     403,   200,    404),
    "POST /connections/requests/{request}/decline":  (401,      404,     403,   200,    404),
    "POST /connections/requests/{request}/cancel":   (401,      404,     200,   403,    404),
    "DELETE /connections/{bob}":                     (401,      404,     204,   404,    404),
    "GET /me/network":                               (401,      200,     200,   200,    200),
    "GET /me/cards":                                 (401,      200,     200,   200,    200),
    "POST /me/cards":                                (401,      201,     201,   201,    201),
    "GET /me/cards/{card}":                          (401,      404,     200,   404,    404),
    "PUT /me/cards/{card}":                          (401,      404,     200,   404,    404),
    "DELETE /me/cards/{card}":                       (401,      404,     204,   404,    404),
    "GET /problems/{public}/reach":                  (401,      200,     200,   200,    200),
    "GET /problems/{private}/reach":                 (401,      404,     200,   200,    200),
    "GET /me/balance":                               (401,      200,     200,   200,    200),
    "POST /me/donations":                            (401,      422,     422,   422,    422),
    "POST /problems/{public}/disputes":              (401,      404,     404,   403,    409),
    "POST /disputes/{missing}/uphold":               (401,      403,     403,   403,    403),
    "POST /disputes/{missing}/reject":               (401,      403,     403,   403,    403),
    "POST /problems/{public}/checkout":              (401,      404,     404,   403,    409),
    "POST /me/payout-account":                       (401,      200,     200,   200,    200),
    "GET /me/payouts":                               (401,      200,     200,   200,    200),
    "GET /me/referrals":                             (401,      200,     200,   200,    200),
    "GET /me/introductions":                         (401,      200,     200,   200,    200),
    "GET /companies/{company}/webhooks":             (401,      404,     404,   403,    200),
    "POST /companies/{company}/webhooks":            (401,      404,     404,   403,    201),
    "PATCH /companies/{company}/webhooks/{endpoint}": (401,     404,     404,   403,    200),
    "DELETE /companies/{company}/webhooks/{endpoint}": (401,    404,     404,   403,    204),
    "POST /companies/{company}/webhooks/{endpoint}/secret": (401, 404,   404,   403,    200),
    "POST /companies/{company}/webhooks/{endpoint}/ping": (401,  404,     404,   403,    202),
    "GET /companies/{company}/webhooks/{endpoint}/deliveries": (401, 404, 404,  403,    200),
    "POST /companies/{company}/webhooks/{endpoint}/deliveries/{delivery}/redeliver": (401, 404, 404, 403, 202),
    "PATCH /me":                                     (401,      200,     200,   200,    200),
    "POST /me/password":                             (401,      204,     204,   204,    204),
    "POST /me/email":                                (401,      200,     200,   200,    200),
    "PUT /me/notification-settings":                 (401,      200,     200,   200,    200),
    "POST /fraud-flags/{missing}/clear":             (401,      403,     403,   403,    403),
    "POST /fraud-flags/{missing}/uphold":            (401,      403,     403,   403,    403),
    "POST /problems/{public}/forward-to/{bob}":      (401,      404,     201,   404,    404),
    "POST /me/card-imports":                         (401,      422,     422,   422,    422),
    "POST /me/card-imports/{missing}/confirm":       (401,      404,     404,   404,    404),
    "POST /me/card-imports/{missing}/cancel":        (401,      404,     404,   404,    404),
    "POST /payouts/{missing}/retry":                 (401,      403,     403,   403,    403),
    "GET /openapi.json":                             (200,      200,     200,   200,    200),
}
# fmt: on

CASES = [
    pytest.param(request, actor, status, id=f"{request} as {actor}")
    for request, statuses in MATRIX.items()
    for actor, status in zip(ACTORS, statuses, strict=True)
]


def fill(template, scene: Scene):
    """Put the scene's ids and tokens into a path or a body (``"{company}"`` becomes the id)."""
    if isinstance(template, dict):
        return {key: fill(value, scene) for key, value in template.items()}
    if isinstance(template, str) and re.fullmatch(r"\{\w+\}", template):
        return getattr(scene, template[1:-1])
    if isinstance(template, str):
        return template.format(**vars(scene))
    return template


def assert_error_shape(response) -> None:
    body = response.get_json()
    assert response.is_json and set(body) == {"error"}, response.data
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


@pytest.mark.parametrize(("request_line", "actor", "expected"), CASES)
def test_authorization_matrix(request_line, actor, expected, scene, world, api):
    caller = api(getattr(world, WHO[actor]) if WHO[actor] else None)
    method, path = request_line.split(" ", 1)
    url = fill(path, scene)

    if method == "GET":
        response = caller.get(url)
    elif method == "PUT":
        response = caller.put(url, fill(BODIES[request_line], scene))
    elif method == "PATCH":
        response = caller.patch(url, fill(BODIES[request_line], scene))
    elif method == "DELETE":
        response = caller.delete(url)
    else:
        response = caller.post(url, fill(BODIES.get(request_line, {}), scene))

    assert response.status_code == expected, response.get_json()
    if expected >= 400:
        assert_error_shape(response)
    elif expected != 204:
        assert isinstance(response.get_json(), dict | list)


def test_the_matrix_covers_every_api_route(app):
    """A new endpoint must get a row in the matrix (and so a decision about who may call it)."""

    def shape(method, path):
        return method, re.sub(r"<[^>]+>|\{\w+\}", "{}", path)

    routes = {
        shape(method, rule.rule.removeprefix("/api/v1"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == {shape(*request.split(" ", 1)) for request in MATRIX}


@pytest.mark.parametrize(
    ("actor", "sees_private"),
    [("anonymous", False), ("outsider", False), ("member", True), ("employee", True), ("admin", True)],
)
def test_the_board_lists_a_private_problem_only_to_its_company_and_its_chain(actor, sees_private, scene, world, api):
    caller = api(getattr(world, WHO[actor]) if WHO[actor] else None)
    listed = {item["id"] for item in caller.get("/problems").json["items"]}
    assert scene.public in listed
    assert (scene.private in listed) is sees_private


# Bodies of the wrong shape ------------------------------------------------------------------------

NEW_PROBLEM = {**PROBLEM, "company_id": "{company}"}
RAW_JSON = "{not json"
FORM = "to_email=friend%40elsewhere.example"


@pytest.mark.parametrize(
    ("who", "url", "body", "status"),
    [
        pytest.param("owner", "/problems", RAW_JSON, 400, id="problem-malformed-json"),
        pytest.param("owner", "/problems", [NEW_PROBLEM], 422, id="problem-json-array"),
        pytest.param("owner", "/problems", "a problem", 422, id="problem-json-string"),
        pytest.param("owner", "/problems", {"title": "A title and nothing else"}, 422, id="problem-missing-fields"),
        pytest.param(
            "owner", "/problems", {**NEW_PROBLEM, "bounty": {"amount": "50000", "currency": "usd"}}, 422,
            id="problem-string-amount",
        ),
        pytest.param(
            "owner", "/problems", {**NEW_PROBLEM, "bounty": {"amount": 500.5, "currency": "usd"}}, 422,
            id="problem-fractional-amount",
        ),
        pytest.param("owner", "/problems", {**NEW_PROBLEM, "skills": "kafka"}, 422, id="problem-skills-not-a-list"),
        pytest.param("owner", "/problems", {**NEW_PROBLEM, "bonus": 5}, 422, id="problem-unknown-field"),
        pytest.param("owner", "/problems", {**NEW_PROBLEM, "expires_at": "next week"}, 422, id="problem-bad-date"),
        pytest.param("owner", "/problems", {**NEW_PROBLEM, "company_id": 2**64}, 422, id="problem-company-id-too-big"),
        pytest.param("ann", "/problems/{public}/referrals", FORM, 422, id="forward-form-encoded"),
        pytest.param("ann", "/problems/{public}/referrals", {"to_user_id": "7"}, 422, id="forward-string-id"),
        pytest.param("ann", "/problems/{public}/referrals", {"to_user_id": 2**64}, 422, id="forward-id-too-big"),
        pytest.param(
            "ann", "/problems/{public}/referrals", {"to_email": "a@elsewhere.example", "cc": "b@elsewhere.example"},
            422, id="forward-unknown-field",
        ),
        pytest.param(
            "ann", "/problems/{public}/introductions", {"candidate_email": "dev@example.com", "message": 42}, 422,
            id="introduce-number-message",
        ),
        pytest.param(
            "ann", "/problems/{public}/introductions", {"candidate_user_id": 2**64, "message": "x" * 20}, 422,
            id="introduce-id-too-big",
        ),
        pytest.param("dev", "/introductions/{awaiting}/consent", {"accept": "perhaps"}, 422, id="consent-not-a-bool"),
        pytest.param("dev", "/introductions/{awaiting}/consent", {}, 422, id="consent-missing-answer"),
        pytest.param(
            None, "/users", {"email": "x@elsewhere.example", "password": 12345678, "name": "X"}, 422,
            id="signup-number-password",
        ),
        pytest.param(
            None, "/tokens", {"email": ["otto@example.com"], "password": PASSWORD}, 422, id="token-list-email"
        ),
    ],
)  # fmt: skip
def test_bodies_of_the_wrong_shape_get_a_json_4xx_never_a_500(who, url, body, status, scene, world, api, client):
    """Malformed JSON, JSON of the wrong shape or types, unknown fields, form posts and ids too big for
    the database: all answered with a JSON error (the app re-raises anything unexpected in tests)."""
    token = api(getattr(world, who)).token if who else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is RAW_JSON:
        data, kind = body, "application/json"
    elif body is FORM:
        data, kind = body, "application/x-www-form-urlencoded"
    else:
        data, kind = json.dumps(fill(body, scene)), "application/json"

    response = client.post("/api/v1" + fill(url, scene), data=data, content_type=kind, headers=headers)

    assert response.status_code == status, response.get_json()
    assert_error_shape(response)


@pytest.mark.parametrize(
    "request_line", ["GET /problems/{}", "POST /introductions/{}/withdraw", "POST /companies/{}/members"]
)
def test_an_id_too_big_for_the_database_in_the_url_is_a_4xx(request_line, world, api):
    ann = api(world.ann)
    method, path = request_line.split(" ", 1)
    url = path.format(2**64)

    response = ann.get(url) if method == "GET" else ann.post(url, {"email": "a@elsewhere.example", "role": "employee"})

    assert 400 <= response.status_code < 500
    assert_error_shape(response)


# Tokens -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Bearer mp_not-a-real-token", "Bearer ", "Basic b3R0bzpzZWNyZXQ=", "mp_token-without-a-scheme"],
    ids=["unknown-token", "empty-token", "basic-auth", "no-scheme"],
)
@pytest.mark.parametrize("url", ["/api/v1/me", "/api/v1/problems"], ids=["token-required", "public-endpoint"])
def test_a_bad_bearer_token_is_401_even_where_no_token_is_needed(header, url, client, world):
    """A wrong token is refused, never quietly treated as anonymous."""
    response = client.get(url, headers={"Authorization": header})
    assert response.status_code == 401
    assert_error_shape(response)
    assert response.get_json()["error"]["code"] == "bad_token"


def test_a_revoked_token_is_401(session, world, api):
    ann = api(world.ann)
    assert ann.get("/me").status_code == 200
    token = accounts.api_tokens_of(session, world.ann)[0]
    accounts.revoke_api_token(session, world.ann, token.id)
    session.commit()

    response = ann.get("/me")

    assert response.status_code == 401
    assert_error_shape(response)
    assert response.get_json()["error"]["code"] == "bad_token"
