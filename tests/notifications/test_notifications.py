"""Notifications reach exactly the right people, once, through a real SMTP server on loopback;
preferences and digests are respected; a worker killed mid-send resends with the same Message-ID;
bad addresses and a failing server are retried, then parked, and never block the workflow."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from marketplace import create_app
from marketplace.accounts import service as accounts
from marketplace.config import override
from marketplace.db import db, utcnow
from marketplace.errors import ValidationError
from marketplace.jobs import service as jobs
from marketplace.jobs.models import Job, JobStatus
from marketplace.notifications import service as notifications
from marketplace.notifications.models import Delivery, DigestSchedule, Notification
from marketplace.problems import service as problems
from marketplace.problems.models import Problem
from marketplace.referrals import chains, introductions
from marketplace.workflows import funding
from marketplace.workflows import settlement as settlement_workflow
from tests import builders as build
from tests.conftest import FAST_PASSWORD_HASH

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Recorder:
    """An aiosmtpd handler that keeps every accepted message and can refuse chosen recipients."""

    def __init__(self):
        self.messages = []
        self.refuse = set()
        self.on_message = None
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
        if self.on_message is not None:
            self.on_message(message)
        return "250 Message accepted for delivery"

    def to(self, address):
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp():
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{controller.port}"
    yield recorder
    controller.stop()


@pytest.fixture
def mail_app(app, smtp):
    """The app of the test, sending through the loopback SMTP server."""
    override(app, mail_url=smtp.url)
    return app


def deliver(app):
    db.session.commit()
    with app.app_context():
        return jobs.work_once(db.session, "test-worker", kinds={"email.send"})


def new_mail(app, smtp, since: int):
    deliver(app)
    return smtp.messages[since:]


def text(message) -> str:
    return message.get_body(("plain",)).get_content()


def link_in(message, prefix: str) -> str:
    match = re.search(r"http://localhost(" + re.escape(prefix) + r"\S*)", text(message))
    assert match, text(message)
    return match.group(1)


def test_each_step_of_the_workflow_mails_exactly_the_right_people_once(mail_app, smtp, session, world, api, client):
    app = mail_app
    seen = len(new_mail(app, smtp, 0))

    def step(action):
        nonlocal seen
        action()
        fresh = new_mail(app, smtp, seen)
        seen += len(fresh)
        return sorted((m["To"], m["Subject"]) for m in fresh), fresh

    problem = problems.create_problem(
        session, world.owner, world.company.id,
        problems.ProblemInput(
            title="Fix our Postgres replication lag", description="Replicas fall minutes behind at peak hours.",
            skills=["postgres"], bounty_amount=100_000, expires_at=utcnow() + timedelta(days=30),
        ),
        publish=True, platform_fee_bps=1000,
    )  # fmt: skip
    session.commit()

    sent, _ = step(lambda: funding.fund_problem(session, problem.id))
    assert sent == [(world.admin.email, "“Fix our Postgres replication lag” is funded and open"),
                    (world.owner.email, "“Fix our Postgres replication lag” is funded and open")]  # fmt: skip

    sent, _ = step(lambda: chains.pick_from_board(session, world.ann, problem.id))
    assert sent == []

    to_bob = None

    def forward_to_bob():
        nonlocal to_bob
        to_bob = chains.forward(session, world.ann, problem.id, to_email="bob@example.com", note="You know DBAs")

    sent, fresh = step(forward_to_bob)
    assert sent == [("bob@example.com", "Ann Li thinks you can help: Fix our Postgres replication lag")]
    body = text(fresh[0])
    assert "You know DBAs" in body and "Bounty: $1,000.00" in body
    # Bob would be link 2: as finder P − f = $900 − $45; as a link above a finder, the flat fee.
    assert "Introduce the expert yourself and you receive $855.00." in body
    assert "you receive at least $45.00" in body
    assert client.get(link_in(fresh[0], "/r/")).status_code == 200
    assert fresh[0]["List-Unsubscribe"].startswith("<http://localhost/notifications/unsubscribe/")

    sent, _ = step(lambda: chains.claim(session, world.bob, to_bob.token))
    assert sent == [("ann@example.com", "Your chain for “Fix our Postgres replication lag” grew")]

    to_cleo = None

    def forward_to_cleo():
        nonlocal to_cleo
        to_cleo = chains.forward(session, world.bob, problem.id, to_user_id=world.cleo.id)

    sent, _ = step(forward_to_cleo)
    assert sent == [
        ("ann@example.com", "Your chain for “Fix our Postgres replication lag” grew"),
        ("cleo@example.com", "Bob Martins thinks you can help: Fix our Postgres replication lag"),
    ]

    sent, _ = step(lambda: chains.claim(session, world.cleo, to_cleo.token))
    assert sorted(to for to, _ in sent) == ["ann@example.com", "bob@example.com"]

    introduction = None

    def introduce():
        nonlocal introduction
        introduction = introductions.introduce(
            session,
            world.cleo,
            problem.id,
            candidate_email="expert@elsewhere.example",
            candidate_name="Dee",
            message="Dee fixed this at her last job.",
        )

    sent, fresh = step(introduce)
    assert sent == [("expert@elsewhere.example", "Cleo Duarte would like to introduce you to Acme Data")]
    assert "List-Unsubscribe" not in fresh[0]  # consent requests cannot be switched off
    consent_page = link_in(fresh[0], "/i/")
    assert client.get(consent_page).status_code == 200

    note = "Happy to talk any afternoon next week."
    sent, fresh = step(lambda: introductions.consent(session, introduction, None, accept=True, note=note))
    assert sorted(to for to, _ in sent) == [world.admin.email, world.owner.email]
    assert all(f"Dee adds: {note}" in text(message) for message in fresh)  # the expert's note reaches the company

    sent, fresh = step(lambda: settlement_workflow.accept_introduction(session, world.owner, introduction.id))
    # Each link hears what they earned: $900 after the fee, $45 per forwarding link, the rest to Cleo.
    # The expert hears the answer and what happens next.
    assert sent == [
        ("ann@example.com", "You earned $45.00 for “Fix our Postgres replication lag”"),
        ("bob@example.com", "You earned $45.00 for “Fix our Postgres replication lag”"),
        ("cleo@example.com", "You earned $810.00 for “Fix our Postgres replication lag”"),
        ("expert@elsewhere.example", "Acme Data accepted your introduction for “Fix our Postgres replication lag”"),
    ]
    to_expert = next(m for m in fresh if m["To"] == "expert@elsewhere.example")
    assert "will contact you at expert@elsewhere.example" in text(to_expert)
    assert "List-Unsubscribe" not in to_expert

    # In the app, too: Cleo's bell counts what reached her.
    cleo = api(world.cleo)
    inbox = cleo.get("/me/notifications").json
    assert inbox["unread"] == len(inbox["items"]) >= 2
    assert cleo.post("/me/notifications/read", {}).json == {"marked": inbox["unread"], "unread": 0}


def test_company_hears_about_closing_expiring_and_expired_problems(mail_app, smtp, session, world, open_problem):
    problem = open_problem()
    seen = len(new_mail(mail_app, smtp, 0))
    session.execute(update(Problem).where(Problem.id == problem.id).values(expires_at=utcnow() + timedelta(days=2)))
    session.commit()
    with mail_app.app_context():
        jobs.run_periodic(db.session)
        jobs.run_periodic(db.session)  # Twice: the warning still goes out once.
    fresh = new_mail(mail_app, smtp, seen)
    assert sorted(m["To"] for m in fresh) == [world.admin.email, world.owner.email]
    assert all(m["Subject"].startswith("“Fix our Postgres replication lag” closes on") for m in fresh)
    seen += len(fresh)

    session.execute(update(Problem).where(Problem.id == problem.id).values(expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    funding.expire_due(session)
    fresh = new_mail(mail_app, smtp, seen)
    assert sorted((m["To"], m["Subject"]) for m in fresh) == [
        (world.admin.email, "“Fix our Postgres replication lag” is expired"),
        (world.owner.email, "“Fix our Postgres replication lag” is expired"),
    ]


def test_invitation_and_password_reset_are_mailed_with_working_links(mail_app, smtp, session, world, browser):
    accounts.invite(session, world.owner, world.company.id, email="newhire@elsewhere.example", role="employee")
    accounts.request_password_reset(session, world.ann.email)
    fresh = new_mail(mail_app, smtp, 0)
    invitation = [m for m in fresh if m["To"] == "newhire@elsewhere.example"]
    reset = [m for m in fresh if m["To"] == "ann@example.com"]
    assert len(invitation) == 1 and len(reset) == 1
    visitor = browser()
    assert "invites you to join Acme Data" in visitor.get(link_in(invitation[0], "/invitations/")).text
    page = visitor.submit(
        link_in(reset[0], "/password/reset/"), {"password": "a-new-password", "confirm": "a-new-password"}
    )
    assert "Your password is changed" in page.text


def test_preferences_off_and_digest_and_the_daily_digest(mail_app, smtp, session, world, open_problem):
    notifications.set_preference(session, world.ann, "chain_grew", "off")
    notifications.set_preference(session, world.ann, "share_settled", "digest")
    notifications.set_digest_hour(session, world.ann, 7)
    with pytest.raises(ValidationError):
        notifications.set_preference(session, world.ann, "introduction_consent", "off")
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    to_bob = chains.forward(session, world.ann, problem.id, to_user_id=world.bob.id)
    chains.claim(session, world.bob, to_bob.token)
    introduction = introductions.introduce(
        session, world.bob, problem.id, candidate_user_id=world.bob.id, message="I have done this before, twice."
    )
    settlement_workflow.accept_introduction(session, world.owner, introduction.id)
    session.commit()
    deliver(mail_app)
    assert smtp.to("ann@example.com") == []  # chain grew: off; her share: in the digest
    kinds = {n.kind for n in session.scalars(select(Notification).where(Notification.user_id == world.ann.id))}
    assert kinds == {"chain_grew", "share_settled"}  # still in the app

    morning = utcnow().replace(hour=7, minute=0)
    assert notifications.send_digests(session, now=morning.replace(hour=6)) == 0
    assert notifications.send_digests(session, now=morning) == 1
    assert notifications.send_digests(session, now=morning + timedelta(minutes=30)) == 0
    deliver(mail_app)
    digest = smtp.to("ann@example.com")
    assert len(digest) == 1 and digest[0]["Subject"] == "Your daily digest: 1 update"
    assert "You earned $45.00" in text(digest[0])


def test_unsubscribe_link_turns_that_kind_off(mail_app, smtp, session, world, open_problem, browser):
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    chains.forward(session, world.ann, problem.id, to_user_id=world.bob.id)
    message = new_mail(mail_app, smtp, 0)[-1]
    assert message["To"] == "bob@example.com"
    url = re.search(r"<http://localhost(\S+)>", message["List-Unsubscribe"]).group(1)
    bob = browser()
    page = bob.submit(url)
    assert "no more e-mails" in page.text
    session.expire_all()
    assert notifications.preferences(session, world.bob)["referral_received"].value == "off"


def test_a_refused_address_is_parked_at_once_and_the_workflow_goes_on(
    mail_app, smtp, session, world, open_problem, api
):
    smtp.refuse.add("nobody@elsewhere.example")
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    session.commit()
    response = api(world.ann).post(f"/problems/{problem.id}/referrals", {"to_email": "nobody@elsewhere.example"})
    assert response.status_code == 201
    deliver(mail_app)
    job = session.scalars(select(Job).where(Job.payload["to"].as_string() == "nobody@elsewhere.example")).one()
    assert job.status == JobStatus.PARKED and "550" in job.last_error


def test_a_failing_smtp_server_is_retried_with_backoff_then_parked(app, session, world, open_problem):
    override(app, mail_url=f"smtp://127.0.0.1:{free_port()}")  # Nothing listens there.
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    chains.forward(session, world.ann, problem.id, to_email="friend@elsewhere.example")
    session.commit()
    job = session.scalars(select(Job).where(Job.payload["to"].as_string() == "friend@elsewhere.example")).one()
    for attempt in range(1, job.max_attempts + 1):
        deliver(app)
        session.expire_all()
        job = session.get(Job, job.id)
        assert job.attempts == attempt and "SMTP server unavailable" in job.last_error
        if job.status == JobStatus.PENDING:
            assert job.run_after > utcnow()
            session.execute(update(Job).where(Job.id == job.id).values(run_after=utcnow()))
            session.commit()
    assert job.status == JobStatus.PARKED
    assert session.get(Problem, problem.id).status.value == "open"


def test_a_worker_killed_after_the_server_accepted_resends_once_with_the_same_message_id(
    database_url, tmp_path, smtp, session
):
    """A real worker process is killed the moment the SMTP server has the message, before the
    job is marked done; a new worker takes the job over when its lease runs out."""
    instance = tmp_path / "instance"
    worker_env = dict(os.environ, DATABASE_URL=database_url, MAIL_URL=smtp.url, JOB_LEASE_SECONDS="1",
                      INSTANCE_PATH=str(instance), SECRET_KEY="test-secret", FLASK_APP="wsgi.py")  # fmt: skip
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "INSTANCE_PATH": str(instance),
                      "SECRET_KEY": "test-secret", "RATELIMIT_ENABLED": False,
                      "PASSWORD_HASH_METHOD": FAST_PASSWORD_HASH})  # fmt: skip
    ann = accounts.register(session, email="ann@example.com", password="correct-horse", name="Ann Li")
    accounts.request_password_reset(session, ann.email)
    session.commit()

    def start_worker():
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "worker", "--interval", "0.2"],
            cwd=ROOT,
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "worker.log", "ab"),
        )

    first = start_worker()
    smtp.on_message = lambda message: os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=60) == -signal.SIGKILL
    assert len(smtp.messages) == 1
    session.rollback()
    assert session.scalars(select(Job)).one().status == JobStatus.RUNNING  # Never marked done.
    session.rollback()  # Reading must not hold the lock the next worker needs.

    smtp.on_message = None
    second = start_worker()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            session.rollback()
            done = session.scalars(select(Job)).one().status == JobStatus.DONE
            session.rollback()
            if done:
                break
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    session.rollback()
    assert session.scalars(select(Job)).one().status == JobStatus.DONE
    assert len(smtp.messages) == 2
    assert smtp.messages[0]["Message-ID"] == smtp.messages[1]["Message-ID"]
    app.extensions["database"].dispose()


@pytest.mark.parametrize(
    ("days", "says"),
    [(0, "There is no guarantee period: your share is yours now"), (30, "Your share is held for the 30-day guarantee")],
)
def test_a_settled_share_is_described_as_the_problem_holds_it(session, world, open_problem, days, says):
    """Without a guarantee period the share is the member's at once: never "held for the 0-day
    guarantee period"."""
    from tests import builders as build

    problem = open_problem(guarantee_days=days)
    build.accepted(session, world.owner, problem, [world.ann, world.bob, world.cleo])

    settled = session.scalars(
        select(Notification).where(Notification.user_id == world.ann.id, Notification.kind == "share_settled")
    ).one()
    assert says in settled.body and " 0-day" not in settled.body


