"""Outbound webhooks: deliveries signed as the Standard Webhooks specification says (checked here
by an independent implementation), retried on their schedule, never sent again after a success
(a worker killed mid-delivery included), signed by both secrets while a rotation's grace lasts,
only ever about the company's own problems, anonymous as the company sees chains, an endpoint
disabled after days of failures, and the delivery log with "send again"."""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from marketplace.accounts import service as accounts
from marketplace.audit.models import AuditEntry
from marketplace.db import utcnow
from marketplace.jobs.models import Job, JobStatus
from marketplace.ledger.settlement import refund_key
from marketplace.notifications.models import Notification
from marketplace.webhooks import service as webhooks
from marketplace.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from marketplace.workflows import disputes, funding
from tests import builders as build

ROOT = Path(__file__).resolve().parents[2]
ALL_EVENTS = list(webhooks.EVENT_TYPES)


def signatures_valid(secret: str, headers: dict[str, str], body: bytes) -> list[bool]:
    """For each signature in ``webhook-signature``: does it verify under ``secret``? Written from
    the specification with the standard library alone, not with the application's code."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    found = []
    for part in headers["webhook-signature"].split(" "):
        version, _, value = part.partition(",")
        found.append(version == "v1" and hmac.compare_digest(value, expected))
    return found


def register(api, user, company_id, url, events=None):
    """An endpoint made through the API; the answer carries its secret."""
    response = api(user).post(
        f"/companies/{company_id}/webhooks", json={"url": url, "event_types": events or ALL_EVENTS}
    )
    assert response.status_code == 201, response.json
    return response.json


def job_of(session, delivery_id) -> Job:
    query = (
        select(Job).where(Job.kind == webhooks.DELIVER_JOB).order_by(Job.id).execution_options(populate_existing=True)
    )
    jobs = [job for job in session.scalars(query) if job.payload["delivery_id"] == delivery_id]
    session.commit()
    return jobs[-1]


def test_a_funded_problem_is_delivered_signed_once(app, session, world, api, receiver, deliver, open_problem):
    """problem.funded reaches the endpoint with the three headers; the signature verifies with the
    secret shown at creation; the delivery is recorded a success and never sent again."""
    endpoint = register(api, world.owner, world.company.id, receiver.url(), ["problem.funded"])
    assert endpoint["secret"].startswith("whsec_") and len(base64.b64decode(endpoint["secret"][6:])) == 24
    problem = open_problem()

    assert deliver().performed == 1
    [request] = receiver.requests
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert signatures_valid(endpoint["secret"], request.headers, request.body) == [True]
    assert not signatures_valid(webhooks.signing.new_secret(), request.headers, request.body)[0]
    payload = json.loads(request.body)
    assert payload["type"] == "problem.funded"
    assert payload["data"]["problem"] == {
        "id": problem.id, "title": problem.title, "status": "open",
        "bounty": {"amount": 100_000, "currency": "usd"}, "expires_at": problem.expires_at.isoformat(),
    }  # fmt: skip

    assert deliver().performed == 0
    assert len(receiver.requests) == 1
    delivery = session.scalars(select(WebhookDelivery)).one()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.webhook_id == request.headers["webhook-id"]
    [attempt] = delivery.attempts
    assert (attempt.succeeded, attempt.response_status, attempt.response_body) == (True, 200, '{"received": true}')
    assert job_of(session, delivery.id).status == JobStatus.DONE
    assert api(world.owner).get(f"/companies/{world.company.id}/webhooks").json[0].get("secret") is None


def test_failures_are_retried_on_the_backoff_schedule_until_the_receiver_recovers(
    app, session, world, api, receiver, deliver, open_problem
):
    """A receiver down twice is retried after 30 s, then 2 min, with the same webhook-id; once it
    answers 200 nothing more is sent. Time passes by moving the job's ``run_after``."""
    register(api, world.owner, world.company.id, receiver.url(), ["problem.funded"])
    receiver.answers.extend([500, 503])
    open_problem()
    delivery_id = session.scalar(select(WebhookDelivery.id))
    waits = []
    for _ in range(2):
        before = utcnow()
        assert deliver().failed == 1
        job = job_of(session, delivery_id)
        assert job.status == JobStatus.PENDING
        waits.append(round((job.run_after - before).total_seconds()))
        assert deliver().performed + deliver().failed == 0  # not due yet
        job.run_after = utcnow()
        session.commit()
    assert deliver().performed == 1
    assert waits == [30, 120]
    assert [webhooks.retry_delay(n) for n in range(1, 9)] == [
        timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=8), timedelta(minutes=32),
        timedelta(minutes=128), timedelta(minutes=512), timedelta(hours=12), timedelta(hours=12),
    ]  # fmt: skip
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 1
    attempts = session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
    assert [(a.response_status, a.succeeded) for a in attempts] == [(500, False), (503, False), (200, True)]
    assert "down for maintenance" in attempts[0].response_body
    assert session.get(WebhookDelivery, delivery_id).status == DeliveryStatus.SUCCEEDED
    assert session.scalar(select(WebhookEndpoint.failing_since)) is None
    job = job_of(session, delivery_id)
    job.run_after = utcnow() - timedelta(days=1)
    session.commit()
    assert deliver().performed == 0 and len(receiver.requests) == 3


