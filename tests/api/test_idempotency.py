"""Safe retries: an action sent again with the same ``Idempotency-Key`` answers what it answered
the first time (``Idempotent-Replayed: true``) and acts once; the same key on another request is a
409 ``idempotency_key_reused``; a key whose request is still running is a 409
``idempotency_key_in_use``. Invalid bodies are not kept, so the client can fix them and retry with
the same key. Runs over every authenticated POST of the API, in the scene of the authorization
matrix."""

# ruff: noqa: F811  (the scene fixture, imported from the authorization matrix, is a parameter below)
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.db import db, utcnow
from marketplace.idempotency import service as idempotency
from marketplace.idempotency.models import IdempotencyKey
from marketplace.jobs import service as jobs
from marketplace.referrals.models import Referral
from tests.api.test_authorization import (  # noqa: F401  (the module's app, its emptied tables and scene)
    ACTORS,
    BODIES,
    MATRIX,
    WHO,
    app,
    clean_slate,
    emulator,
    fill,
    scene,
)

# Not keyed: no token owns them (sign-up, a token for a password), or they need the current password.
NOT_KEYED = {"POST /users", "POST /tokens", "POST /me/password", "POST /me/email"}
KEPT = (200, 201, 202, 204, 403, 404, 409)


def keyed_posts():
    """Each keyed POST with the caller whose answer shows the most: a success if anyone gets one,
    else a business refusal, else (every caller's body refused) the first member."""
    for line, statuses in MATRIX.items():
        if not line.startswith("POST ") or line in NOT_KEYED:
            continue
        callers = [(actor, status) for actor, status in zip(ACTORS, statuses, strict=True) if actor != "anonymous"]
        actor, status = min(callers, key=lambda c: (c[1] >= 300, c[1] not in KEPT))
        yield pytest.param(line, actor, status, id=f"{line} as {actor}")


def post(client, token, url, body, key):
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    return client.post("/api/v1" + url, json=body, headers=headers)


@pytest.mark.parametrize(("line", "actor", "status"), list(keyed_posts()))
def test_the_same_key_replays_the_answer_and_another_request_with_it_is_refused(
    line, actor, status, scene, world, api, client
):
    token = api(getattr(world, WHO[actor])).token
    url = fill(line.split(" ", 1)[1], scene)
    body = fill(BODIES.get(line, {}), scene)

    first = post(client, token, url, body, "retry-1")
    again = post(client, token, url, body, "retry-1")

    assert first.status_code == status
    if status in KEPT:
        assert again.status_code == first.status_code
        assert again.get_json() == first.get_json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        reused = post(client, token, url, {**body, "changed": True}, "retry-1")
        assert reused.status_code == 409
        assert reused.get_json()["error"]["code"] == "idempotency_key_reused"
    else:  # an invalid body is not kept: the same key may carry the corrected request
        assert again.status_code == status
        assert "Idempotent-Replayed" not in again.headers
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_a_replayed_forward_forwards_once(scene, world, api, client):
    ann = api(world.ann).token
    body = {"to_email": "friend@elsewhere.example"}
    before = db.session.scalar(select(func.count()).select_from(Referral))
    db.session.commit()  # the test's own read must not hold SQLite's write lock

    answers = [post(client, ann, f"/problems/{scene.public}/referrals", body, "forward-1") for _ in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.get_json()["id"] for a in answers}) == 1
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Referral)) == before + 1


def test_keys_are_per_member(scene, world, api, client):
    """Bob's key is not Ann's: the same string from two members is two requests."""
    body = {"name": "Beta Labs"}
    ann = post(client, api(world.ann).token, "/companies", body, "shared-key")
    bob = post(client, api(world.bob).token, "/companies", body, "shared-key")
    assert ann.status_code == bob.status_code == 201
    assert ann.get_json()["id"] != bob.get_json()["id"]
    assert "Idempotent-Replayed" not in bob.headers


def test_a_key_still_in_progress_is_409_in_use(scene, world, api, client):
    token = api(world.ann).token
    body = {"name": "Beta Labs"}
    with client.application.test_request_context("/api/v1/companies", method="POST", json=body):
        from marketplace.api.idempotency import request_fingerprint

        fingerprint = request_fingerprint()
    idempotency.claim(db.session, world.ann.id, "busy", fingerprint)

    response = post(client, token, "/companies", body, "busy")

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_key_in_use"


def test_a_claim_whose_request_died_is_taken_over_after_its_lease(scene, world, api, client):
    """A crash between the claim and the commit keeps no answer and no effect: once the lease has
    passed, the retry acts (and is not a replay)."""
    token = api(world.ann).token
    body = {"name": "Beta Labs"}
    with client.application.test_request_context("/api/v1/companies", method="POST", json=body):
        from marketplace.api.idempotency import request_fingerprint

        fingerprint = request_fingerprint()
    idempotency.claim(db.session, world.ann.id, "died", fingerprint, now=utcnow() - idempotency.LEASE * 2)

    response = post(client, token, "/companies", body, "died")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert post(client, token, "/companies", body, "died").headers["Idempotent-Replayed"] == "true"


def test_an_invalid_body_can_be_corrected_and_sent_with_the_same_key(scene, world, api, client):
    token = api(world.ann).token
    refused = post(client, token, "/connections", {"note": "no one named"}, "fix-me")
    fixed = post(client, token, "/connections", {"user_id": scene.dev, "note": "We met at a meetup"}, "fix-me")
    assert refused.status_code == 422
    assert fixed.status_code == 201


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\there"])
def test_a_malformed_key_is_400(key, scene, world, api, client):
    response = post(client, api(world.ann).token, "/companies", {"name": "Beta Labs"}, key)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_idempotency_key"


def test_a_gift_refused_for_want_of_funds_keeps_no_key(scene, world, api, client):
    """A 422 from the ledger is a validation refusal: the member may retry with the same key once
    they have funds (the header is also the gift's ledger key)."""
    response = post(
        client,
        api(world.ann).token,
        "/me/donations",
        BODIES["POST /me/donations"] | {"to_user_id": scene.dev},
        "gift-1",
    )
    assert response.status_code == 422  # Ann has nothing available: the refusal is not kept
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    db.session.commit()


def test_keys_are_kept_a_day_then_pruned_by_the_periodic_job(scene, world, api, client):
    token = api(world.ann).token
    post(client, token, "/companies", {"name": "Beta Labs"}, "old")
    post(client, token, "/companies", {"name": "Gamma Labs"}, "new")
    db.session.execute(
        IdempotencyKey.__table__.update()
        .where(IdempotencyKey.key == "old")
        .values(created_at=utcnow() - idempotency.RETENTION - timedelta(minutes=1))
    )
    db.session.commit()

    outcomes = jobs.run_periodic(db.session)

    assert outcomes["prune idempotency keys"] == 1
    assert set(db.session.scalars(select(IdempotencyKey.key))) == {"new"}
    db.session.commit()
    again = post(client, token, "/companies", {"name": "Delta Labs"}, "old")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
