"""Outbox benchmark: payout jobs per second performed by several ``flask worker`` processes
against the Stripe emulator, beside the same number of no-op jobs through the same outbox, and
proof that no job ran twice.

Seeding (not timed): members with payout accounts onboarded at the emulator, one funded problem,
and the shares, written in bulk: one balanced ledger transaction that puts each member's total in
their ``available`` account and one INSERT of every share. Then, timed:

1. **baseline**: N ``bench.noop`` jobs enqueued in one transaction; the workers claim and finish
   them (the outbox alone: lease, handler, mark done, each its own transaction);
2. **payouts**: ``payments.service.start_payouts`` starts every share in one transaction (the
   real path: ``ledger.payouts.start_payout`` posts ``available → payout_pending`` and sends
   ``payout_started``, whose receiver writes the ``stripe.transfer`` job); the workers send each
   transfer to the emulator and record it (``payout_pending → paid``, ``payout_sent``: the
   member's notification and e-mail job, the audit entry). The clock runs from the COMMIT that
   makes the jobs visible until the last transfer job is done.

Afterwards it counts, at the emulator (read through the ``stripe`` SDK), the transfers per share
and per idempotency key, and in the database the completions of each job, the ``…:paid`` ledger
transactions per share and the shares paid: each must be exactly one.

Run: ``python -m bench.worker [--jobs N] [--workers W] [--members M]``. PostgreSQL only (the
workers are separate processes sharing the database; SQLite would serialise them on its one write
lock): the server named by ``--postgres`` (trust auth) gets a new database, dropped afterwards.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import requests
import stripe
from sqlalchemy import create_engine, func, insert, select, text

from devtools.stripe_emulator import Emulator
from marketplace import create_app
from marketplace.accounts import service as accounts
from marketplace.db import db, normalize_url, utcnow
from marketplace.jobs import service as jobs
from marketplace.jobs.models import Job, JobStatus
from marketplace.ledger.accounts import member_account
from marketplace.ledger.models import LedgerTransaction, Share, ShareRole, ShareStatus, TransactionKind
from marketplace.ledger.posting import Entry, post
from marketplace.models import metadata
from marketplace.payments import service as payments
from marketplace.payments.models import PayoutAccount
from marketplace.problems import service as problems
from marketplace.problems.service import ProblemInput
from marketplace.workflows import funding

ROOT = Path(__file__).resolve().parent.parent
STRIPE_KEY = "sk_test_bench_worker"
NOOP = "bench.noop"
SHARE_AMOUNT = 1_000


def noop(session, job) -> dict:
    return {}


def worker_app():
    """The app every benchmark worker runs: the production app, plus the no-op job kind."""
    app = create_app()
    jobs.register_handler(NOOP, noop)
    return app


def onboarded_account(client: stripe.StripeClient, email: str) -> str:
    """An Express account completed through the emulator's hosted onboarding page."""
    account = client.v1.accounts.create(
        params={"type": "express", "email": email, "capabilities": {"transfers": {"requested": True}}}
    )
    link = client.v1.account_links.create(
        params={
            "account": account.id,
            "type": "account_onboarding",
            "refresh_url": "https://bench.example/refresh",
            "return_url": "https://bench.example/return",
        }
    )
    requests.post(link.url, data={"outcome": "complete"}, allow_redirects=False, timeout=10).raise_for_status()
    return account.id


def seed(session, client: stripe.StripeClient, members: int, shares: int) -> tuple[int, list[int]]:
    """Members with ready payout accounts and a funded problem; (problem id, member ids)."""
    owner = accounts.register(session, email="owner@bench.example", password="bench-password-2026", name="Owner")
    company = accounts.create_company(session, owner, name="Bench Inc")
    data = ProblemInput(
        title="Benchmark problem",
        description="A problem whose shares the benchmark pays out.",
        bounty_amount=shares * SHARE_AMOUNT,
        skills=["postgres"],
        expires_at=utcnow() + timedelta(days=365),
    )
    problem = problems.create_problem(session, owner, company.id, data, publish=True, platform_fee_bps=0)
    funding.fund_problem(session, problem.id)
    people = []
    for number in range(members):
        email = f"m{number}@bench.example"
        member = accounts.register(session, email=email, password="bench-password-2026", name=f"Member {number}")
        accounts.mark_email_verified(session, member)
        session.add(
            PayoutAccount(
                user_id=member.id,
                stripe_id=onboarded_account(client, email),
                creation_key=f"bench-{member.id}",
                details_submitted=True,
                payouts_enabled=True,
                transfers_active=True,
            )
        )
        people.append(member.id)
    session.commit()
    return problem.id, people