def test_a_worker_killed_during_delivery_is_taken_over_and_the_success_recorded_once(
    app, session, world, api, receiver, open_problem, database_url, tmp_path
):
    """The worker is SIGKILLed while the receiver holds its request. A second worker takes the job
    over when the lease ends and delivers the same webhook-id; the delivery has one success, the
    receiver saw that id at most twice, and nothing is sent after."""
    register(api, world.owner, world.company.id, receiver.url(), ["problem.funded"])
    open_problem()
    session.commit()
    receiver.hold_next = True
    env = dict(
        os.environ, DATABASE_URL=database_url, APP_ENV="test", JOB_LEASE_SECONDS="1", SECRET_KEY="test-secret",
        INSTANCE_PATH=str(tmp_path / "worker"), FLASK_APP="wsgi.py",
    )  # fmt: skip
    log_path = tmp_path / "worker.log"

    def start():
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "worker", "--interval", "0.2"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=log_path.open("ab"),  # noqa: SIM115 (the worker's own)
        )  # fmt: skip

    first = start()
    try:
        assert receiver.arrived.wait(60), log_path.read_text()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    receiver.release.set()  # Answers a worker that is gone.
    second = start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = session.scalar(select(WebhookDelivery.status))
            session.rollback()  # Never hold the database while the worker needs it.
            if status == DeliveryStatus.SUCCEEDED:
                break
            time.sleep(0.2)
        time.sleep(1.5)  # Rounds after the success send nothing more.
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    delivery = session.scalars(select(WebhookDelivery)).one()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [attempt.succeeded for attempt in delivery.attempts] == [True]
    ids = [request.headers["webhook-id"] for request in receiver.requests]
    assert set(ids) == {delivery.webhook_id} and len(ids) == 2
    assert job_of(session, delivery.id).status == JobStatus.DONE


def test_during_a_rotation_both_secrets_sign_and_only_the_new_one_after(app, session, world, api, receiver, deliver):
    """Rotating gives a new secret once; for 24 hours each delivery carries a signature by the new
    secret and one by the old; after the grace period only the new one signs."""
    made = register(api, world.owner, world.company.id, receiver.url())
    base = f"/companies/{world.company.id}/webhooks/{made['id']}"
    rotated = api(world.admin).post(base + "/secret")
    assert rotated.status_code == 200
    new_secret, old_secret = rotated.json["secret"], made["secret"]
    assert new_secret != old_secret
    grace_ends = utcnow() + webhooks.ROTATION_GRACE
    assert abs(datetime.fromisoformat(rotated.json["previous_secret_expires_at"]) - grace_ends) < timedelta(minutes=1)

    assert api(world.owner).post(base + "/ping").status_code == 202
    deliver()
    during = receiver.requests[-1]
    assert json.loads(during.body)["type"] == "webhook.ping"
    assert signatures_valid(new_secret, during.headers, during.body) == [True, False]
    assert signatures_valid(old_secret, during.headers, during.body) == [False, True]

    endpoint = session.get(WebhookEndpoint, made["id"])
    endpoint.previous_secret_expires_at = utcnow() - timedelta(seconds=1)  # The grace period is over.
    session.commit()
    api(world.owner).post(base + "/ping")
    deliver()
    after = receiver.requests[-1]
    assert signatures_valid(new_secret, after.headers, after.body) == [True]
    assert signatures_valid(old_secret, after.headers, after.body) == [False]


