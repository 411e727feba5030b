"""The payout side of the Stripe boundary, against the emulator with the official SDK: a refused
transfer waits instead of looping; readiness and refunds follow what Stripe says now, not an
event's snapshot; webhooks are answered before their work runs; idempotency keys are this
installation's own; onboarding holds no database transaction while Stripe answers; what Stripe
needs is said in words."""

import threading
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from marketplace import create_app
from marketplace.accounts import service as accounts
from marketplace.config import override
from marketplace.db import db, make_engine, utcnow
from marketplace.jobs import service as jobs
from marketplace.jobs.models import Job, JobStatus
from marketplace.ledger import settlement
from marketplace.ledger.models import Share, ShareStatus
from marketplace.models import metadata
from marketplace.notifications.models import Notification
from marketplace.payments.models import PayoutAccount, StripeEvent
from marketplace.payments.reconcile import reconcile
from marketplace.payments.requirements import onboarding_status
from marketplace.problems.models import Problem
from tests import builders as build
from tests.conftest import FAST_PASSWORD_HASH, ApiClient
from tests.payments.test_payments import (
    deliver,
    emulator_transfers,
    funded_problem,
    onboard,
    run_jobs,
    signed,
    status_of,
)

KEY = ("sk_test_marketplace", "")


def worker_round(app):
    """One round of a worker: the periodic work (``start payouts`` among it), then every job due,
    retries included (their backoff is skipped)."""
    db.session.execute(update(Job).where(Job.status == JobStatus.PENDING).values(run_after=utcnow()))
    db.session.commit()
    with app.app_context():
        jobs.run_periodic(db.session)
        jobs.work_once(db.session, "test-worker")


def count(session, query) -> int:
    value = session.scalar(select(func.count()).select_from(query.subquery()))
    session.rollback()
    return value


def fail_verification_at_stripe(emulator, stripe_id):
    """Stripe stops paying an account the app still believes ready: its owner fails
    verification through a link the app never made, and the app hears nothing yet."""
    link = requests.post(f"{emulator.url}/v1/account_links", auth=KEY, timeout=10, data={
        "account": stripe_id, "type": "account_onboarding",
        "return_url": "http://example.com/r", "refresh_url": "http://example.com/f",
    }).json()  # fmt: skip
    requests.post(link["url"], data={"outcome": "fail_verification"}, allow_redirects=False, timeout=10)


def platform_admin(session):
    admin = build.user(session, "Pat Platform", "pat@marketplace.example.com")
    admin.is_platform_admin = True
    session.commit()
    return admin


def test_a_refused_transfer_waits_with_one_notice_until_the_account_is_ready_or_an_admin_retries(
    live, emulator, app, api, world, session, sent_mail, browser
):
    members = [world.ann, world.bob, world.cleo]
    admin_user = platform_admin(session)
    problem_id = funded_problem(live, emulator, app, api, world)
    for member in members:
        onboard(api(member))
    deliver(emulator, app)
    accounts = {a.user_id: a.stripe_id for a in session.scalars(select(PayoutAccount)) if a.ready}
    session.rollback()
    assert set(accounts) == {m.id for m in members}
    # Ann's and Bob's accounts fail verification at Stripe; every transfer is refused once.
    for member in (world.ann, world.bob):
        fail_verification_at_stripe(emulator, accounts[member.id])
    emulator.fail_next("/v1/transfers", times=3, status=400)
    build.accepted(session, world.owner, session.get(Problem, problem_id), members, world.dev)

    for _ in range(10):
        worker_round(app)

    transfer_jobs = select(Job).where(Job.kind == "stripe.transfer")
    assert count(session, transfer_jobs) == 3
    assert emulator_transfers(emulator, f"problem_{problem_id}") == []
    shares = session.scalars(select(Share).where(Share.problem_id == problem_id, Share.role == "link")).all()
    assert {(s.status, s.payout_refusal is not None) for s in shares} == {(ShareStatus.AVAILABLE, True)}
    paid_to = sorted((accounts[s.member_id], s.payable) for s in shares)
    (cleo_share_id,) = [s.id for s in shares if s.member_id == world.cleo.id]
    session.rollback()
    assert count(session, select(Notification).where(Notification.kind == "payout_failed")) == 3
    alerts = select(Notification).where(Notification.user_id == admin_user.id)
    assert count(session, alerts.where(Notification.event_key.startswith("payout-refused:"))) == 3
    for member in members:
        subjects = [m["Subject"] for m in sent_mail.to(member.email)]
        assert sum(s.startswith("Your payout of $") for s in subjects) == 1, subjects
    # Reading the accounts again after the refusal showed what Stripe thinks of them now.
    assert {a.user_id: a.ready for a in session.scalars(select(PayoutAccount))} == {
        world.ann.id: False, world.bob.id: False, world.cleo.id: True
    }  # fmt: skip
    session.rollback()

    earnings = build.logged_in(browser, world.ann).get("/me/earnings").text
    assert earnings.count("data-refused-payout") == 1 and "Verification failed." in earnings

    # Ann and Bob finish verification: their accounts become ready and their shares go, once.
    for member in (world.ann, world.bob):
        onboard(api(member))
    deliver(emulator, app)
    # Cleo's account was fine all along: an admin sends hers again from /admin/payouts.
    admin = build.logged_in(browser, admin_user)
    page = admin.get("/admin/payouts")
    assert page.status_code == 200 and page.text.count("Injected failure") == 1
    retried = admin.submit("/admin/payouts", action=f"/admin/payouts/{cleo_share_id}/retry")
    assert retried.status_code == 200 and "sent again" in retried.text
    for _ in range(10):
        worker_round(app)
        deliver(emulator)

    transfers = emulator_transfers(emulator, f"problem_{problem_id}")
    assert sorted((t["destination"], t["amount"]) for t in transfers) == paid_to
    assert {s.status for s in session.scalars(select(Share).where(Share.problem_id == problem_id))} == {
        ShareStatus.PAID
    }
    session.rollback()
    assert count(session, transfer_jobs) == 6
    assert count(session, select(Notification).where(Notification.kind == "payout_failed")) == 3
    assert "No payout is refused" in admin.get("/admin/payouts").text


