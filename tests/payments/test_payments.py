"""The money loop through the official Stripe SDK against the emulator: fund through the hosted
Checkout page, settle along a chain, onboard payout accounts through the hosted page, transfer
exactly once per link, refund; faults at every external call; webhooks verified, deduplicated and
safe out of order; a worker killed mid-transfer."""

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select, update
from werkzeug.serving import make_server

from devtools.stripe_emulator import Emulator
from marketplace.config import override
from marketplace.db import db, utcnow
from marketplace.jobs import service as jobs
from marketplace.jobs.models import Job, JobStatus
from marketplace.ledger.models import Share, ShareStatus
from marketplace.payments.models import CheckoutSession, PayoutAccount, StripeEvent
from marketplace.payments.reconcile import reconcile
from marketplace.problems.models import Problem
from marketplace.referrals import chains, introductions
from tests import builders as build

ROOT = Path(__file__).resolve().parents[2]
CARD_OK, CARD_DECLINED = "4242424242424242", "4000000000000002"


@pytest.fixture
def emulator():
    emu = Emulator(auto_deliver=False, webhook_retry_base=0.01).start(port=0)
    yield emu
    emu.stop()


@pytest.fixture
def live(app, emulator):
    """The app served over real HTTP (the emulator must reach its webhook), pointed at the emulator."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secrets = [
        emulator.add_webhook_endpoint(base + "/webhooks/stripe"),
        emulator.add_webhook_endpoint(base + "/webhooks/stripe", connect=True),
    ]
    override(
        app, stripe_secret_key="sk_test_marketplace", stripe_api_base=emulator.url,
        stripe_webhook_secret=",".join(secrets), base_url=base, stripe_timeout_seconds=1,
    )  # fmt: skip
    app.extensions.pop("stripe_client", None)
    yield base
    server.shutdown()


def status_of(session, problem_id: int) -> str:
    """Read the problem's state without holding the database for the requests that follow."""
    session.rollback()
    status = session.get(Problem, problem_id).status.value
    session.rollback()
    return status


def run_jobs(app, kinds=None):
    db.session.commit()
    with app.app_context():
        return jobs.work_once(db.session, "test-worker", kinds=kinds)


def deliver(emulator, app=None):
    """Stripe sends what happened; then the worker performs what that caused."""
    db.session.commit()
    attempts = emulator.deliver_pending()
    assert all(a.get("status", 200) < 300 for a in attempts if isinstance(a, dict)), attempts
    if app is not None:
        run_jobs(app)
    return attempts


def pay(checkout_url: str, card: str = CARD_OK) -> requests.Response:
    return requests.post(checkout_url, data={"card_number": card}, allow_redirects=False, timeout=10)


def onboard(api_client, outcome="complete") -> requests.Response:
    url = api_client.post("/me/payout-account").json["onboarding_url"]
    return requests.post(url, data={"outcome": outcome}, allow_redirects=False, timeout=10)


def post_problem(api_client, company_id, **extra):
    body = {
        "company_id": company_id, "title": "Fix our Postgres replication lag",
        "description": "Replicas fall minutes behind at peak hours; we need an expert.",
        "skills": ["postgres"], "bounty": {"amount": 200_000, "currency": "usd"}, "guarantee_days": 0, **extra,
    }  # fmt: skip
    response = api_client.post("/problems", body)
    assert response.status_code == 201, response.json
    return response.json["id"]


def funded_problem(live, emulator, app, api, world):
    owner = api(world.owner)
    problem_id = post_problem(owner, world.company.id)
    checkout = owner.post(f"/problems/{problem_id}/checkout")
    assert checkout.status_code == 201, checkout.json
    paid = pay(checkout.json["checkout_url"])
    assert paid.status_code == 303 and paid.headers["Location"].startswith(live + f"/problems/{problem_id}/funded")
    deliver(emulator, app)
    return problem_id


def chain_of_three_accepted(session, world, problem_id):
    problem = session.get(Problem, problem_id)
    members = [world.ann, world.bob, world.cleo]
    return build.introduction(
        session, problem, members, world.dev, message="Dev rebuilt replication for a 5 TB cluster."
    )


