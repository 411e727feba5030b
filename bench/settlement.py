"""Settlement benchmark: accepted introductions with 6-link chains settled per second, on SQLite
and on PostgreSQL, beside the floor cost of the same writes as hand-written SQL.

The settlement path is ``marketplace.workflows.settlement.accept_introduction`` in its own database
transaction, as the accept request runs it: authorise the company's manager, the guarded updates of
the problem and the introduction, the chain, the acceptance's attribution record, the split, the
``settle`` transaction (7 entries), the 6 shares, the track-record job and the
``introduction_accepted`` signal, commit. (Receivers are not connected here: the notifications and
audit entries they write are not part of the floor either.)

The floor is one hand-written SQL transaction on the raw driver connection that writes the same
rows (2 guarded updates, 1 attribution record, 7 entries, 1 transaction row, 6 shares) with
everything it needs known in advance. Both run against the same schema, triggers included.

Run: ``python bench/settlement.py [--problems N] [--engines sqlite,postgresql]``. PostgreSQL needs
a server reachable as ``--postgres`` (trust auth); the benchmark creates a database and drops it.
"""

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from marketplace.accounts import passwords
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.db import make_engine, normalize_url
from marketplace.ledger.accounts import escrow_account, member_account
from marketplace.ledger.posting import account_ids
from marketplace.ledger.settlement import split_for
from marketplace.models import metadata
from marketplace.problems import service as problems
from marketplace.problems.service import ProblemInput
from marketplace.referrals import chains, introductions
from marketplace.referrals.models import AttributionRecord, Introduction
from marketplace.workflows import funding
from marketplace.workflows import settlement as settlement_workflow

LINKS = 6


def seed(engine, count: int) -> tuple[int, list[int]]:
    """``count`` funded problems, each with a 6-link chain whose finder put themselves forward."""
    passwords.configure("pbkdf2:sha256:1")  # Sign-up cost is not what is measured.
    with Session(engine, expire_on_commit=False) as session:
        owner = accounts.register(session, email="owner@bench.example", password="bench-password-2026", name="Owner")
        company = accounts.create_company(session, owner, name="Bench Inc")
        members = [
            accounts.register(session, email=f"m{n}@bench.example", password="bench-password-2026", name=f"Member {n}")
            for n in range(LINKS)
        ]
        session.commit()
        made = []
        for number in range(count):
            data = ProblemInput(
                title=f"Benchmark problem {number}",
                description="A problem posted only to be settled by the benchmark.",
                bounty_amount=100_000 + number,
                skills=["postgres"],
                expires_at=datetime.now(UTC) + timedelta(days=30),
            )
            problem = problems.create_problem(session, owner, company.id, data, publish=True, platform_fee_bps=1000)
            funding.fund_problem(session, problem.id)
            chains.pick_from_board(session, members[0], problem.id)
            for sender, recipient in zip(members, members[1:], strict=False):
                token = chains.forward(session, sender, problem.id, to_user_id=recipient.id).token
                chains.claim(session, recipient, token)
            introduction = introductions.introduce(
                session, members[-1], problem.id, candidate_user_id=members[-1].id, message="I fixed this before."
            )
            session.commit()
            made.append(introduction.id)
        return owner.id, made


def settle_with_the_service(engine, owner_id: int, introduction_ids: list[int]) -> list[float]:
    """Timed from ``accept_introduction`` to the commit. The request has loaded the accepting user
    already (to log them in), and the introduction and its problem are in the session as they
    would be on the page the company clicked from; the workflow still checks both."""
    timings = []
    for introduction_id in introduction_ids:
        with Session(engine, expire_on_commit=False) as session:
            introduction = session.get(Introduction, introduction_id)
            actor, _ = session.get(User, owner_id), introduction.problem
            session.commit()
            started = time.perf_counter()
            settlement_workflow.accept_introduction(session, actor, introduction.id)
            session.commit()
            timings.append(time.perf_counter() - started)
    return timings


def plan_raw(engine, owner_id: int, introduction_ids: list[int]) -> list[dict]:
    """Everything the hand-written SQL needs, worked out before the clock starts."""
    plans = []
    with Session(engine) as session:
        for introduction_id in introduction_ids:
            introduction = session.get(Introduction, introduction_id)
            problem = introduction.problem
            chain = chains.chain_members(introduction.referral)
            split = split_for(problem, len(chain))
            held = [(member_account(m.id, "held"), m.id, amount) for m, amount in zip(chain, split.shares, strict=True)]
            codes = [escrow_account(problem.id), "platform:fees", *(code for code, _, _ in held)]
            ids = account_ids(session, codes)
            plans.append(
                {
                    "problem_id": problem.id,
                    "introduction_id": introduction.id,
                    "owner_id": owner_id,
                    "record_seq": 1
                    + session.scalar(
                        select(func.max(AttributionRecord.seq)).where(AttributionRecord.problem_id == problem.id)
                    ),
                    "entries": [
                        (ids[escrow_account(problem.id)], -problem.bounty_amount),
                        (ids["platform:fees"], split.platform_fee),
                        *((ids[code], amount) for code, _, amount in held),
                    ],
                    "shares": [
                        (member_id, position, amount) for position, (_, member_id, amount) in enumerate(held, 1)
                    ],
                }
            )
        session.commit()
    return plans


