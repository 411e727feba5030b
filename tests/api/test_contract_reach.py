"""Every answer the OpenAPI document declares is one a request can get: for each operation and
each status it declares, some request in the tests gets exactly that status from it. A declared
answer nothing can reach would be a lie in the document, so its declaration goes instead.

Three sources, each a test that sends the requests and asserts the status:

- the authorization matrix (``test_authorization.py``): each route as nobody, an outsider, a
  chain member, an employee and an admin (the 2xx of every route, most 401, 403, 404 and 409);
- ``test_refusals_every_route_gives``, here: what follows from a route's shape, sent to every
  route it applies to over one scene (refusals change nothing, so one scene serves them all);
- ``REACHED_BY_STATE``, here: the answers that need a state of their own, each with its scene.

``test_every_declared_answer_is_reached`` then asserts the three cover the document.
"""

# ruff: noqa: F811  (the scene fixture, imported from the authorization matrix, is a parameter below)
import importlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from marketplace.accounts.login_throttle import LoginThrottle
from marketplace.fraud.models import FraudFlag
from marketplace.ledger.models import Share
from marketplace.network.service import JOIN_INVITATIONS_PER_DAY
from tests import builders as build
from tests.api.openapi import declared_answers, document_of, operations
from tests.api.test_authorization import (  # noqa: F401  (the module's app, its emptied tables and scene)
    MATRIX,
    PROBLEM,
    Scene,
    app,
    assert_error_shape,
    clean_slate,
    emulator,
    scene,
)
from tests.conftest import PASSWORD


def shape(path: str) -> str:
    """A path with its parameters blanked, so the matrix's ``{public}`` matches ``{problem_id}``."""
    return re.sub(r"\{\w+\}", "{}", path)


def reached_by_the_matrix() -> set[tuple[str, str, int]]:
    """(method, path shape, status) the authorization matrix asserts for some caller."""
    answers = set()
    for request_line, statuses in MATRIX.items():
        method, path = request_line.split(" ", 1)
        answers |= {(method, shape("/api/v1" + path), status) for status in statuses}
    return answers


# Answers that need a state of their own ---------------------------------------------------------


@dataclass
class Stage:
    """The scene and ways to act in it: ``as_(user)`` is an API client with a fresh token."""

    scene: Scene
    world: object
    session: object
    client: object
    as_: Callable


def unverified(stage: Stage, user):
    """``user`` whose address is no longer confirmed (as after changing it), with a token."""
    user.email_verified_at = None
    stage.session.commit()
    return stage.as_(user)


def platform_admin(stage: Stage):
    stage.world.cleo.is_platform_admin = True
    stage.session.commit()
    return stage.as_(stage.world.cleo)


def accepted_in_guarantee(stage: Stage) -> None:
    """The company's admin accepts Ann's proposal of herself: the public problem is settled and in
    its guarantee period, where a dispute can be opened."""
    assert stage.as_(stage.world.admin).post(f"/introductions/{stage.scene.proposed}/accept").status_code == 200


def open_dispute(stage: Stage):
    accepted_in_guarantee(stage)
    return stage.as_(stage.world.admin).post(
        f"/problems/{stage.scene.public}/disputes", {"reason": "The expert never showed up to the first meeting."}
    )


def opened_dispute(stage: Stage) -> int:
    return open_dispute(stage).get_json()["id"]


def settled_at_once(stage: Stage, **overrides):
    """A problem with no guarantee period, accepted along Ann, Bob and Cleo for Dev: each link's
    share is available at once."""
    problem = build.problem(stage.session, stage.world.owner, stage.scene.company, "open", **overrides)
    build.accepted(
        stage.session, stage.world.owner, problem, [stage.world.ann, stage.world.bob, stage.world.cleo], stage.world.dev
    )
    return problem


def raised_flag(stage: Stage) -> int:
    """Accounts made together and forwards passed on at once: the settlement raises a fraud flag."""
    settled_at_once(stage, guarantee_days=7)
    flag_id = stage.session.scalars(select(FraudFlag.id)).one()
    stage.session.rollback()  # the read's transaction ends before the app writes
    return flag_id


def refused_payout(stage: Stage) -> int:
    """Cleo's available share, whose transfer Stripe refused."""
    settled_at_once(stage, guarantee_days=0)
    share = stage.session.scalars(select(Share).where(Share.member_id == stage.world.cleo.id)).one()
    share.payout_refusal = "Injected failure"
    stage.session.commit()
    return share.id