def test_the_whole_money_loop_pays_each_link_exactly_once(live, emulator, app, api, world, session, runner, sent_mail):
    problem_id = funded_problem(live, emulator, app, api, world)
    assert status_of(session, problem_id) == "open"

    introduction = chain_of_three_accepted(session, world, problem_id)
    accepted = api(world.owner).post(f"/introductions/{introduction.id}/accept")
    assert accepted.status_code == 200, accepted.json
    shares = {s["user_id"]: s["amount"] for s in accepted.json["settlement"]["shares"]}
    assert sum(shares.values()) == 180_000  # 200,000 less the 10% platform fee, to three links
    run_jobs(app)

    for member in (world.ann, world.bob, world.cleo):
        assert onboard(api(member)).status_code == 303
    deliver(emulator, app)  # account.updated → ready → transfer jobs → transfers
    run_jobs(app)

    transfers = emulator_transfers(emulator, f"problem_{problem_id}")
    accounts = {a.user_id: a.stripe_id for a in session.scalars(select(PayoutAccount))}
    assert sorted((t["destination"], t["amount"]) for t in transfers) == sorted(
        (accounts[user_id], amount) for user_id, amount in shares.items()
    )
    subjects = [m["Subject"] for m in sent_mail.to("ann@example.com")]
    for news in ("You earned $90.00 for", "$90.00 for “Fix our Postgres replication lag” is now available",
                 "$90.00 for “Fix our Postgres replication lag” is on its way to your bank"):  # fmt: skip
        assert sum(subject.startswith(news) for subject in subjects) == 1, (news, subjects)
    payouts = api(world.ann).get("/me/payouts").json["items"]
    assert [(p["amount"], p["status"], p["problem_id"]) for p in payouts] == [
        (shares[world.ann.id], "paid", problem_id)
    ]

    # Nothing is sent twice, however often the worker and the webhooks run again.
    deliver(emulator, app)
    run_jobs(app)
    assert len(emulator_transfers(emulator, f"problem_{problem_id}")) == 3

    verify = runner.invoke(args=["ledger", "verify"])
    assert verify.exit_code == 0, verify.output
    reconciled = runner.invoke(args=["stripe", "reconcile"])
    assert reconciled.exit_code == 0 and "the ledger and Stripe agree" in reconciled.output, reconciled.output

    # A reversed transfer moves that share's money to "reversed" for an admin; nothing is resent.
    ann_share = session.scalars(select(Share).where(Share.member_id == world.ann.id)).one()
    session.rollback()
    requests.post(f"{emulator.url}/v1/transfers/{ann_share.transfer_reference}/reversals",
                  auth=("sk_test_marketplace", ""), timeout=10).raise_for_status()  # fmt: skip
    deliver(emulator, app)
    session.rollback()
    assert session.get(Share, ann_share.id, populate_existing=True).status == ShareStatus.REVERSED
    session.rollback()
    assert len(emulator_transfers(emulator, f"problem_{problem_id}")) == 3
    verify = runner.invoke(args=["ledger", "verify"])
    assert verify.exit_code == 0, verify.output
    with app.app_context():
        assert reconcile(db.session) == []


def emulator_transfers(emulator, group):
    response = requests.get(f"{emulator.url}/v1/transfers", params={"transfer_group": group, "limit": 100},
                            auth=("sk_test_marketplace", ""), timeout=10)  # fmt: skip
    return response.json()["data"]


def test_declined_and_abandoned_payments_leave_the_problem_waiting_with_a_way_to_retry(
    live, emulator, app, api, world, session
):
    owner = api(world.owner)
    problem_id = post_problem(owner, world.company.id)
    first = owner.post(f"/problems/{problem_id}/checkout").json
    declined = pay(first["checkout_url"], CARD_DECLINED)
    assert declined.status_code == 200 and "declined" in declined.text.lower()
    deliver(emulator, app)
    assert status_of(session, problem_id) == "awaiting_payment"
    # The same open session is offered again; once it expires, a new one is made.
    assert owner.post(f"/problems/{problem_id}/checkout").json["session_id"] == first["session_id"]
    emulator.advance_time(25 * 3600)
    deliver(emulator, app)
    session.rollback()
    assert (
        session.scalar(select(CheckoutSession.status).where(CheckoutSession.stripe_id == first["session_id"]))
        == "expired"
    )
    session.rollback()
    second = owner.post(f"/problems/{problem_id}/checkout").json
    assert second["session_id"] != first["session_id"]
    assert pay(second["checkout_url"]).status_code == 303
    deliver(emulator, app)
    assert status_of(session, problem_id) == "open"