def test_an_event_of_another_company_is_never_delivered(app, session, world, api, receiver, deliver, make_user):
    """Each company's endpoint hears only of its own problems."""
    rival_owner = make_user("Rita Rival", "rita@rival.example.com")
    rival = build.company(session, rival_owner, name="Rival Labs")
    register(api, world.owner, world.company.id, receiver.url("/acme"))
    register(api, rival_owner, rival.id, receiver.url("/rival"))
    ours = build.problem(session, world.owner, world.company.id, "open")
    build.chain(session, ours, [world.ann, world.bob])
    deliver()
    assert {json.loads(r.body)["data"]["problem"]["id"] for r in receiver.to("/acme")} == {ours.id}
    assert len(receiver.to("/acme")) == 3  # funded, and two places taken in the chain
    assert receiver.to("/rival") == []


def test_payloads_show_chain_members_as_the_company_sees_them(
    app, session, world, api, receiver, deliver, open_problem
):
    """A member who keeps their name off chains is "Anonymous member" without an id in every
    payload; a member who shows it is named; the candidate is named once they agreed."""
    accounts.update_profile(session, world.ann, name=world.ann.name, headline="", skills="", show_name_on_chains=False)
    session.commit()
    register(api, world.owner, world.company.id, receiver.url())
    problem = open_problem(guarantee_days=0)
    build.accepted(session, world.owner, problem, [world.ann, world.bob], candidate=world.dev)
    deliver()
    bodies = [r.body.decode() for r in receiver.requests]
    types = [json.loads(body)["type"] for body in bodies]
    assert sorted(types) == sorted(["problem.funded", "referral.claimed", "referral.claimed", "introduction.proposed",
                                    "introduction.accepted", "shares.released"])  # fmt: skip
    for body in bodies:
        assert world.ann.name not in body and world.ann.email not in body
    claimed = [json.loads(body)["data"]["referral"]["holder"] for body in bodies[1:3]]
    assert claimed == [{"id": None, "name": "Anonymous member"}, {"id": world.bob.id, "name": world.bob.name}]
    accepted = json.loads(bodies[types.index("introduction.accepted")])["data"]
    assert [(link["id"], link["name"]) for link in accepted["chain"]] == [
        (None, "Anonymous member"),
        (world.bob.id, world.bob.name),
    ]
    assert accepted["introduction"]["candidate"] == {"name": world.dev.name, "email": world.dev.email}
    assert sum(link["share"] for link in accepted["chain"]) > 0


def test_a_dispute_is_delivered(app, session, world, api, receiver, deliver, open_problem):
    """dispute.opened reaches the company's endpoint with the reason it gave."""
    register(api, world.owner, world.company.id, receiver.url(), ["dispute.opened"])
    problem = open_problem()
    build.accepted(session, world.owner, problem, [world.bob])
    disputes.open_dispute(session, world.owner, problem.id, reason="The expert never showed up.")
    session.commit()
    deliver()
    [request] = receiver.requests
    data = json.loads(request.body)["data"]
    assert data["dispute"]["reason"] == "The expert never showed up." and data["dispute"]["chargeback"] is False


def test_an_expired_problem_and_its_refund_are_delivered(app, session, world, api, receiver, deliver, open_problem):
    """problem.expired when the expiry job closes a problem past its date; problem.refunded when
    its escrow is back on the company's card."""
    register(api, world.owner, world.company.id, receiver.url(), ["problem.expired", "problem.refunded"])
    problem = open_problem()
    funding.expire_due(session, now=problem.expires_at + timedelta(seconds=1))
    session.commit()
    funding.complete_refund(session, refund_key(problem.id), reference="re_expired")
    session.commit()
    deliver()
    payloads = [json.loads(request.body) for request in receiver.requests]
    assert [(p["type"], p["data"]["problem"]["id"], p["data"]["problem"]["status"]) for p in payloads] == [
        ("problem.expired", problem.id, "expired"),
        ("problem.refunded", problem.id, "refunded"),
    ]


def test_a_cancelled_problem_is_delivered_to_the_endpoints_that_want_it(
    app, session, world, api, receiver, deliver, open_problem
):
    """problem.cancelled when a manager cancels: the company's other managers and the systems
    mirroring its problems hear of it, as they hear of an expiry; an endpoint that wants only
    expiries does not."""
    register(api, world.owner, world.company.id, receiver.url(), ["problem.cancelled"])
    register(api, world.owner, world.company.id, receiver.url("/expiries"), ["problem.expired"])
    problem = open_problem()
    funding.cancel_problem(session, world.owner, problem.id)
    session.commit()
    deliver()
    [request] = receiver.requests
    payload = json.loads(request.body)
    assert request.path == "/hooks"
    assert (payload["type"], payload["data"]["problem"]["id"], payload["data"]["problem"]["status"]) == (
        "problem.cancelled",
        problem.id,
        "cancelled",
    )


