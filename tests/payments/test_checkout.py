"""Nothing the company pays is lost: a payment whose webhook never came is found by the success
page or the periodic sweep (and refunded if the problem closed meanwhile); `make run` keeps its
webhook endpoints across restarts; bank debits that fail close their attempt; idempotency keys
never collide with another database on the same Stripe account; no database lock is held while
Stripe is slow; `flask stripe reconcile` works from Stripe's side and on data it does not know.
All against the emulator through the official SDK."""

import logging
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from devtools import run_local
from devtools.stripe_emulator import Emulator
from marketplace.config import override
from marketplace.db import db, utcnow
from marketplace.ledger.models import LedgerTransaction
from marketplace.ledger.settlement import fund_key
from marketplace.models import metadata
from marketplace.payments import service
from marketplace.payments.models import CheckoutSession
from tests import builders as build
from tests.payments import test_payments as money_loop
from tests.payments.test_payments import ROOT, deliver, pay, post_problem, run_jobs, status_of

# The money loop's fixtures: the emulator and the app served over HTTP, pointed at it.
emulator, live = money_loop.emulator, money_loop.live

KEY = "sk_test_marketplace"


def lose_webhooks(emulator):
    """The app's endpoints are replaced, as `make run` used to do on every start: what Stripe had
    queued for them is gone."""
    for endpoint in requests.get(f"{emulator.url}/v1/webhook_endpoints", auth=(KEY, ""), timeout=10).json()["data"]:
        requests.delete(f"{emulator.url}/v1/webhook_endpoints/{endpoint['id']}", auth=(KEY, ""), timeout=10)
    assert emulator.pending_webhooks() == []


def checkout_row(session, stripe_id):
    """The attempt's row as it is now, detached, so that reading it holds no database lock."""
    session.rollback()
    row = session.scalar(
        select(CheckoutSession).where(CheckoutSession.stripe_id == stripe_id).execution_options(populate_existing=True)
    )
    session.expunge(row)
    session.rollback()
    return row


def sweep(app, minutes_later=6):
    """The worker's periodic sweep, as it runs a few minutes after the payment."""
    db.session.commit()
    with app.app_context():
        outcomes = service.sweep_checkouts(db.session, now=utcnow() + timedelta(minutes=minutes_later))
        db.session.commit()
    return outcomes


def logged_in(browser, user):
    email = user.email
    db.session.rollback()  # Reading the user may have begun a transaction: never hold it during a request.
    visitor = browser()
    assert visitor.login(email).status_code == 200
    return visitor


def success_page(visitor, location):
    """Follow Stripe's redirect to the success page (the live server's address, on the test client)."""
    parts = urlsplit(location)
    return visitor.get(f"{parts.path}?{parts.query}", follow_redirects=True)


def funded_in_ledger(session, problem_id):
    session.rollback()
    found = session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == fund_key(problem_id)))
    session.rollback()
    return found is not None


def test_a_lost_webhook_is_found_by_the_success_page(live, emulator, app, api, world, session, browser, runner):
    owner = api(world.owner)
    problem_id = post_problem(owner, world.company.id)
    checkout = owner.post(f"/problems/{problem_id}/checkout").json
    paid = pay(checkout["checkout_url"])
    lose_webhooks(emulator)

    page = success_page(logged_in(browser, world.owner), paid.headers["Location"])
    assert page.status_code == 200 and "the problem is open to referrals" in page.text
    assert status_of(session, problem_id) == "open" and funded_in_ledger(session, problem_id)
    row = checkout_row(session, checkout["session_id"])
    assert row.status == "complete" and row.payment_intent_id.startswith("pi_")

    # The webhook arriving after all (or the page loaded twice) changes nothing.
    again = success_page(logged_in(browser, world.owner), paid.headers["Location"])
    assert again.status_code == 200
    run_jobs(app)
    reconciled = runner.invoke(args=["stripe", "reconcile"])
    assert reconciled.exit_code == 0 and "the ledger and Stripe agree" in reconciled.output, reconciled.output