def test_account_updates_delivered_newest_first_leave_the_account_ready(live, emulator, app, api, world, session):
    assert onboard(api(world.ann), "pending_verification").status_code == 303
    assert onboard(api(world.ann), "complete").status_code == 303
    updates = [w["event"] for w in emulator.pending_webhooks() if w["type"] == "account.updated"]
    stripe_id = session.get(PayoutAccount, world.ann.id).stripe_id
    session.rollback()
    events = [
        requests.get(
            f"{emulator.url}/v1/events/{event_id}", auth=KEY, headers={"Stripe-Account": stripe_id}, timeout=10
        ).json()  # fmt: skip
        for event_id in dict.fromkeys(updates)
    ]
    assert [e["data"]["object"]["capabilities"]["transfers"] for e in events] == ["pending", "active"]
    connect_secret = app.config["STRIPE_WEBHOOK_SECRET"].split(",")[1]
    client = app.test_client()
    for stripe_event in reversed(events):
        body, header = signed(stripe_event, connect_secret)
        answered = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header},
                               content_type="application/json")  # fmt: skip
        assert answered.status_code == 200 and answered.json["outcome"] == "queued"
    run_jobs(app)
    account = session.get(PayoutAccount, world.ann.id)
    assert account.ready and account.requirements == []
    session.rollback()


@pytest.mark.parametrize("succeeds", [True, False], ids=["then_succeeded", "then_failed"])
def test_a_pending_refund_counts_only_when_stripe_says_it_succeeded(
    live, emulator, app, api, world, session, runner, succeeds
):
    emulator.configure(refunds_need_available_balance=True)  # The card's funds are not available yet.
    problem_id = funded_problem(live, emulator, app, api, world)
    assert api(world.owner).post(f"/problems/{problem_id}/cancel").status_code == 200
    run_jobs(app)
    (refund,) = requests.get(f"{emulator.url}/v1/refunds", auth=KEY, timeout=10).json()["data"]
    assert refund["status"] == "pending"
    deliver(emulator, app)  # refund.created, charge.refunded: nothing is returned yet.
    assert status_of(session, problem_id) == "cancelled"
    problem = session.get(Problem, problem_id)
    assert [r.done for r in settlement.refunds_of(session, problem)] == [False]
    session.rollback()

    emulator.settle_refund(refund["id"], succeed=succeeds)
    deliver(emulator, app)

    problem = session.get(Problem, problem_id)
    assert [r.done for r in settlement.refunds_of(session, problem)] == [succeeds]
    session.rollback()
    assert status_of(session, problem_id) == ("refunded" if succeeds else "cancelled")
    alerts = session.scalars(select(Notification).where(Notification.kind == "admin_alert")).all()
    assert [a.event_key for a in alerts] == ([] if succeeds else [f"refund-failed:{refund['id']}"] * len(alerts))
    session.rollback()
    verify = runner.invoke(args=["ledger", "verify"])
    assert verify.exit_code == 0, verify.output
    with app.app_context():
        assert reconcile(db.session) == []


