"""Accept and settle, and the end of the guarantee period (docs/architecture.md, "One accept").

``accept_introduction`` is the money path: it authorises, moves the problem and the
introduction in guarded updates (of racing accepts exactly one wins), reads the chain once,
posts the settlement (releasing it at once when there is no guarantee period), and sends one
signal carrying what was settled. The introducer's track
record, which ranks reach results, is recomputed by a job, so the accept never waits for the
network's lock.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.accounts.service import role_in
from marketplace.db import utcnow
from marketplace.errors import Forbidden
from marketplace.jobs.service import enqueue
from marketplace.ledger import settlement
from marketplace.ledger.settlement import SettlementSummary
from marketplace.network.changes import TRACK_RECORD_JOB
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.problems.service import ProblemError
from marketplace.referrals import attribution, introductions, read_models
from marketplace.referrals.models import Introduction


@dataclass(frozen=True)
class Accepted:
    introduction: Introduction
    settlement: SettlementSummary


def accept_introduction(session: Session, actor: User, introduction_id: int) -> Accepted:
    """The company accepts: the problem leaves ``open`` and its bounty is divided, in one transaction.

    Each package is visited once, and referrals twice: accounts (is the actor a manager of the
    company?), referrals (proposed → accepted, and the chain), problems (open → in guarantee, or
    settled when there is no guarantee period), referrals again (the acceptance appended to the
    attribution records, whose head the settlement keeps), ledger (the settlement). The
    introduction moves first so that an introduction accepted twice is told so, whatever state
    its problem is in by then.
    """
    # Another company's people are told nothing exists, the same answer as for a wrong id.
    introduction = introductions.get_visible_introduction(session, actor, introduction_id)
    problem = introduction.problem
    role = role_in(session, actor, problem.company_id)
    if role is None or not role.manages:
        # Someone who may see it (a member of its chain, an employee) is told who decides.
        raise Forbidden("Only the company's owner or an admin can accept an introduction.")
    now = utcnow()
    chain = introductions.accept(session, actor, introduction, now)
    settled = ProblemStatus.SETTLED if problem.guarantee_days == 0 else ProblemStatus.IN_GUARANTEE
    problems.transition(session, problem, {ProblemStatus.OPEN}, settled, closed_at=now)
    head = attribution.record_acceptance(session, introduction, chain)
    summary = settlement.settle(session, introduction, chain, now, chain_head=head)
    enqueue(
        session,
        TRACK_RECORD_JOB,
        f"track_record:introduction:{introduction.id}",
        {"user_id": introduction.introducer_id},
    )
    signals.introduction_accepted.send(introduction, session=session, chain=chain, settlement=summary)
    return Accepted(introduction, summary)


def chain_fingerprint(session: Session, viewer: User | None, problem: Problem) -> str | None:
    """The fingerprint of the attribution head the problem's settlement paid, for the company's
    members and the chain's members (so that a later rewrite of the chain is visible to them);
    None for anyone else, and before a settlement."""
    if problem.status in (ProblemStatus.DRAFT, ProblemStatus.AWAITING_PAYMENT, ProblemStatus.OPEN):
        return None  # nothing settled yet: no need to look
    if not read_models.involved_in(session, viewer, problem):
        return None
    return attribution.fingerprint(settlement.paid_chain_head(session, problem.id))


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