def test_the_sweep_funds_a_payment_nobody_reported_and_fund_never_offers_a_dead_session(
    live, emulator, app, api, world, session, runner
):
    owner, company_id = api(world.owner), world.company.id
    problem_id = post_problem(owner, company_id)
    first = owner.post(f"/problems/{problem_id}/checkout").json
    assert pay(first["checkout_url"]).status_code == 303
    lose_webhooks(emulator)
    assert status_of(session, problem_id) == "awaiting_payment"

    reconciled = runner.invoke(args=["stripe", "reconcile"])
    assert reconciled.exit_code == 1, reconciled.output
    assert "was never recorded: the attempt is still open" in reconciled.output
    assert "What to do: run `flask stripe sweep`" in reconciled.output

    assert sweep(app, minutes_later=1) == {}  # Too young: the webhook may still come.
    swept = runner.invoke(args=["stripe", "sweep"])  # What the worker does five minutes on, now.
    assert swept.exit_code == 0 and "complete" in swept.output, swept.output
    assert status_of(session, problem_id) == "open" and funded_in_ledger(session, problem_id)
    run_jobs(app)
    reconciled = runner.invoke(args=["stripe", "reconcile"])
    assert reconciled.exit_code == 0, reconciled.output

    # Another problem: its session expires at Stripe and the webhook is lost; "Fund" makes a new one.
    other = post_problem(owner, company_id)
    stale = owner.post(f"/problems/{other}/checkout").json
    lose_webhooks(emulator)
    emulator.advance_time(25 * 3600)
    fresh = owner.post(f"/problems/{other}/checkout")
    assert fresh.status_code == 201 and fresh.json["session_id"] != stale["session_id"]
    assert requests.get(fresh.json["checkout_url"], timeout=10).status_code == 200
    assert checkout_row(session, stale["session_id"]).status == "expired"

    # Paid, webhook lost, and the company clicks "Fund" again: the payment is found, not a dead page.
    assert pay(fresh.json["checkout_url"]).status_code == 303
    again = owner.post(f"/problems/{other}/checkout")
    assert again.status_code == 409 and "open" in again.json["error"]["message"]
    assert status_of(session, other) == "open"


def test_a_payment_found_after_the_problem_was_cancelled_is_refunded(live, emulator, app, api, world, session, runner):
    owner = api(world.owner)
    problem_id = post_problem(owner, world.company.id)
    checkout = owner.post(f"/problems/{problem_id}/checkout").json
    assert pay(checkout["checkout_url"]).status_code == 303
    lose_webhooks(emulator)
    assert owner.post(f"/problems/{problem_id}/cancel").status_code == 200
    run_jobs(app)  # Closing the problem's open session at Stripe finds it already complete.

    assert list(sweep(app).values()) == ["refunded"]
    run_jobs(app)
    refunds = requests.get(f"{emulator.url}/v1/refunds", auth=(KEY, ""), timeout=10).json()["data"]
    assert [(r["amount"], r["payment_intent"]) for r in refunds] == [
        (200_000, checkout_row(session, checkout["session_id"]).payment_intent_id)
    ]
    assert status_of(session, problem_id) == "cancelled" and not funded_in_ledger(session, problem_id)
    reconciled = runner.invoke(args=["stripe", "reconcile"])
    assert reconciled.exit_code == 0, reconciled.output


def test_a_restarted_make_run_keeps_its_endpoints_and_delivers_what_was_queued(
    live, app, api, world, session, tmp_path
):
    state, instance = tmp_path / "stripe-emulator.json", tmp_path / "instance"
    stripe = Emulator(state_file=str(state), auto_deliver=False).start(port=0)
    port = urlsplit(stripe.url).port
    try:
        secrets = run_local.register_webhooks(stripe.url, live, str(instance))
        override(app, stripe_api_base=stripe.url, stripe_webhook_secret=secrets)
        app.extensions.pop("stripe_client", None)
        owner = api(world.owner)
        problem_id = post_problem(owner, world.company.id)
        checkout = owner.post(f"/problems/{problem_id}/checkout").json
        # The web process is down while the company pays: the webhook waits at Stripe.
        assert pay(checkout["checkout_url"]).status_code == 303
        queued = stripe.pending_webhooks()
        assert queued
    finally:
        stripe.stop()

    # `make run` again: the emulator reloads its state, and the app keeps the same endpoints.
    stripe = Emulator(state_file=str(state), auto_deliver=False).start(port=port)
    try:
        assert run_local.register_webhooks(stripe.url, live, str(instance)) == secrets
        assert len(stripe.pending_webhooks()) == len(queued)
        deliver(stripe, app)
        assert status_of(session, problem_id) == "open"
    finally:
        stripe.stop()

    # An emulator that lost its state gets new endpoints (and the file new secrets).
    stripe = Emulator(auto_deliver=False).start(port=0)
    try:
        renewed = run_local.register_webhooks(stripe.url, live, str(instance))
        assert renewed != secrets and run_local.register_webhooks(stripe.url, live, str(instance)) == renewed
        assert oct((instance / run_local.WEBHOOKS_FILE).stat().st_mode & 0o777) == "0o600"
    finally:
        stripe.stop()