def test_webhooks_are_answered_before_their_work_runs(live, emulator, app, api, world, session):
    onboard(api(world.ann))
    emulator.delay_next("/v1/accounts/", seconds=5)  # Reading the account again is slow today.
    started = time.monotonic()
    db.session.commit()
    attempts = emulator.deliver_pending()
    assert time.monotonic() - started < 3
    assert attempts and all(a["status"] == 200 for a in attempts)
    assert not session.get(PayoutAccount, world.ann.id).ready
    queued = session.scalars(select(Job).where(Job.kind == "stripe.event")).all()
    assert [j.status for j in queued] == [JobStatus.PENDING]
    assert session.scalars(select(StripeEvent.outcome)).all() == ["queued"]
    session.rollback()
    run_jobs(app)
    assert session.get(PayoutAccount, world.ann.id).ready
    assert session.scalars(select(StripeEvent.outcome)).all() == ["ready"]
    session.rollback()


def serve(app, emulator):
    """The app over HTTP with its two webhook endpoints at the emulator; the server and its address."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secrets = [
        emulator.add_webhook_endpoint(base + "/webhooks/stripe"),
        emulator.add_webhook_endpoint(base + "/webhooks/stripe", connect=True),
    ]
    override(
        app, stripe_secret_key=KEY[0], stripe_api_base=emulator.url, stripe_webhook_secret=",".join(secrets),
        base_url=base, stripe_timeout_seconds=5,
    )  # fmt: skip
    app.extensions.pop("stripe_client", None)
    return server


def pay_a_member_out(app, emulator):
    """On an installation's own database: a member onboards and is paid a settled share."""
    session = db.session
    owner = build.user(session, "Olivia Owner", "olivia@acme.example.com")
    company = build.company(session, owner)
    member, expert = build.user(session, "Ann Li"), build.user(session, "Dev Sharma", skills="postgres")
    problem = build.problem(session, owner, company.id, "open", guarantee_days=0)
    build.accepted(session, owner, problem, [member], expert)
    _, token = accounts.create_api_token(session, member)
    session.commit()
    answered = ApiClient(app.test_client(), token).post("/me/payout-account")
    assert answered.status_code == 200, answered.json
    requests.post(answered.json["onboarding_url"], data={"outcome": "complete"}, timeout=10)
    deliver(emulator, app)
    run_jobs(app)
    account = session.get(PayoutAccount, member.id)
    paid = session.scalars(select(Share).where(Share.member_id == member.id)).one()
    session.rollback()
    assert paid.status == ShareStatus.PAID, session.scalars(select(Job.last_error)).all()
    return account.stripe_id, paid.transfer_reference, member.id, paid.id


def test_a_second_database_on_the_same_stripe_account_gets_its_own_accounts_and_transfers(
    app, emulator, session, tmp_path
):
    # Card funds that are available at once pay transfers made without a source charge.
    requests.post(f"{emulator.url}/v1/payment_intents", auth=KEY, timeout=10, data={
        "amount": 1_000_000, "currency": "usd", "payment_method": "pm_card_bypassPending", "confirm": "true",
    }).raise_for_status()  # fmt: skip
    first_server = serve(app, emulator)
    first = pay_a_member_out(app, emulator)
    first_server.shutdown()
    for endpoint in requests.get(f"{emulator.url}/v1/webhook_endpoints", auth=KEY, timeout=10).json()["data"]:
        requests.delete(f"{emulator.url}/v1/webhook_endpoints/{endpoint['id']}", auth=KEY, timeout=10)
    db.remove()
    db.dispose()

    url = f"sqlite:///{tmp_path / 'second.db'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    second_app = create_app({
        "APP_ENV": "test", "TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret",
        "INSTANCE_PATH": str(tmp_path / "second"), "BASE_URL": "http://localhost", "RATELIMIT_ENABLED": False,
        "STRIPE_SECRET_KEY": "", "PASSWORD_HASH_METHOD": FAST_PASSWORD_HASH,
    })  # fmt: skip
    second_server = serve(second_app, emulator)
    try:
        second = pay_a_member_out(second_app, emulator)
    finally:
        second_server.shutdown()
    # The same row ids in both databases, yet each has its own account and its own transfer.
    assert first[2:] == second[2:]
    assert first[0] != second[0] and first[1] != second[1]
    transfers = requests.get(f"{emulator.url}/v1/transfers", auth=KEY, timeout=10).json()["data"]
    assert sorted(t["destination"] for t in transfers) == sorted([first[0], second[0]])


def test_onboarding_holds_no_database_lock_while_stripe_is_slow(live, emulator, app, api, world, session):
    override(app, stripe_timeout_seconds=10)
    app.extensions.pop("stripe_client", None)
    token = api(world.ann).token
    emulator.delay_next("/v1/account", seconds=1.5, times=2)  # Creating the account, then the link.
    answers = []
    onboarding = threading.Thread(target=lambda: answers.append(requests.post(
        live + "/api/v1/me/payout-account", headers={"Authorization": f"Bearer {token}"}, timeout=20,
    )))  # fmt: skip
    onboarding.start()
    time.sleep(0.5)
    started = time.monotonic()
    build.user(session, "Zoe Writer")  # Another member signs up meanwhile.
    waited = time.monotonic() - started
    onboarding.join()
    assert answers[0].status_code == 200 and answers[0].json()["onboarding_url"].startswith(emulator.url)
    assert waited < 1.0, f"a sign-up waited {waited:.1f}s for the onboarding request"


