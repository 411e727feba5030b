"""Two app servers and two workers on one PostgreSQL database, as on several hosts.

The whole money loop runs through real processes: gunicorn serves the app twice, two
``flask worker`` processes share the outbox, and the Stripe emulator delivers its signed webhooks
to one server or the other. Every request goes to the next server in turn, so each step reads
what the other process wrote: bearer tokens, signed session cookies and CSRF tokens, the reach
index (kept by each process from the change log), the problem's state. The outcome must be
exactly the one a single process gives: one transfer per share at Stripe, a balanced ledger,
every verification passing.

SQLite is skipped: it is one file on one host, not an engine several machines share.
"""

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import stripe
from sqlalchemy import func, select

from devtools.stripe_emulator import Emulator
from marketplace.accounts import service as accounts
from marketplace.config import override
from marketplace.jobs.models import Job, JobStatus
from marketplace.ledger.models import LedgerAccount, LedgerEntry, Share, ShareStatus
from marketplace.ledger.settlement import split_for
from marketplace.payments.models import PayoutAccount
from marketplace.problems.models import Problem
from tests.builders import PASSWORD
from tests.conftest import POSTGRES, csrf_token
from tests.network.test_reach import expected_reach

pytestmark = pytest.mark.skipif(
    not POSTGRES,
    reason="scale-out needs a database several hosts share: set TEST_DATABASE_URL=postgresql://...",
)

ROOT = Path(__file__).resolve().parents[2]
PORTS = range(5200, 5300)
STRIPE_KEY = "sk_test_scale_out"
CARD_OK = "4242424242424242"
# The suite's worlds make every account in one second, which the fraud checks look for; the
# servers are started from the factory with screening off, as every test app is.
APP_SPEC = "marketplace:create_app({'FRAUD_SCREENING': False})"
WAIT_SECONDS = 60


def free_port(taken: set[int]) -> int:
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free port in 5200-5299")