def test_an_endpoint_failing_for_three_days_is_disabled_and_the_company_told(
    app, session, world, api, receiver, deliver, open_problem, browser
):
    """Every attempt failing for 3 days: the message gives up, the endpoint is disabled, its
    owner and admin are notified (not the employee), and new events are not queued for it until
    it is enabled again."""
    made = register(api, world.owner, world.company.id, receiver.url(), ["problem.funded"])
    receiver.answers.extend([500] * 10)
    open_problem()
    assert deliver().failed == 1
    endpoint = session.get(WebhookEndpoint, made["id"])
    delivery = session.scalars(select(WebhookDelivery)).one()
    assert endpoint.failing_since is not None and endpoint.enabled
    three_days_ago = utcnow() - timedelta(days=3, minutes=1)
    endpoint.failing_since = delivery.retrying_since = three_days_ago
    job = job_of(session, delivery.id)
    job.run_after = utcnow()
    session.commit()

    assert deliver().performed == 1  # The job ends: it gave up.
    session.refresh(endpoint)
    session.refresh(delivery)
    assert not endpoint.enabled and "answered 500" in endpoint.disabled_reason
    assert delivery.status == DeliveryStatus.FAILED
    told = session.scalars(select(Notification.user_id).where(Notification.kind == "webhook_disabled")).all()
    assert sorted(told) == sorted([world.owner.id, world.admin.id])

    open_problem(title="A second problem")
    assert session.scalars(select(WebhookDelivery)).all() == [delivery]
    again = api(world.owner).post(
        f"/companies/{world.company.id}/webhooks/{made['id']}/deliveries/{delivery.id}/redeliver"
    )
    assert again.status_code == 409 and again.json["error"]["code"] == "endpoint_disabled"

    owner = build.logged_in(browser, world.owner)
    page = f"/companies/{world.company.id}/webhooks/{made['id']}"
    assert "disabled" in owner.get(page).text
    owner.submit(page, action=page + "/enable")
    session.refresh(endpoint)
    assert endpoint.enabled and endpoint.failing_since is None


def test_the_delivery_log_page_shows_each_attempt_and_sends_again(app, session, world, api, receiver, deliver, browser):
    """An owner adds an endpoint on the page (the secret shown once), sends a test ping, reads the
    request and the response in the log, sends it again with the same webhook-id, and changes the
    endpoint (a refused URL re-renders the form with the reason and changes nothing). The page
    is the owner's and admins': an employee is refused, an outsider told nothing; a form without
    its CSRF token changes nothing."""
    owner = build.logged_in(browser, world.owner)
    listing = f"/companies/{world.company.id}/webhooks"
    created = owner.submit(
        listing, {"url": receiver.url(), "description": "Our CRM", "event_types": ["problem.funded", "dispute.opened"]}
    )
    assert created.status_code == 200
    endpoint = session.scalars(select(WebhookEndpoint)).one()
    session.commit()
    assert endpoint.secret in created.text
    page = f"{listing}/{endpoint.id}"
    assert endpoint.secret not in owner.get(page).text and endpoint.secret not in owner.get(listing).text

    owner.submit(page, action=page + "/ping")
    receiver.answers.append(502)
    deliver()
    log = owner.get(page).text
    assert "HTTP 502" in log and "webhook-signature: v1," in log and "webhook.ping" in log
    assert "down for maintenance" in log and " ms" in log
    delivery = session.scalars(select(WebhookDelivery)).one()
    session.commit()
    assert "Send again" not in log  # still being retried

    job = job_of(session, delivery.id)
    job.run_after = utcnow()
    session.commit()
    deliver()
    again = owner.submit(page, action=f"{page}/deliveries/{delivery.id}/redeliver")
    assert again.status_code == 200 and "queued to be sent again" in again.text
    deliver()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.webhook_id] * 3
    assert owner.get(page).text.count("HTTP 200") == 2

    forged = owner.client.post(f"{page}/deliveries/{delivery.id}/redeliver")
    assert forged.status_code in (400, 302)
    assert job_of(session, delivery.id).status == JobStatus.DONE

    changed = owner.submit(
        page, {"url": receiver.url("/v2"), "description": "Our CRM", "event_types": ["problem.funded"]}
    )
    assert changed.status_code == 200 and "Saved" in changed.text
    refused = owner.submit(page, {"url": "http://192.168.0.10/in", "event_types": ["problem.funded"]}, follow=False)
    assert refused.status_code == 422 and "over https only" in refused.text
    endpoint = session.get(WebhookEndpoint, endpoint.id, populate_existing=True)
    assert (endpoint.url, endpoint.event_types) == (receiver.url("/v2"), ["problem.funded"])
    session.commit()

    assert build.logged_in(browser, world.employee).get(page).status_code == 403
    assert build.logged_in(browser, world.outsider).get(page).status_code == 404