def add_shares(session, problem_id: int, people: list[int], count: int) -> None:
    """``count`` available shares of the problem, spread over ``people``, in bulk: one balanced
    ledger transaction putting each member's total in their ``available`` account, one INSERT."""
    owed = Counter(people[n % len(people)] for n in range(count))
    posted = post(
        session,
        TransactionKind.RELEASE,
        f"bench:shares:problem:{problem_id}",
        [Entry("stripe:balance", -count * SHARE_AMOUNT, "usd")]
        + [Entry(member_account(member, "available"), times * SHARE_AMOUNT, "usd") for member, times in owed.items()],
        problem_id=problem_id,
    )
    now = utcnow()
    session.execute(
        insert(Share),
        [
            {
                "problem_id": problem_id,
                "member_id": people[n % len(people)],
                "role": ShareRole.LINK,
                "position": 1,
                "amount": SHARE_AMOUNT,
                "given": 0,
                "currency": "usd",
                "status": ShareStatus.AVAILABLE,
                "transaction_id": posted.transaction_id,
                "payout_attempts": 0,
                "transfer_reference": "",
                "created_at": now,
            }
            for n in range(count)
        ],
    )


def start_workers(count: int, env: dict[str, str], directory: Path) -> list[tuple[subprocess.Popen, Path]]:
    started = []
    for number in range(count):
        log = directory / f"worker{number}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "flask", "worker", "--interval", "0.1"],
                cwd=ROOT,
                env={**env, "INSTANCE_PATH": str(directory / f"worker{number}")},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        started.append((process, log))
    deadline = time.monotonic() + 60
    while not all("started" in log.read_text() for _, log in started):
        if time.monotonic() > deadline or any(process.poll() is not None for process, _ in started):
            raise RuntimeError("a worker did not start: " + " ".join(log.read_text() for _, log in started))
        time.sleep(0.1)
    return started


def stop_workers(workers: list[tuple[subprocess.Popen, Path]]) -> None:
    for process, _ in workers:
        process.send_signal(signal.SIGTERM)
    for process, _ in workers:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def performed_by(workers: list[tuple[subprocess.Popen, Path]]) -> list[int]:
    """Jobs each worker reported done (its ``jobs: N done`` lines)."""
    return [sum(int(n) for n in re.findall(r"jobs: (\d+) done", log.read_text())) for _, log in workers]


def wait_done(session, kind: str, count: int, workers, timeout: float = 1800) -> float:
    """Seconds until ``count`` jobs of ``kind`` are done (polled every 50 ms)."""
    started = time.perf_counter()
    while True:
        done = session.scalar(select(func.count()).where(Job.kind == kind, Job.status == JobStatus.DONE))
        session.rollback()
        if done >= count:
            return time.perf_counter() - started
        dead = [process.args for process, _ in workers if process.poll() is not None]
        if dead or time.perf_counter() - started > timeout:
            raise RuntimeError(f"{kind}: {done} of {count} done; stopped workers: {dead}")
        time.sleep(0.05)


def wait_idle(session, workers, timeout: float = 1800) -> float:
    """Seconds until no job is pending or running, and every worker has ended its round."""
    started = time.perf_counter()
    busy = Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING])
    while session.scalar(select(func.count()).where(busy)):
        session.rollback()
        if time.perf_counter() - started > timeout:
            raise RuntimeError("the workers did not finish")
        time.sleep(0.05)
    session.rollback()
    time.sleep(1)  # Each worker prints its round's count once the round ends.
    return time.perf_counter() - started