@pytest.mark.parametrize("shuffled", [False, True])
def test_a_failed_bank_debit_closes_its_attempt_and_a_new_checkout_funds(
    live, emulator, app, api, world, session, shuffled
):
    emulator.configure(shuffle_deliveries=shuffled)
    owner = api(world.owner)
    problem_id = post_problem(owner, world.company.id)
    first = owner.post(f"/problems/{problem_id}/checkout").json
    debit = requests.post(
        first["checkout_url"], data={"payment_method_type": "us_bank_account"}, allow_redirects=False, timeout=10
    )
    assert debit.status_code == 303
    deliver(emulator, app)
    assert checkout_row(session, first["session_id"]).status == "processing"
    waiting = owner.post(f"/problems/{problem_id}/checkout")
    assert waiting.status_code == 409 and "bank payment" in waiting.json["error"]["message"]

    emulator.settle_checkout(first["session_id"], succeed=False)
    deliver(emulator, app)
    failed = checkout_row(session, first["session_id"])
    assert failed.status == "failed" and failed.payment_intent_id.startswith("pi_")
    assert failed.last_error == "The bank account could not be debited."
    assert status_of(session, problem_id) == "awaiting_payment"

    second = owner.post(f"/problems/{problem_id}/checkout")
    assert second.status_code == 201 and second.json["session_id"] != first["session_id"]
    assert pay(second.json["checkout_url"]).status_code == 303
    deliver(emulator, app)
    assert status_of(session, problem_id) == "open"


def test_a_declined_card_is_matched_by_its_payment_intent_and_the_page_stays_open(
    live, emulator, app, api, world, session
):
    owner = api(world.owner)
    problem_id = post_problem(owner, world.company.id)
    checkout = owner.post(f"/problems/{problem_id}/checkout").json
    pay(checkout["checkout_url"], "4000000000000002")
    deliver(emulator, app)
    row = checkout_row(session, checkout["session_id"])
    assert row.status == "open" and row.payment_intent_id.startswith("pi_") and "declined" in row.last_error
    assert owner.post(f"/problems/{problem_id}/checkout").json["session_id"] == checkout["session_id"]


def test_a_second_database_on_the_same_stripe_account_funds_its_own_problems(
    live, emulator, app, api, world, session, browser
):
    def fund_through_checkout(owner_user, company_id):
        owner = api(owner_user)
        problem_id = post_problem(owner, company_id)
        created = owner.post(f"/problems/{problem_id}/checkout")
        assert created.status_code == 201, created.json
        paid = pay(created.json["checkout_url"])
        assert paid.status_code == 303
        success_page(logged_in(browser, owner_user), paid.headers["Location"])
        assert status_of(session, problem_id) == "open"
        return problem_id, created.json["session_id"]

    first_problem, first_session = fund_through_checkout(world.owner, world.company.id)

    # The database is reset (or a restore, or staging beside development): ids start again,
    # while Stripe remembers every key it saw.
    db.remove()
    metadata.drop_all(db.engine)
    metadata.create_all(db.engine)
    owner = build.user(session, "Olivia Owner", "olivia@acme.example.com")
    company = build.company(session, owner, name="Acme Data")
    session.commit()

    second_problem, second_session = fund_through_checkout(owner, company.id)
    assert second_problem == first_problem and second_session != first_session


def test_checkout_creation_holds_no_database_lock_while_stripe_is_slow(live, emulator, app, api, world, session):
    override(app, stripe_timeout_seconds=10)
    app.extensions.pop("stripe_client", None)
    owner_token = api(world.owner).token
    problem_id = post_problem(api(world.owner), world.company.id)
    ann_token = api(world.ann).token
    requests.post(
        f"{emulator.url}/_emulator/delay_next",
        json={"path": "/v1/checkout/sessions", "seconds": 3, "times": 1},
        timeout=10,
    ).raise_for_status()
    session.commit()
    created = {}

    def fund():
        created["response"] = requests.post(
            f"{live}/api/v1/problems/{problem_id}/checkout",
            headers={"Authorization": f"Bearer {owner_token}"},
            json={},
            timeout=30,
        )

    funding = threading.Thread(target=fund)
    funding.start()
    time.sleep(0.8)  # The checkout request is waiting for Stripe now.
    started = time.monotonic()
    card = requests.post(
        f"{live}/api/v1/me/cards",
        headers={"Authorization": f"Bearer {ann_token}"},
        json={"name": "Grace Hopper"},
        timeout=30,
    )
    elapsed = time.monotonic() - started
    assert "response" not in created  # Stripe had not answered yet.
    funding.join(timeout=30)
    assert card.status_code == 201 and elapsed < 1.5, (card.status_code, elapsed)
    assert created["response"].status_code == 201, created["response"].text