def test_requirements_and_failed_verification_are_said_in_words(
    live, emulator, app, api, world, session, sent_mail, browser
):
    status = onboarding_status(
        ["business_type", "external_account", "individual.dob.day", "individual.dob.month", "individual.dob.year",
         "individual.email", "tos_acceptance.date", "tos_acceptance.ip"], [], "requirements.past_due",
    )  # fmt: skip
    assert status.needs == [
        "whether you are paid as a person or as a company", "a bank account", "your date of birth",
        "your e-mail address", "acceptance of Stripe's terms",
    ]  # fmt: skip
    onboard(api(world.ann), "fail_verification")
    deliver(emulator, app)
    ann = build.logged_in(browser, world.ann)
    page = ann.get("/me/earnings").text
    assert "Verification failed." in page and "Stripe could not verify an identity document" in page
    assert "What to do:" in page and "provide an identity document once more" in page
    assert "individual." not in page and "tos_acceptance" not in page
    (mail,) = [m for m in sent_mail.to(world.ann.email) if m["Subject"] == "Your payout account needs attention"]
    text = mail.get_body(("plain",)).get_content()
    assert "Verification failed: Stripe could not verify an identity document" in text
    assert "What to do:" in text and "individual." not in text

    # The link expired: Stripe sends the member to refresh_url, which makes a new link at once.
    again = ann.get("/me/payout-account/refresh")
    assert again.status_code == 303 and again.headers["Location"].startswith(emulator.url + "/pages/onboarding/")


def test_the_lookup_before_a_resend_reads_every_page_of_the_transfer_group(live, emulator, app, api, world, session):
    requests.post(f"{emulator.url}/v1/payment_intents", auth=KEY, timeout=10, data={
        "amount": 10_000_000, "currency": "usd", "payment_method": "pm_card_bypassPending", "confirm": "true",
    }).raise_for_status()  # fmt: skip
    problem = build.problem(session, world.owner, world.company.id, "open", guarantee_days=0)
    build.accepted(session, world.owner, problem, [world.ann], world.dev)
    onboard(api(world.ann))
    db.session.commit()
    emulator.deliver_pending()
    run_jobs(app, kinds={"stripe.event"})  # The account is ready: the transfer job is written, not run.
    job = session.scalars(select(Job).where(Job.kind == "stripe.transfer")).one()
    job.first_unknown_at = utcnow() - timedelta(hours=25)  # A day of unanswered attempts.
    payload, stripe_id = job.payload, session.get(PayoutAccount, world.ann.id).stripe_id
    session.commit()

    # The attempt did reach Stripe, and a hundred later transfers of the group came after it.
    def transfer(amount, attempt):
        return requests.post(f"{emulator.url}/v1/transfers", auth=KEY, timeout=10, data={
            "amount": amount, "currency": "usd", "destination": stripe_id,
            "transfer_group": payload["transfer_group"], "metadata[attempt]": attempt,
        }).json()  # fmt: skip

    sent = transfer(payload["amount"], payload["stripe_key"])["id"]
    for n in range(100):
        transfer(1, f"other-{n}")
    run_jobs(app)
    share = session.scalars(select(Share).where(Share.member_id == world.ann.id)).one()
    assert (share.status, share.transfer_reference) == (ShareStatus.PAID, sent)
    session.rollback()
    assert len(all_transfers(emulator, payload["transfer_group"])) == 101


def all_transfers(emulator, group):
    found, after = [], None
    while True:
        params = {"transfer_group": group, "limit": 100, **({"starting_after": after} if after else {})}
        page = requests.get(f"{emulator.url}/v1/transfers", params=params, auth=KEY, timeout=10).json()
        found += page["data"]
        if not page["has_more"]:
            return found
        after = page["data"][-1]["id"]


def test_an_account_created_while_the_answer_was_lost_is_found_again_by_its_recorded_key(
    live, emulator, app, api, world, session
):
    ann = api(world.ann)
    emulator.drop_next("/v1/accounts", times=3, method="POST")  # Created at Stripe; every answer lost.
    lost = ann.post("/me/payout-account")
    assert lost.status_code == 502 and lost.json["error"]["code"] == "payment_provider"
    assert session.get(PayoutAccount, world.ann.id).stripe_id is None  # The intent, with its key.
    session.rollback()
    again = ann.post("/me/payout-account")
    assert again.status_code == 200
    (created,) = requests.get(f"{emulator.url}/v1/accounts", auth=KEY, timeout=10).json()["data"]
    assert session.get(PayoutAccount, world.ann.id).stripe_id == created["id"]
    session.rollback()