def gift(stage: Stage, **changes):
    settled_at_once(stage, guarantee_days=0)
    body = {"to_user_id": stage.scene.dev, "amount": 500, "currency": "usd", **changes}
    return stage.as_(stage.world.ann).post("/me/donations", body)


def upload(stage: Stage):
    ann = stage.as_(stage.world.ann)
    card = b"BEGIN:VCARD\nVERSION:4.0\nFN:Kim Lee\nEMAIL:kim@home.example\nEND:VCARD\n"
    return stage.client.post(
        "/api/v1/me/card-imports",
        data={"file": (io.BytesIO(card), "contacts.vcf")},
        headers={"Authorization": f"Bearer {ann.token}"},
    )


def uploaded_then(stage: Stage, action: str):
    imported = upload(stage).get_json()["id"]
    return stage.as_(stage.world.ann).post(f"/me/card-imports/{imported}/{action}")


def twice(first, second=None):
    """The second of two requests (``second``, or ``first`` again)."""
    first()
    return (second or first)()


def invited_eleven(stage: Stage):
    ann = stage.as_(stage.world.ann)
    for n in range(JOIN_INVITATIONS_PER_DAY):
        ann.post("/connections/invitations", {"email": f"friend{n}@elsewhere.example", "note": "We met"})
    return ann.post("/connections/invitations", {"email": "one.too.many@elsewhere.example", "note": "We met"})


TO_BOB = {"email": "bob@example.com", "password": PASSWORD}

# (operation, status): how to reach it on the stage.
REACHED_BY_STATE: dict[tuple[str, int], Callable] = {
    ("POST /api/v1/tokens", 401): lambda s: s.as_().post("/tokens", {"email": "ann@example.com", "password": "no"}),
    ("POST /api/v1/tokens", 429): lambda s: [
        s.as_().post("/tokens", {"email": "ann@example.com", "password": "wrong"})
        for _ in range(LoginThrottle.free_failures + 1)
    ][-1],
    ("POST /api/v1/users", 409): lambda s: s.as_().post(
        "/users", {"email": "ann@example.com", "password": PASSWORD, "name": "Ann Again"}
    ),
    ("POST /api/v1/me/email", 409): lambda s: s.as_(s.world.ann).post("/me/email", TO_BOB),
    ("POST /api/v1/me/email-verification", 202): lambda s: unverified(s, s.world.ann).post("/me/email-verification"),
    ("POST /api/v1/me/email-verification", 429): lambda s: twice(
        lambda: unverified(s, s.world.ann).post("/me/email-verification")
    ),
    ("DELETE /api/v1/companies/{company_id}/invitations/{invitation_id}", 409): lambda s: twice(
        lambda: s.as_(s.world.owner).delete(f"/companies/{s.scene.company}/invitations/{s.scene.pending}")
    ),
    ("DELETE /api/v1/companies/{company_id}/members/{user_id}", 409): lambda s: twice(
        lambda: s.as_(s.world.admin).delete(f"/companies/{s.scene.company}/members/{s.world.admin.id}"),
        lambda: s.as_(s.world.owner).delete(f"/companies/{s.scene.company}/members/{s.world.owner.id}"),
    ),
    ("POST /api/v1/invitations/{token}/accept", 403): lambda s: unverified(s, s.world.outsider).post(
        f"/invitations/{s.scene.invitation}/accept"
    ),
    ("PUT /api/v1/problems/{problem_id}", 409): lambda s: s.as_(s.world.owner).put(
        f"/problems/{s.scene.public}", PROBLEM
    ),
    ("POST /api/v1/problems/{problem_id}/checkout", 201): lambda s: s.as_(s.world.owner).post(
        f"/problems/{build.problem(s.session, s.world.owner, s.scene.company, 'published').id}/checkout"
    ),
    ("POST /api/v1/referrals/{token}/claim", 403): lambda s: unverified(s, s.world.outsider).post(
        f"/referrals/{s.scene.link}/claim"
    ),
    ("POST /api/v1/introductions/{introduction_id}/consent", 200): lambda s: s.as_(s.world.dev).post(
        f"/introductions/{s.scene.awaiting}/consent", {"accept": True}
    ),
    ("POST /api/v1/introductions/{introduction_id}/consent", 403): lambda s: unverified(s, s.world.dev).post(
        f"/introductions/{s.scene.awaiting}/consent", {"accept": True}
    ),
    ("POST /api/v1/problems/{problem_id}/disputes", 201): lambda s: open_dispute(s),
    ("POST /api/v1/disputes/{dispute_id}/uphold", 200): lambda s: platform_admin(s).post(
        f"/disputes/{opened_dispute(s)}/uphold"
    ),
    ("POST /api/v1/disputes/{dispute_id}/reject", 200): lambda s: platform_admin(s).post(
        f"/disputes/{opened_dispute(s)}/reject"
    ),
    ("POST /api/v1/fraud-flags/{flag_id}/clear", 200): lambda s: platform_admin(s).post(
        f"/fraud-flags/{raised_flag(s)}/clear"
    ),
    ("POST /api/v1/fraud-flags/{flag_id}/uphold", 200): lambda s: platform_admin(s).post(
        f"/fraud-flags/{raised_flag(s)}/uphold"
    ),
    ("POST /api/v1/payouts/{share_id}/retry", 200): lambda s: platform_admin(s).post(
        f"/payouts/{refused_payout(s)}/retry"
    ),
    ("POST /api/v1/me/donations", 201): lambda s: gift(s),
    ("POST /api/v1/me/donations", 200): lambda s: twice(lambda: gift(s, idempotency_key="thanks-1")),
    ("POST /api/v1/me/donations", 404): lambda s: s.as_(s.world.ann).post(
        "/me/donations", {"to_user_id": s.scene.missing, "amount": 500, "currency": "usd"}
    ),
    ("POST /api/v1/connections", 404): lambda s: s.as_(s.world.ann).post(
        "/connections", {"user_id": s.scene.missing, "note": "We met"}
    ),
    ("POST /api/v1/connections/invitations", 403): lambda s: unverified(s, s.world.ann).post(
        "/connections/invitations", {"email": "friend@elsewhere.example", "note": "We met"}
    ),
    ("POST /api/v1/connections/invitations", 429): lambda s: invited_eleven(s),
    ("POST /api/v1/me/payout-account", 403): lambda s: unverified(s, s.world.ann).post("/me/payout-account"),
    ("PUT /api/v1/me/cards/{card_id}", 409): lambda s: s.as_(s.world.ann).put(
        f"/me/cards/{s.as_(s.world.ann).post('/me/cards', {'name': 'Kim Lee'}).get_json()['id']}",
        {"name": "Kim Lee", "email": "nadia@elsewhere.example"},
    ),
    ("POST /api/v1/me/card-imports", 201): lambda s: upload(s),
    ("POST /api/v1/me/card-imports/{import_id}/confirm", 200): lambda s: uploaded_then(s, "confirm"),
    ("POST /api/v1/me/card-imports/{import_id}/cancel", 200): lambda s: uploaded_then(s, "cancel"),
}