def test_reconcile_reports_a_charge_the_app_never_recorded_and_an_unknown_payment_intent(
    live, emulator, app, api, world, session, runner, browser
):
    owner = api(world.owner)
    problem_id = post_problem(owner, world.company.id)
    checkout = owner.post(f"/problems/{problem_id}/checkout").json
    success_page(logged_in(browser, world.owner), pay(checkout["checkout_url"]).headers["Location"])
    run_jobs(app)
    stray = requests.post(
        f"{emulator.url}/v1/payment_intents",
        data={"amount": 5000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true",
              "metadata[problem_id]": "999", "metadata[checkout]": "made-elsewhere"},
        auth=(KEY, ""), timeout=10,
    ).json()  # fmt: skip
    session.rollback()
    row = session.scalar(select(CheckoutSession).where(CheckoutSession.stripe_id == checkout["session_id"]))
    row.payment_intent_id = "pi_unknown_to_stripe"
    session.commit()

    reconciled = runner.invoke(args=["stripe", "reconcile"])
    assert reconciled.exit_code == 1 and "Traceback" not in reconciled.output, reconciled.output
    assert f"Stripe charge {stray['latest_charge']} of $50.00" in reconciled.output
    assert "matches no checkout in this database. What to do:" in reconciled.output
    assert "Stripe cannot show its payment pi_unknown_to_stripe" in reconciled.output


def test_commands_without_stripe_variables_talk_to_the_local_emulator(emulator, database_url, tmp_path):
    stray = requests.post(
        f"{emulator.url}/v1/payment_intents",
        data={"amount": 5000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true",
              "metadata[problem_id]": "1"},
        auth=(KEY, ""), timeout=10,
    ).json()  # fmt: skip
    env = {name: value for name, value in os.environ.items() if not name.startswith("STRIPE_")}
    env.update(
        APP_ENV="development", FLASK_APP="wsgi.py", DATABASE_URL=database_url, INSTANCE_PATH=str(tmp_path / "cli"),
        SECRET_KEY="test-secret", STRIPE_EMULATOR_PORT=str(urlsplit(emulator.url).port),
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "flask", "stripe", "reconcile"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and f"Stripe charge {stray['latest_charge']}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_retry_after_an_unknown_outcome_gets_the_same_session_and_a_reused_key_is_refused_clearly(
    live, emulator, app, api, world, session, caplog, monkeypatch
):
    # A tool run in-process earlier (import-linter) may have disabled the loggers that existed then.
    monkeypatch.setattr(logging.getLogger("marketplace.payments.service"), "disabled", False)
    problem_id = post_problem(api(world.owner), world.company.id)
    emulator.drop_next("/v1/checkout/sessions", times=3)  # Made at Stripe; no answer reaches us.
    lost = api(world.owner).post(f"/problems/{problem_id}/checkout")
    assert lost.status_code == 502 and lost.json["error"]["code"] == "payment_provider"

    # Another manager retries: the attempt's own parameters go out again under its key.
    retried = api(world.admin).post(f"/problems/{problem_id}/checkout")
    assert retried.status_code == 201, retried.json
    made = requests.get(f"{emulator.url}/v1/checkout/sessions", auth=(KEY, ""), timeout=10).json()["data"]
    assert [(s["id"], s["customer_email"]) for s in made] == [(retried.json["session_id"], "olivia@acme.example.com")]

    # A key reused with other parameters (only a bug could do it) is refused at once, logged, and
    # ends the attempt: the next click starts a new one.
    session.rollback()
    row = session.scalar(select(CheckoutSession).where(CheckoutSession.problem_id == problem_id))
    row.status, row.stripe_id, row.request = "creating", None, {**row.request, "customer_email": "x@example.com"}
    session.commit()
    refused = api(world.admin).post(f"/problems/{problem_id}/checkout")
    assert refused.status_code == 502 and "idempotency key reused" in refused.json["error"]["message"]
    assert "idempotency key reused with other parameters" in caplog.text
    assert checkout_row(session, None).status == "failed"
    fresh = api(world.admin).post(f"/problems/{problem_id}/checkout")
    assert fresh.status_code == 201 and fresh.json["session_id"] != retried.json["session_id"]
