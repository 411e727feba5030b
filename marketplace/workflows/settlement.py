"""Accept and settle, and the end of the guarantee period (docs/architecture.md, "One accept").

``accept_introduction`` is the money path: it authorises, moves the problem and the
introduction in guarded updates (of racing accepts exactly one wins), reads the chain once,
posts the settlement, and sends one signal carrying what was settled. The introducer's track
record, which ranks reach results, is recomputed by a job, so the accept never waits for the
network's lock.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.db import utcnow
from marketplace.jobs.service import enqueue
from marketplace.ledger import settlement
from marketplace.ledger.settlement import FundingError, SettlementSummary
from marketplace.network.changes import TRACK_RECORD_JOB
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.problems.service import ProblemError
from marketplace.referrals import chains, introductions
from marketplace.referrals.models import Introduction


@dataclass(frozen=True)
class Accepted:
    introduction: Introduction
    settlement: SettlementSummary


def accept_introduction(session: Session, actor: User, introduction_id: int) -> Accepted:
    """The company accepts: the problem leaves ``open`` and its bounty is divided, in one transaction."""
    introduction = introductions.acceptable(session, actor, introduction_id)
    problem = introduction.problem
    if problem.funded_at is None:
        raise FundingError(f"Problem {problem.id} was never funded; it cannot be settled.")
    now = utcnow()
    problems.transition(session, problem, {ProblemStatus.OPEN}, ProblemStatus.IN_GUARANTEE, closed_at=now)
    introductions.mark_accepted(session, actor, introduction, now)
    chain = chains.chain_member_ids(session, introduction.referral_id) if introduction.referral_id else []
    summary = settlement.settle(session, introduction, chain, now)
    if problem.guarantee_days == 0:
        release(session, problem, {ProblemStatus.IN_GUARANTEE})
    enqueue(
        session,
        TRACK_RECORD_JOB,
        f"track_record:introduction:{introduction.id}",
        {"user_id": introduction.introducer_id},
    )
    signals.introduction_accepted.send(introduction, session=session, chain=chain, settlement=summary)
    return Accepted(introduction, summary)


def release(session: Session, problem: Problem, expected: set[ProblemStatus]) -> None:
    """The guarantee holds: the problem is settled and its held shares become available."""
    problems.transition(session, problem, expected, ProblemStatus.SETTLED)
    settlement.release_shares(session, problem)


def release_due(session: Session, now: datetime | None = None) -> list[int]:
    """Settle every problem whose guarantee period has ended without a dispute; returns their ids."""
    now = now or utcnow()
    candidates = session.scalars(
        select(Problem).where(Problem.status == ProblemStatus.IN_GUARANTEE, Problem.closed_at <= now)
    ).all()
    released = []
    for problem in candidates:
        ends = settlement.guarantee_ends(problem)
        if ends is None or ends > now:
            continue
        try:
            release(session, problem, {ProblemStatus.IN_GUARANTEE})
        except ProblemError:
            continue  # Disputed in the meantime: the shares stay frozen.
        released.append(problem.id)
    return released