# Answers the rate limiter gives: it is off in this module's app, and on in the app of these tests.
ELSEWHERE = {
    ("POST /api/v1/users", 429): "tests/accounts/test_accounts.py::test_fourth_api_signup_within_a_minute_is_429_json",
    ("POST /api/v1/me/password", 429): (
        "tests/accounts/test_accounts.py::test_a_fourth_password_or_address_change_within_a_minute_is_429_json"
    ),
    ("POST /api/v1/me/email", 429): (
        "tests/accounts/test_accounts.py::test_a_fourth_password_or_address_change_within_a_minute_is_429_json"
    ),
}


@pytest.mark.parametrize(
    ("operation", "status"), [pytest.param(*answer, id=f"{answer[0]} {answer[1]}") for answer in REACHED_BY_STATE]
)
def test_an_answer_that_needs_its_own_state(operation, status, scene, world, session, client, api):
    stage = Stage(scene=scene, world=world, session=session, client=client, as_=api)

    response = REACHED_BY_STATE[operation, status](stage)

    assert response.status_code == status, response.get_json()
    if status >= 400:
        assert_error_shape(response)


# Refusals every route gives ---------------------------------------------------------------------

NO_SUCH_TOKEN = "mp_no-such-token"


def nothing_has(path: str, path_parameters: list[dict], scene) -> str:
    """``path`` with ids and tokens nothing has."""
    for parameter in path_parameters:
        missing = scene.missing if parameter["schema"]["type"] == "integer" else NO_SUCH_TOKEN
        path = path.replace("{" + parameter["name"] + "}", str(missing))
    return path