def run(url: str, count: int, worker_count: int, member_count: int) -> None:
    emulator = Emulator(auto_deliver=False).start(port=0)
    client = stripe.StripeClient(
        STRIPE_KEY, base_addresses={"api": emulator.url, "connect": emulator.url}, max_network_retries=0
    )
    # The platform's balance, available at once, from which the transfers are made.
    client.v1.payment_intents.create(
        params={
            "amount": 10 * count * SHARE_AMOUNT,
            "currency": "usd",
            "payment_method": "pm_card_bypassPending",
            "confirm": True,
        }
    )
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": url,
        "SECRET_KEY": uuid.uuid4().hex,
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_API_BASE": emulator.url,
        "FLASK_APP": "bench.worker:worker_app()",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",  # the workers' "jobs: N done" lines, counted per worker
    }
    app = create_app(
        {key: env[key] for key in ("APP_ENV", "DATABASE_URL", "SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_API_BASE")}
    )
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as directory, app.app_context():
        session = db.session
        metadata.create_all(session.get_bind())
        started = time.perf_counter()
        problem_id, people = seed(session, client, member_count, count)
        print(f"seeded {member_count} members with payout accounts in {time.perf_counter() - started:.1f} s")

        workers = start_workers(worker_count, env, Path(directory))
        try:
            started = time.perf_counter()
            for number in range(count):
                jobs.enqueue(session, NOOP, f"bench:noop:{number}")
            session.commit()
            enqueue_seconds = time.perf_counter() - started
            noop_seconds = wait_done(session, NOOP, count, workers)
            noop_by_worker = performed_by(workers)

            # The shares appear and start their payouts in one transaction, so that no worker's
            # periodic payout run sees them first; the clock starts at its COMMIT.
            started = time.perf_counter()
            add_shares(session, problem_id, people, count)
            shares_seconds = time.perf_counter() - started
            started = time.perf_counter()
            started_payouts = payments.start_payouts(session)
            start_seconds = time.perf_counter() - started
            session.commit()
            payout_seconds = wait_done(session, "stripe.transfer", started_payouts, workers)
            idle_seconds = wait_idle(session, workers)  # The e-mail jobs the payouts caused.
            by_worker = [total - noop for total, noop in zip(performed_by(workers), noop_by_worker, strict=True)]
        finally:
            stop_workers(workers)

        noop_rate, payout_rate = count / noop_seconds, started_payouts / payout_seconds
        print(f"{worker_count} workers, {count:,} jobs each run; PostgreSQL; the emulator in this process")
        print(f"{count:,} shares written in bulk in {shares_seconds:.1f} s")
        print(
            f"baseline  {count:,} no-op jobs:     {noop_rate:7.0f} jobs/s ({noop_seconds:.1f} s; "
            f"enqueued in {enqueue_seconds:.1f} s); per worker {noop_by_worker}"
        )
        print(
            f"payouts   {started_payouts:,} transfer jobs: {payout_rate:7.0f} jobs/s ({payout_seconds:.1f} s) "
            f"= {payout_rate / noop_rate:.0%} of the no-op rate; started in {start_seconds:.1f} s "
            f"({started_payouts / start_seconds:.0f}/s)"
        )
        print(
            f"          with the e-mails they caused: {sum(by_worker):,} jobs "
            f"in {payout_seconds + idle_seconds:.1f} s; "
            f"per worker {by_worker}"
        )
        check_exactly_once(session, client, problem_id, started_payouts)
    emulator.stop()


def check_exactly_once(session, client: stripe.StripeClient, problem_id: int, count: int) -> None:
    """Each share: one transfer at Stripe, one idempotency key, one job run once, one ``paid``."""
    transfers = list(
        client.v1.transfers.list(
            params={"transfer_group": payments.transfer_group(problem_id), "limit": 100}
        ).auto_paging_iter()
    )
    per_share = Counter(t.metadata["share_id"] for t in transfers)
    per_key = Counter(t.metadata["attempt"] for t in transfers)
    attempts = Counter(session.scalars(select(Job.attempts).where(Job.kind == "stripe.transfer")))
    statuses = Counter(session.scalars(select(Job.status).where(Job.kind.in_(["stripe.transfer", NOOP]))))
    paid_postings = session.scalar(
        select(func.count()).where(LedgerTransaction.idempotency_key.like("payout:share:%:paid"))
    )
    paid_shares = session.scalar(select(func.count()).where(Share.status == ShareStatus.PAID))
    referenced = session.scalar(
        select(func.count(func.distinct(Share.transfer_reference))).where(Share.status == ShareStatus.PAID)
    )
    session.rollback()
    print(
        f"exactly once: {len(transfers):,} transfers at the emulator for {len(per_share):,} shares "
        f"(most per share {max(per_share.values())}, per idempotency key {max(per_key.values())}); "
        f"job attempts {dict(attempts)}; job statuses {dict((s.value, n) for s, n in statuses.items())}; "
        f"{paid_postings:,} 'paid' ledger postings, {paid_shares:,} shares paid with {referenced:,} distinct transfers"
    )
    ok = (
        len(transfers) == len(per_share) == len(per_key) == count
        and attempts == Counter({1: count})
        and paid_postings == paid_shares == referenced == count
    )
    print("no job ran twice" if ok else "SOMETHING RAN TWICE OR NOT AT ALL")
    if not ok:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="payout jobs, and no-op jobs for the baseline")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--members", type=int, default=200, help="members the shares are spread over")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1/postgres", help="server to use")
    args = parser.parse_args()
    name = f"bench_worker_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(args.postgres), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        run(f"{args.postgres.rpartition('/')[0]}/{name}", args.jobs, args.workers, args.members)
    finally:
        db.remove()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