@pytest.mark.parametrize("fault", ["fail", "drop", "delay"])
def test_checkout_creation_survives_faults_without_a_second_session(live, emulator, app, api, world, session, fault):
    owner = api(world.owner)
    problem_id = post_problem(owner, world.company.id)
    inject(emulator, fault, "/v1/checkout/sessions", times=1)
    created = owner.post(f"/problems/{problem_id}/checkout")
    if created.status_code != 201:  # A delay past the timeout is reported; the retry recovers.
        assert created.status_code == 502 and created.json["error"]["code"] == "payment_provider"
        created = owner.post(f"/problems/{problem_id}/checkout")
    assert created.status_code == 201
    sessions = requests.get(f"{emulator.url}/v1/checkout/sessions", auth=("sk_test_marketplace", ""), timeout=10).json()
    assert len(sessions["data"]) == 1


def inject(emulator, fault, path, times):
    if fault == "fail":
        emulator.fail_next(path, times=times, status=500)
    elif fault == "drop":
        emulator.drop_next(path, times=times)
    else:
        emulator.delay_next(path, seconds=1.5, times=times)


@pytest.mark.parametrize("fault", ["fail", "drop", "delay"])
def test_transfers_survive_faults_and_are_made_once(live, emulator, app, api, world, session, fault):
    problem_id = funded_problem(live, emulator, app, api, world)
    introduction = chain_of_three_accepted(session, world, problem_id)
    assert api(world.owner).post(f"/introductions/{introduction.id}/accept").status_code == 200
    for member in (world.ann, world.bob, world.cleo):
        onboard(api(member))
    inject(emulator, fault, "/v1/transfers", times=9)  # More than the SDK's own retries.
    deliver(emulator, app)
    for _ in range(8):
        session.execute(update(Job).where(Job.status == JobStatus.PENDING).values(run_after=utcnow()))
        run_jobs(app)
        if len(emulator_transfers(emulator, f"problem_{problem_id}")) == 3 and not pending_jobs(session):
            break
    transfers = emulator_transfers(emulator, f"problem_{problem_id}")
    assert len(transfers) == 3
    session.rollback()
    assert {s.status for s in session.scalars(select(Share).where(Share.problem_id == problem_id))} == {
        ShareStatus.PAID
    }


def pending_jobs(session):
    session.rollback()
    pending = session.scalars(select(Job).where(Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))).all()
    session.rollback()
    return pending


@pytest.mark.parametrize("fault", ["fail", "drop", "delay"])
def test_refunds_survive_faults_and_are_made_once(live, emulator, app, api, world, session, fault):
    problem_id = funded_problem(live, emulator, app, api, world)
    inject(emulator, fault, "/v1/refunds", times=9)
    assert api(world.owner).post(f"/problems/{problem_id}/cancel").status_code == 200
    for _ in range(8):
        session.execute(update(Job).where(Job.status == JobStatus.PENDING).values(run_after=utcnow()))
        run_jobs(app)
        if not pending_jobs(session):
            break
    refunds = requests.get(f"{emulator.url}/v1/refunds", auth=("sk_test_marketplace", ""), timeout=10).json()["data"]
    assert [r["amount"] for r in refunds] == [200_000]
    deliver(emulator, app)
    assert status_of(session, problem_id) == "refunded"


def signed(payload: dict, secret: str) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={signature}"


def event(event_id, kind, obj):
    return {"id": event_id, "object": "event", "type": kind, "api_version": "2025-01-27.acacia", "created": 1,
            "livemode": False, "pending_webhooks": 1, "request": {"id": None}, "data": {"object": obj}}  # fmt: skip