def example_body(operation) -> dict | None:
    """The operation's JSON request body example (``test_contract.py``: each body has one)."""
    content = operation.get("requestBody", {}).get("content", {})
    return content["application/json"]["example"] if "application/json" in content else None


def invalid_query(operation) -> str | None:
    """A query string the operation refuses: an integer argument that is not a number."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter["schema"].get("type") == "integer":
            return f"{parameter['name']}=not-a-number"
    return None


def refusals_of(path: str, path_parameters: list[dict], operation) -> set[int]:
    """The refusals ``test_refusals_every_route_gives`` gets from an operation, by its shape."""
    declared = {int(status) for status in operation["responses"]}
    statuses = {400, 413}
    if 401 in declared and path != "/api/v1/tokens":  # which answers 401 to a wrong password
        statuses.add(401)
    if path_parameters:
        statuses.add(404)
    if operation.get("requestBody") or invalid_query(operation):
        statuses.add(422)
    if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])):
        statuses.add(409)
    return statuses


def test_refusals_every_route_gives(app, scene, world, api, client, session, monkeypatch):
    """What each route's shape implies, sent as Ann to every route it applies to: a body nested
    too deep (400) or too large (413), a token that is no token (401), a body or query of the
    wrong shape (422), and an ``Idempotency-Key`` reused for another request (409); and ids
    nothing has (404), as a platform admin, whom the admins' routes let look. Each answer is the
    declared status in the error shape."""
    monkeypatch.setitem(app.config, "MAX_JSON_LENGTH", 1024)  # a small limit, so a small body passes it
    world.cleo.is_platform_admin = True
    session.commit()
    document = document_of(app)
    ann = {"Authorization": f"Bearer {api(world.ann).token}"}
    admin = {"Authorization": f"Bearer {api(world.cleo).token}"}
    key = "reach-every-route"
    first_use = client.post(f"/api/v1/problems/{scene.missing + 1}/publish", headers={**ann, "Idempotency-Key": key})
    assert first_use.status_code == 404  # a kept refusal: the key now names that request
    too_deep = "[" * (app.config["MAX_JSON_DEPTH"] + 1) + "]" * (app.config["MAX_JSON_DEPTH"] + 1)
    unreached = []

    for method, path, path_parameters, operation in operations(document):
        url = nothing_has(path, path_parameters, scene)
        requests = {
            400: dict(headers=ann, data=too_deep, content_type="application/json"),
            413: dict(headers=ann, data=json.dumps({"note": "x" * 2048}), content_type="application/json"),
            401: dict(headers={"Authorization": f"Bearer {NO_SUCH_TOKEN}"}),
            404: dict(headers=admin, json=example_body(operation)),  # only the ids are wrong
            422: dict(headers=ann, json={"no_such_field": 1})
            if operation.get("requestBody")
            else dict(headers=ann, query_string=invalid_query(operation)),
            409: dict(headers={**ann, "Idempotency-Key": key}),
        }
        for status in refusals_of(path, path_parameters, operation):
            response = client.open(url, method=method, **requests[status])
            if response.status_code != status:
                unreached.append(f"{method.upper()} {url}: {status} declared, {response.status_code} answered")
                continue
            assert_error_shape(response)

    assert not unreached, "\n".join(unreached)


# The whole document ------------------------------------------------------------------------------


def test_the_tests_reaching_answers_elsewhere_exist():
    for test in set(ELSEWHERE.values()):
        path, name = test.split("::")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert callable(getattr(module, name, None)), test


def test_every_declared_answer_is_reached(app):
    """The matrix, the refusals by shape, the answers needing their own state and the rate
    limiter's tests cover every (operation, status) the document declares."""
    document = document_of(app)
    declared = declared_answers(document)
    by_matrix = reached_by_the_matrix()
    by_shape = {
        (method.upper(), path, status)
        for method, path, path_parameters, operation in operations(document)
        for status in refusals_of(path, path_parameters, operation)
    }
    reached = {
        (method, path, status)
        for method, path, status in declared
        if (method, shape(path), status) in by_matrix
        or (method, path, status) in by_shape
        or (f"{method} {path}", status) in REACHED_BY_STATE | ELSEWHERE
    }
    unreached = sorted(declared - reached, key=lambda answer: (answer[2], answer[1], answer[0]))
    print(f"{len(reached)} of {len(declared)} declared answers reached")
    assert not unreached, "declared answers no test reaches:\n" + "\n".join(
        f"{status} {method} {path}" for method, path, status in unreached
    )