def test_the_api_manages_endpoints_deliveries_and_pings(app, session, world, api, receiver, deliver, make_user):
    """The API twins of the pages: list, update, disable, ping, the log, send again (409 while a
    message is still being sent), delete; only the company's owner and admins."""
    owner, base = api(world.owner), f"/companies/{world.company.id}/webhooks"
    made = register(api, world.owner, world.company.id, receiver.url())
    one = f"{base}/{made['id']}"
    changed = owner.patch(one, {"event_types": ["dispute.opened"]})
    assert changed.status_code == 200 and changed.json["event_types"] == ["dispute.opened"]
    pinged = owner.post(one + "/ping")
    assert pinged.status_code == 202 and pinged.json["status"] == "pending"
    assert owner.post(f"{one}/deliveries/{pinged.json['id']}/redeliver").status_code == 409
    deliver()
    [logged] = owner.get(one + "/deliveries").json
    assert logged["status"] == "succeeded" and logged["attempts"][0]["response_status"] == 200
    assert logged["attempts"][0]["request_headers"]["webhook-id"] == logged["webhook_id"]
    assert owner.post(f"{one}/deliveries/{pinged.json['id']}/redeliver").status_code == 202

    assert api(world.employee).get(base).status_code == 403
    stranger = make_user("Sam Stranger", "sam@else.example.com")
    assert api(stranger).get(one + "/deliveries").status_code == 404
    assert owner.delete(one).status_code == 204
    assert owner.get(base).json == []
    trail = session.scalars(select(AuditEntry).where(AuditEntry.subject_type == "webhook_endpoints")).all()
    assert [(entry.action, entry.actor_id) for entry in trail] == [
        ("webhook.created", world.owner.id),
        ("webhook.updated", world.owner.id),
        ("webhook.deleted", world.owner.id),
    ]
    assert all(made["secret"] not in str(entry.detail) for entry in trail)
    assert deliver().performed == 1  # the queued "send again" is dropped quietly
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://example.com/hooks", "insecure_url"),
        ("ftp://127.0.0.1/hooks", "invalid_url"),
        ("https://user:pw@example.com/hooks", "invalid_url"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(app, world, api, url, code):
    response = api(world.owner).post(
        f"/companies/{world.company.id}/webhooks", json={"url": url, "event_types": ["problem.funded"]}
    )
    assert response.status_code == 422 and response.json["error"]["code"] == code


def test_unknown_event_types_are_refused(app, world, api):
    response = api(world.owner).post(
        f"/companies/{world.company.id}/webhooks", json={"url": "https://example.com/h", "event_types": ["everything"]}
    )
    assert response.status_code == 422 and response.json["error"]["code"] == "invalid"


def test_the_verification_snippet_in_the_docs_verifies_a_real_delivery(app, session, world, api, receiver, deliver):
    """The Python in docs/webhooks.md, run as written: it accepts a delivery, and refuses one
    with a changed body, a wrong secret or an old timestamp."""
    snippet = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "webhooks.md").read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, "docs/webhooks.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    verify = namespace["verify"]
    made = register(api, world.owner, world.company.id, receiver.url())
    api(world.owner).post(f"/companies/{world.company.id}/webhooks/{made['id']}/ping")
    deliver()
    [request] = receiver.requests

    assert verify(made["secret"], request.headers, request.body)
    assert not verify(made["secret"], request.headers, request.body.replace(b"ping", b"pong"))
    assert not verify(webhooks.signing.new_secret(), request.headers, request.body)
    stale = {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) - 600)}
    assert not verify(made["secret"], stale, request.body)