def test_webhooks_bad_signature_duplicates_and_out_of_order(live, emulator, app, api, world, session, client):
    owner = api(world.owner)
    problem_id = post_problem(owner, world.company.id)
    checkout = owner.post(f"/problems/{problem_id}/checkout").json
    secret = app.config["STRIPE_WEBHOOK_SECRET"].split(",")[0]
    completed = event("evt_test_completed", "checkout.session.completed", {
        "id": checkout["session_id"], "object": "checkout.session", "payment_status": "paid", "status": "complete",
        "amount_total": 200_000, "currency": "usd", "payment_intent": "pi_test_1",
    })  # fmt: skip
    expired = event("evt_test_expired", "checkout.session.expired", {
        "id": checkout["session_id"], "object": "checkout.session", "payment_status": "unpaid", "status": "expired",
    })  # fmt: skip

    body, header = signed(completed, "whsec_wrong")
    bad = client.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": header}, content_type="application/json"
    )
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_signature"
    assert status_of(session, problem_id) == "awaiting_payment"
    assert session.scalars(select(StripeEvent)).all() == []
    session.rollback()

    body, header = signed(completed, secret)
    outcomes = [
        client.post(
            "/webhooks/stripe", data=body, headers={"Stripe-Signature": header}, content_type="application/json"
        )
        for _ in range(20)
    ]
    assert all(r.status_code == 200 for r in outcomes)
    assert [r.json["outcome"] for r in outcomes] == ["queued"] + ["duplicate"] * 19
    run_jobs(app)
    assert session.get(StripeEvent, "evt_test_completed").outcome == "funded"
    session.rollback()
    body, header = signed(expired, secret)  # Arrives late: must not undo the payment.
    assert client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header},
                       content_type="application/json").status_code == 200  # fmt: skip
    run_jobs(app)
    assert status_of(session, problem_id) == "open"
    assert session.scalar(select(CheckoutSession.status)) == "complete"
    assert len(session.scalars(select(StripeEvent)).all()) == 2


def test_a_worker_killed_mid_transfer_completes_it_once_after_restart(
    live, emulator, app, api, world, session, database_url, tmp_path
):
    problem_id = funded_problem(live, emulator, app, api, world)
    problem = session.get(Problem, problem_id)
    chains.pick_from_board(session, world.ann, problem.id)
    introduction = introductions.introduce(session, world.ann, problem.id, candidate_user_id=world.ann.id,
                                       message="I have fixed this exact problem twice.")  # fmt: skip
    session.commit()
    assert api(world.owner).post(f"/introductions/{introduction.id}/accept").status_code == 200
    onboard(api(world.ann))
    db.session.commit()
    emulator.deliver_pending()  # account ready → one transfer job, not yet run
    emulator.delay_next("/v1/transfers", seconds=3, times=1)
    env = dict(os.environ, DATABASE_URL=database_url, JOB_LEASE_SECONDS="1", INSTANCE_PATH=str(tmp_path / "w"),
               SECRET_KEY="test-secret", STRIPE_SECRET_KEY="sk_test_marketplace", STRIPE_API_BASE=emulator.url,
               FLASK_APP="wsgi.py")  # fmt: skip

    def start():
        return subprocess.Popen([sys.executable, "-m", "flask", "worker", "--interval", "0.2"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "worker.log", "ab"))  # fmt: skip

    first = start()
    time.sleep(2)  # The worker is inside the transfer call now.
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    time.sleep(2)  # Stripe (the emulator) finished the transfer nobody heard about.
    second = start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            session.rollback()
            paid = session.scalars(select(Share).where(Share.problem_id == problem_id)).first().status
            session.rollback()  # Never hold the database while the worker needs it.
            if paid == ShareStatus.PAID:
                break
            time.sleep(0.3)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    session.rollback()
    assert len(emulator_transfers(emulator, f"problem_{problem_id}")) == 1
    assert session.scalars(select(Share).where(Share.problem_id == problem_id)).first().status == ShareStatus.PAID
