"""A real browser (Debian's Chromium driven by Playwright) against the app served over HTTP on a
free port, with the demo's people and chains in the test database: one introduction accepted and
settled (so the earnings pages have lines; its bounty paid through Checkout, with a receipt), one
waiting for the company's decision."""

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from marketplace import demo
from marketplace.accounts import service as accounts
from marketplace.accounts.models import Company, User
from marketplace.network.models import ContactCard
from marketplace.problems.models import Problem
from marketplace.referrals import chains, introductions
from marketplace.referrals.models import Introduction, Referral
from marketplace.webhooks import service as webhooks
from marketplace.webhooks.models import DeliveryStatus, WebhookAttempt
from marketplace.workflows import settlement
from tests import builders as build

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium():
    """One browser for the run. Skipped only on a machine without Chromium outside CI; in CI
    (``CI`` set) a missing browser is a failure, not a skip."""
    if not CHROMIUM.exists() and not os.environ.get("CI"):
        pytest.skip("/usr/bin/chromium is not installed (apt-get install -y chromium); these tests need a browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def serve(app) -> Iterator[str]:
    """The app over real HTTP on a free port, in a thread; yields its base address."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def served(app) -> Iterator[str]:
    yield from serve(app)


@dataclass
class DemoWorld:
    """The demo after a little more happened; ids and links the page walks need."""

    company_id: int
    settled_problem_id: int
    deciding_problem_id: int
    private_problem_id: int
    landing_token: str
    consent_token: str
    proposed_introduction_id: int
    card_id: int
    webhook_endpoint_id: int
    ids: dict[str, int] = field(default_factory=dict)


def _user(session, key: str) -> User:
    email = next(e for e, _ in demo.LOGINS if e.startswith(key + "@"))
    user = accounts.user_by_email(session, email)
    assert user is not None
    return user


@pytest.fixture
def demo_world(app, session) -> DemoWorld:
    with app.app_context():
        demo.seed(session)
        people = {key: _user(session, key) for key in demo.PEOPLE}
        problems = {p.title: p for p in session.scalars(select(Problem))}
        replication = problems["Fix our PostgreSQL replication lag"]
        autoscaling = problems["Kubernetes autoscaling keeps flapping"]
        retention = problems["Design a data retention policy for GDPR"]
        # Acme paid the replication bounty through Checkout: its figures link the receipt.
        build.paid_at_stripe(session, replication)
        # Dev agrees and Acme accepts: the chain Ann → Bob → Cleo is settled.
        intro = session.scalars(select(Introduction).where(Introduction.problem_id == replication.id)).one()
        introductions.consent(session, intro, people["dev"], accept=True, note="Happy to help.")
        settlement.accept_introduction(session, people["olivia"], intro.id)
        # Bob introduces Erin to the autoscaling problem and she agrees: Acme has to decide.
        erin_intro = introductions.introduce(
            session, people["bob"], autoscaling.id, candidate_user_id=people["erin"].id,
            message="Erin has tuned HPAs for a living for years.",
        )  # fmt: skip
        introductions.consent(session, erin_intro, people["erin"], accept=True, note="")
        # A link Ann sent that nobody claimed yet (a visitor's landing page), and one to Dev.
        to_dev = chains.forward(session, people["bob"], autoscaling.id, to_email="dev@example.com", note="Dev?")
        consent_intro = introductions.introduce(
            session, people["bob"], autoscaling.id, candidate_email="gina@example.com", candidate_name="Gina",
            message="Gina ran the cluster at her last job.",
        )  # fmt: skip
        company = session.scalars(select(Company)).one()
        # Acme's CRM hears of its problems; one test ping is in the delivery log, answered.
        endpoint, _ = webhooks.create_endpoint(
            session, people["olivia"], company.id, url="https://crm.acme.example.com/hooks/marketplace-events",
            event_types=list(webhooks.EVENT_TYPES),
        )  # fmt: skip
        ping = webhooks.ping(session, people["olivia"], company.id, endpoint.id)
        ping.status = DeliveryStatus.SUCCEEDED
        session.add(
            WebhookAttempt(
                delivery_id=ping.id,
                request_headers={"webhook-id": ping.webhook_id, "webhook-signature": "v1," + "A" * 44},
                request_body=webhooks.body_of(ping).decode(), response_status=200, response_body='{"ok": true}',
                duration_ms=42, succeeded=True,
            )
        )  # fmt: skip
        frank = session.scalars(select(Referral).where(Referral.recipient_email == "frank@example.com")).one()
        world = DemoWorld(
            company_id=company.id,
            settled_problem_id=replication.id,
            deciding_problem_id=autoscaling.id,
            private_problem_id=retention.id,
            landing_token=frank.token,
            consent_token=consent_intro.consent_token,
            proposed_introduction_id=erin_intro.id,
            card_id=session.scalars(select(ContactCard.id)).first(),
            webhook_endpoint_id=endpoint.id,
            ids={key: user.id for key, user in people.items()},
        )
        assert to_dev.token
        session.commit()
    return world


def publish_problem(page) -> int:
    """On the new-problem form: a $2,000 problem for a Postgres expert, published at once (so
    awaiting payment, with no guarantee period); returns its id from the page it lands on."""
    page.fill("input[name=title]", "Fix our Postgres replication lag")
    page.fill("textarea[name=description]", "Replicas fall minutes behind at peak hours; we need an expert.")
    page.fill("input[name=skills]", "PostgreSQL, replication")
    page.fill("input[name=bounty]", "2000")
    page.fill("input[name=guarantee_days]", "0")
    page.get_by_role("button", name="Publish").click()
    return int(re.search(r"/problems/(\d+)", page.url).group(1))


def log_in(context, base: str, email: str, password: str = demo.PASSWORD) -> None:
    """Log in through the form, as a person does; the context keeps the session cookie."""
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()[:2000]
    page.close()