def wait_until(condition, what: str, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Cluster:
    """The processes, and a round robin over the app servers for every request."""

    def __init__(self, servers: list[str], processes: list[subprocess.Popen]):
        self.servers = servers
        self.processes = processes
        self._next = itertools.cycle(servers)
        self.served = Counter()

    def url(self, path: str) -> str:
        base = next(self._next)
        self.served[base] += 1
        return base + path

    def api(self, method: str, path: str, token: str, body: dict | None = None) -> requests.Response:
        return requests.request(
            method, self.url("/api/v1" + path), json=body, headers={"Authorization": f"Bearer {token}"}, timeout=20
        )

    def check_alive(self) -> None:
        dead = [p.args for p in self.processes if p.poll() is not None]
        assert not dead, f"processes exited: {dead}"


@pytest.fixture
def emulator():
    """Delivers its webhooks from a background thread, as Stripe does."""
    emu = Emulator(webhook_retry_base=0.05).start(port=0)
    yield emu
    emu.stop()


@pytest.fixture
def cluster(app, database_url, emulator, tmp_path):
    """Two gunicorn servers and two workers with one configuration but their own instance folders;
    the platform's webhooks go to the first server, the Connect ones to the second."""
    taken: set[int] = set()
    servers = [f"http://127.0.0.1:{free_port(taken)}" for _ in range(2)]
    secrets = [
        emulator.add_webhook_endpoint(servers[0] + "/webhooks/stripe"),
        emulator.add_webhook_endpoint(servers[1] + "/webhooks/stripe", connect=True),
    ]
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        # Every process shares the key, the test's own included (its builders queued e-mails with links).
        "SECRET_KEY": app.config["SECRET_KEY"],
        "BASE_URL": servers[0],
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_API_BASE": emulator.url,
        "STRIPE_WEBHOOK_SECRET": ",".join(secrets),
        "STRIPE_TIMEOUT_SECONDS": "5",
        "FLASK_APP": APP_SPEC,
    }
    # The test's own app (``flask ledger verify``, ``stripe reconcile``) reads the same Stripe.
    override(app, stripe_secret_key=STRIPE_KEY, stripe_api_base=emulator.url)
    app.extensions.pop("stripe_client", None)
    processes = []
    logs = []

    def start(name: str, command: list[str]) -> None:
        log = (tmp_path / f"{name}.log").open("w")
        logs.append(log)
        instance = tmp_path / name
        processes.append(
            subprocess.Popen(
                command, cwd=ROOT, env={**env, "INSTANCE_PATH": str(instance)}, stdout=log, stderr=subprocess.STDOUT
            )
        )

    for number, server in enumerate(servers, 1):
        port = server.rpartition(":")[2]
        gunicorn = [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4"]
        start(f"web{number}", [*gunicorn, "--bind", f"127.0.0.1:{port}", APP_SPEC])
    for number in (1, 2):
        start(f"worker{number}", [sys.executable, "-m", "flask", "worker", "--interval", "0.2"])
    running = Cluster(servers, processes)
    try:
        for server in servers:
            wait_until(lambda server=server: _answers(server, running), f"{server} to answer")
        yield running
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def _answers(server: str, cluster: Cluster) -> bool:
    cluster.check_alive()
    try:
        return requests.get(server + "/api/v1/openapi.json", timeout=2).status_code == 200
    except requests.RequestException:  # Not listening yet, or its worker is still starting.
        return False


def token_of(session, user) -> str:
    _, raw = accounts.create_api_token(session, user)
    session.commit()
    return raw


def fresh(session):
    """End the test's own transaction so the next read sees what the processes committed."""
    session.rollback()
    return session


def test_two_servers_and_two_workers_run_the_whole_loop_exactly_once(cluster, emulator, world, session, runner):
    owner, ann, bob, cleo, dev = world.owner, world.ann, world.bob, world.cleo, world.dev
    # Cleo knows PostgreSQL too: once she introduces Dev, her track record ranks her in the reach.
    accounts.update_profile(session, cleo, name=cleo.name, headline="", skills="postgres", show_name_on_chains=True)
    tokens = {user.id: token_of(session, user) for user in (owner, ann, bob, cleo, dev)}

    def call(user, method, path, body=None, expect=200):
        response = cluster.api(method, path, tokens[user.id], body)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    # The network, asked on one server and confirmed on the other: ann – bob – cleo – dev.
    for asker, peer in ((ann, bob), (bob, cleo), (cleo, dev)):
        asked = call(asker, "POST", "/connections", {"user_id": peer.id, "note": "We worked together"}, 201)
        call(peer, "POST", f"/connections/requests/{asked['id']}/confirm")

    # The company posts a problem and pays for it through Checkout; the signed webhook reaches
    # the first server, and a worker funds the problem.
    problem_id = call(
        owner,
        "POST",
        "/problems",
        {
            "company_id": world.company.id,
            "title": "Fix our Postgres replication lag",
            "description": "Replicas fall minutes behind at peak hours; we need an expert.",
            "skills": ["postgres"],
            "bounty": {"amount": 200_000, "currency": "usd"},
            "guarantee_days": 0,
            "visibility": "public",
        },
        201,
    )["id"]
    checkout = call(owner, "POST", f"/problems/{problem_id}/checkout", expect=201)
    paid = requests.post(checkout["checkout_url"], data={"card_number": CARD_OK}, allow_redirects=False, timeout=10)
    assert paid.status_code == 303, paid.text
    wait_until(lambda: call(owner, "GET", f"/problems/{problem_id}")["status"] == "open", "the problem to be funded")

    # Both servers built their reach index on first use and answer what the tables say.
    problem = fresh(session).get(Problem, problem_id)
    company = {owner.id, world.admin.id, world.employee.id}

    def served_reach():
        return [
            (r["user_id"], r["hops"], r["mutual"]) for r in call(ann, "GET", f"/problems/{problem_id}/reach")["items"]
        ]

    far = expected_reach(fresh(session), ann.id, problem, 10, company)
    assert far == [(cleo.id, 2, 1), (dev.id, 3, 0)]
    assert served_reach() == served_reach() == far
    # A connection confirmed through one server is in the other's next answer (the change log).
    asked = call(ann, "POST", "/connections", {"user_id": cleo.id, "note": "Met at a meetup"}, 201)
    call(cleo, "POST", f"/connections/requests/{asked['id']}/confirm")
    near = expected_reach(fresh(session), ann.id, fresh(session).get(Problem, problem_id), 10, company)
    assert near == [(cleo.id, 1, 1), (dev.id, 2, 1)]
    assert served_reach() == served_reach() == near

    # The chain: each step on the other server than the one before.
    call(ann, "POST", f"/problems/{problem_id}/pick", expect=201)
    to_bob = call(ann, "POST", f"/problems/{problem_id}/referrals", {"to_user_id": bob.id}, 201)
    call(bob, "POST", f"/referrals/{to_bob['token']}/claim")
    to_cleo = call(bob, "POST", f"/problems/{problem_id}/referrals", {"to_user_id": cleo.id}, 201)
    call(cleo, "POST", f"/referrals/{to_cleo['token']}/claim")
    introduction = call(
        cleo,
        "POST",
        f"/problems/{problem_id}/introductions",
        {"candidate_user_id": dev.id, "message": "Dev rebuilt replication for a 5 TB cluster."},
        201,
    )
    assert call(dev, "POST", f"/introductions/{introduction['id']}/consent", {"accept": True})["status"] == "proposed"

    # The owner accepts in the browser: logged in on one server, the form read from the other
    # and posted to the first, with the session cookie and CSRF token both servers sign alike.
    browser = requests.Session()
    login_url = cluster.url("/login")
    login = browser.post(
        login_url,
        data={"csrf_token": csrf_token(browser.get(login_url).text), "email": owner.email, "password": PASSWORD},
        allow_redirects=False,
        timeout=20,
    )
    assert login.status_code == 302, login.text
    page = browser.get(cluster.url(f"/problems/{problem_id}"), timeout=20)
    action = f"/introductions/{introduction['id']}/accept"
    assert action in page.text
    accepted = browser.post(
        cluster.url(action), data={"csrf_token": csrf_token(page.text)}, allow_redirects=False, timeout=20
    )
    assert accepted.status_code == 302, accepted.text
    assert call(owner, "GET", f"/problems/{problem_id}")["status"] == "settled"

    # The members set up payouts on Stripe's hosted page; the Connect webhooks reach the second
    # server, the workers start the payouts and send the transfers.
    for member in (ann, bob, cleo, dev):
        link = call(member, "POST", "/me/payout-account")["onboarding_url"]
        onboarded = requests.post(link, data={"outcome": "complete"}, allow_redirects=False, timeout=10)
        assert onboarded.status_code == 303, onboarded.text

    shares = list(fresh(session).scalars(select(Share).where(Share.problem_id == problem_id).order_by(Share.id)))
    share_ids = [share.id for share in shares]
    wait_until(
        lambda: all(
            s.status == ShareStatus.PAID for s in fresh(session).scalars(select(Share).where(Share.id.in_(share_ids)))
        ),
        "every share to be paid",
    )
    cluster.check_alive()
    assert min(cluster.served.values()) >= 10, cluster.served

    # The shares: the problem's split of the bounty along the three links, the expert's thank-you.
    split = split_for(fresh(session).get(Problem, problem_id), 3)
    expected = dict(zip((ann.id, bob.id, cleo.id), split.shares, strict=True))
    if split.candidate_share:
        expected[dev.id] = split.candidate_share
    shares = list(fresh(session).scalars(select(Share).where(Share.problem_id == problem_id).order_by(Share.id)))
    assert {s.member_id: s.amount for s in shares} == expected and len(shares) == len(expected)
    assert [s.position for s in shares if s.member_id in (ann.id, bob.id, cleo.id)] == [1, 2, 3]

    # Stripe: exactly one transfer per share, its amount, to the member's own account.
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": emulator.url}, max_network_retries=0)
    transfers = list(
        client.v1.transfers.list(params={"transfer_group": f"problem_{problem_id}", "limit": 100}).auto_paging_iter()
    )
    destinations = {a.user_id: a.stripe_id for a in fresh(session).scalars(select(PayoutAccount))}
    assert sorted((t.metadata["share_id"], t.destination, t.amount) for t in transfers) == sorted(
        (str(s.id), destinations[s.member_id], s.amount) for s in shares
    )
    assert {s.transfer_reference for s in shares} == {t.id for t in transfers}

    # The outbox: one transfer job per share, and once the workers are idle every job is done
    # (the e-mails the payouts caused included), none parked.
    jobs = list(fresh(session).scalars(select(Job).where(Job.kind == "stripe.transfer")))
    assert sorted(j.payload["share_id"] for j in jobs) == sorted(share_ids)
    busy = select(func.count()).where(Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))
    wait_until(lambda: fresh(session).scalar(busy) == 0, "the workers to finish every job")
    unfinished = select(Job.kind, Job.status, Job.last_error).where(Job.status != JobStatus.DONE)
    assert list(fresh(session).execute(unfinished)) == []

    # The ledger: every transaction sums to zero, each member was paid exactly their share.
    unbalanced = fresh(session).execute(
        select(LedgerEntry.transaction_id)
        .group_by(LedgerEntry.transaction_id, LedgerEntry.currency)
        .having(func.sum(LedgerEntry.amount) != 0)
    )
    assert list(unbalanced) == []
    for member_id, amount in expected.items():
        assert balances_of(session, member_id) == {"held": 0, "available": 0, "payout_pending": 0, "paid": amount}
    session.rollback()
    for command in (["ledger", "verify"], ["referrals", "verify"], ["stripe", "reconcile"]):
        result = runner.invoke(args=command)
        assert result.exit_code == 0, (command, result.output)

    # The introducer's track record, written by a worker, reaches both servers' reach index.
    wait_until(lambda: _track_records(call, ann, cleo, problem_id) == [1, 1], "the track record in both indexes")


def balances_of(session, member_id: int) -> dict[str, int]:
    """The member's accounts, each the sum of its entries."""
    rows = fresh(session).execute(
        select(LedgerAccount.code, func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id, isouter=True)
        .where(LedgerAccount.code.like(f"member:{member_id}:%"))
        .group_by(LedgerAccount.code)
    )
    found = {code.rpartition(":")[2]: int(total) for code, total in rows}
    return {kind: found.get(kind, 0) for kind in ("held", "available", "payout_pending", "paid")}


def _track_records(call, viewer, introducer, problem_id) -> list[int]:
    """The introducer's track record in the reach answer of each server in turn."""
    return [
        next(r for r in call(viewer, "GET", f"/problems/{problem_id}/reach")["items"] if r["user_id"] == introducer.id)[
            "track_record"
        ]
        for _ in range(2)
    ]