def settle_with_raw_sql(engine, plans: list[dict]) -> list[float]:
    sqlite = engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"

    def sql(statement: str) -> str:
        return statement.replace("?", mark)

    connection = engine.raw_connection()
    cursor = connection.cursor()
    cursor.execute("SELECT COALESCE(MAX(id), 0) FROM ledger_transactions")
    last_id = cursor.fetchone()[0]
    connection.commit()
    timings = []
    for number, plan in enumerate(plans, start=1):
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now
        started = time.perf_counter()
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(
            sql(
                "UPDATE problems SET status = 'in_guarantee', closed_at = ?, updated_at = ? "
                "WHERE id = ? AND status = 'open'"
            ),
            (stamp, stamp, plan["problem_id"]),
        )
        assert cursor.rowcount == 1
        cursor.execute(
            sql(
                "UPDATE introductions SET status = 'accepted', decided_at = ?, decided_by_id = ? "
                "WHERE id = ? AND status = 'proposed'"
            ),
            (stamp, plan["owner_id"], plan["introduction_id"]),
        )
        assert cursor.rowcount == 1
        cursor.execute(
            sql(
                "INSERT INTO attribution_records (problem_id, seq, kind, introduction_id, content, prev_hash, hash, "
                "recorded_at) VALUES (?, ?, 'acceptance', ?, '{}', ?, ?, ?)"
            ),
            (plan["problem_id"], plan["record_seq"], plan["introduction_id"], "0" * 64, "1" * 64, stamp),
        )
        txn = last_id + number
        cursor.executemany(
            sql("INSERT INTO ledger_entries (transaction_id, account_id, amount, currency) VALUES (?, ?, ?, 'usd')"),
            [(txn, account, amount) for account, amount in plan["entries"]],
        )
        cursor.execute(
            sql(
                "INSERT INTO ledger_transactions (id, kind, idempotency_key, problem_id, introduction_id, reference, "
                "memo, fingerprint, created_at) VALUES (?, 'settle', ?, ?, ?, '', 'introduction accepted', ?, ?)"
            ),
            (txn, f"settle:problem:{plan['problem_id']}", plan["problem_id"], plan["introduction_id"], "0" * 64, stamp),
        )
        cursor.executemany(
            sql(
                "INSERT INTO ledger_shares (problem_id, member_id, role, position, amount, given, currency, status, "
                "transaction_id, payout_attempts, transfer_reference, created_at) "
                "VALUES (?, ?, 'link', ?, ?, 0, 'usd', 'held', ?, 0, '', ?)"
            ),
            [(plan["problem_id"], member, position, amount, txn, stamp) for member, position, amount in plan["shares"]],
        )
        connection.commit()
        timings.append(time.perf_counter() - started)
    if not sqlite:  # The ids were chosen here: move the sequence the service draws from past them.
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('ledger_transactions', 'id'), %s)", (last_id + len(plans),)
        )
        connection.commit()
    cursor.close()
    connection.close()
    return timings


def report(engine_name: str, ours: list[float], floor: list[float]) -> None:
    """Settlements per second (count over total time) and the median, for each side; the ratio of
    the rates is the figure the target is about, the ratio of the medians leaves out the stalls
    (WAL checkpoints, autovacuum) that land on whichever side is committing."""
    ours_rate, floor_rate = len(ours) / sum(ours), len(floor) / sum(floor)
    ours_median, floor_median = statistics.median(ours), statistics.median(floor)
    print(
        f"{engine_name:<11} settlement path {ours_rate:6.0f}/s (median {ours_median * 1000:.2f} ms)   "
        f"raw SQL floor {floor_rate:6.0f}/s (median {floor_median * 1000:.2f} ms)   "
        f"ratio {ours_rate / floor_rate:.0%} (of medians {floor_median / ours_median:.0%})"
    )


def run(engine_name: str, engine, count: int) -> None:
    metadata.create_all(engine)
    owner_id, seeded = seed(engine, 2 * count)
    ours_ids, floor_ids = seeded[:count], seeded[count:]
    plans = plan_raw(engine, owner_id, floor_ids)
    # Alternate halves, so neither side gets a warmer cache or a quieter machine.
    ours, floor = [], []
    for start in range(0, count, 50):
        ours += settle_with_the_service(engine, owner_id, ours_ids[start : start + 50])
        floor += settle_with_raw_sql(engine, plans[start : start + 50])
    report(engine_name, ours, floor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=300, help="settlements timed per side and engine")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1/postgres", help="server to use")
    args = parser.parse_args()
    print(f"{args.problems} settlements of a {LINKS}-link chain per side and engine")
    if "sqlite" in args.engines:
        with tempfile.TemporaryDirectory() as directory:
            engine = make_engine(f"sqlite:///{Path(directory) / 'bench.db'}")
            run("SQLite", engine, args.problems)
            engine.dispose()
    if "postgresql" in args.engines:
        name = f"bench_settlement_{uuid.uuid4().hex[:8]}"
        admin = create_engine(normalize_url(args.postgres), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            engine = make_engine(f"{args.postgres.rpartition('/')[0]}/{name}")
            run("PostgreSQL", engine, args.problems)
            engine.dispose()
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