def test_the_inbox_page_lists_the_members_notifications_newest_first_unread_marked_new(session, world, browser):
    for number in (1, 2, 3):
        notifications.notify(
            session,
            world.ann,
            "chain_grew",
            f"inbox:{number}",
            notifications.Message(f"News {number}", f"Line {number}"),
        )
    notifications.notify(session, world.bob, "chain_grew", "inbox:bob", notifications.Message("Bob's news"))
    session.flush()
    first = session.scalars(select(Notification).where(Notification.event_key == "inbox:1")).one()
    notifications.mark_read(session, world.ann, [first.id])
    session.commit()

    page = build.logged_in(browser, world.ann).get("/notifications").text

    assert [int(n) for n in re.findall(r"News (\d)", page)] == [3, 2, 1]
    assert "Bob's news" not in page
    assert page.count(">new</span>") == 2 and re.search(r">new</span>News 1", page) is None
    assert "Line 2" in page and utcnow().strftime("%d %b %Y") in page


def test_the_settings_page_saves_the_digest_hour_and_refuses_one_that_is_not_an_hour(browser, session, world):
    """Typed into the form or crafted, an hour that is not a whole number from 0 to 23 is a 4xx
    that changes nothing (``"²"`` passed ``str.isdigit`` and failed ``int``: a 500)."""
    ann = browser()
    ann.login("ann@example.com")
    saved = ann.submit("/notifications/settings", {"digest_hour": "7"})
    assert saved.status_code == 200 and "Notification settings saved." in saved.text

    for hour in ("²", "24", "seven", "-1", "99999999999999999999"):
        answer = ann.submit("/notifications/settings", {"digest_hour": hour, "chain_grew": "digest"})
        assert answer.status_code in (400, 422), (hour, answer.status_code)
    session.expire_all()
    assert session.get(DigestSchedule, world.ann.id).hour_utc == 7
    assert notifications.preferences(session, world.ann)["chain_grew"] == Delivery.IMMEDIATELY
