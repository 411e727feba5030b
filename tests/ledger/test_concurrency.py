"""Twenty companies' clicks at once: concurrent accepts of the same and of different
introductions of one problem settle it exactly once, and every other accept is a clear 409.

Real threads, each with its own session, released together by a barrier, on the engine under
test (a SQLite file with WAL, ``BEGIN IMMEDIATE`` and a busy timeout; or PostgreSQL), repeated
``ROUNDS`` times with a new problem each round.
"""

import os
import threading

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from marketplace.accounts.models import User
from marketplace.db import db
from marketplace.errors import MarketplaceError
from marketplace.ledger.accounts import escrow_account
from marketplace.ledger.models import LedgerTransaction, Share
from marketplace.ledger.posting import balance
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals.models import Introduction, IntroductionStatus
from marketplace.workflows import settlement as settlement_workflow
from tests import builders as build
from tests.ledger.support import assert_ledger_sound

THREADS = 20
ROUNDS = int(os.environ.get("LEDGER_RACE_ROUNDS", 30))


def race(introduction_ids: list[int], owner_id: int) -> list[int | str]:
    """Each thread accepts ``introduction_ids[i % n]`` in its own session; their HTTP statuses."""
    factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    barrier = threading.Barrier(THREADS)
    outcomes: list[int | str] = []

    def accept(index: int) -> None:
        session = factory()
        try:
            barrier.wait()
            introduction = session.get(Introduction, introduction_ids[index % len(introduction_ids)])
            settlement_workflow.accept_introduction(session, session.get(User, owner_id), introduction.id)
            session.commit()
            outcomes.append(200)
        except MarketplaceError as error:
            session.rollback()
            outcomes.append(error.status)
        except Exception as error:  # noqa: BLE001 - anything else is a bug the test must show
            session.rollback()
            outcomes.append(f"{type(error).__name__}: {error}")
        finally:
            session.close()

    threads = [threading.Thread(target=accept, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_concurrent_accepts_settle_a_problem_exactly_once(session, world, open_problem):
    candidates = [world.ann, world.bob, world.cleo, world.dev]
    for round_number in range(ROUNDS):
        problem = open_problem(title=f"Race number {round_number:03d}")
        # Four introductions (each member put themselves forward), each accepted by five threads.
        introductions = [build.introduction(session, problem, [member]).id for member in candidates]

        outcomes = race(introductions, world.owner.id)

        assert sorted(outcomes, key=str) == [200] + [409] * (THREADS - 1), outcomes
        settlements = session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.problem_id == problem.id, LedgerTransaction.kind == "settle")
        )
        accepted = session.scalars(
            select(Introduction.id).where(
                Introduction.problem_id == problem.id, Introduction.status == IntroductionStatus.ACCEPTED
            )
        ).all()
        shares = session.scalar(select(func.count()).select_from(Share).where(Share.problem_id == problem.id))
        assert (settlements, len(accepted), shares) == (1, 1, 1)
        assert session.scalar(select(Problem.status).where(Problem.id == problem.id)) == ProblemStatus.IN_GUARANTEE
        assert balance(session, escrow_account(problem.id), "usd") == 0
        session.commit()
    assert_ledger_sound(session)
