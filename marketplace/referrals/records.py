"""Track records and giving records: what a member's introductions came to, and what they gave
(docs/referrals.md, "Records people can see").

A company deciding on an introduction sees its introducer's record beside it; everyone sees a
member's record on their member page. The success rate is a Bayesian average: every record starts
from a stated prior, so a newcomer is shown the prior, not zero, and a few results move it only
a little.
"""

from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals.models import Introduction, IntroductionStatus, Referral

# The prior: as if every introducer had started with PRIOR_DECIDED introductions decided by a
# company, PRIOR_SUCCESSES of them successful (one in three, about what a good recruiter's
# shortlist converts). Five real decisions outweigh it.
PRIOR_SUCCESSES = 1
PRIOR_DECIDED = 3

_FAILED_AFTER_ACCEPTANCE = (ProblemStatus.DISPUTED, ProblemStatus.REFUNDED)


@dataclass(frozen=True)
class TrackRecord:
    """One introducer's introductions, duplicates not counted."""

    made: int = 0
    consented: int = 0  # the candidate agreed (a self-introduction is its own consent)
    decided: int = 0  # the company accepted or declined
    accepted: int = 0
    passed_guarantee: int = 0  # accepted, and the guarantee period ended without an upheld dispute
    disputed: int = 0  # accepted, then reported as failed (open or upheld)

    @property
    def successes(self) -> int:
        return self.accepted - self.disputed

    @property
    def success_rate(self) -> float:
        """(successes + prior successes) / (decided + prior decided)."""
        return (self.successes + PRIOR_SUCCESSES) / (self.decided + PRIOR_DECIDED)


def track_records(session: Session, user_ids: list[int] | None) -> dict[int, TrackRecord]:
    """The records of these introducers (every one with none made gets an empty record), in one
    query. ``None`` asks for every introducer (the reach index loads them all when it is built)."""
    if user_ids is not None and not user_ids:
        return {}
    status = Introduction.status
    accepted = status == IntroductionStatus.ACCEPTED
    query = (
        select(
            Introduction.introducer_id,
            func.count(),
            func.count().filter(Introduction.consented_at.is_not(None)),
            func.count().filter(status.in_([IntroductionStatus.ACCEPTED, IntroductionStatus.DECLINED])),
            func.count().filter(accepted),
            func.count().filter(and_(accepted, Problem.status == ProblemStatus.SETTLED)),
            func.count().filter(and_(accepted, Problem.status.in_(_FAILED_AFTER_ACCEPTANCE))),
        )
        .join(Problem, Problem.id == Introduction.problem_id)
        .where(status != IntroductionStatus.DUPLICATE)
        .group_by(Introduction.introducer_id)
    )
    if user_ids is not None:
        query = query.where(Introduction.introducer_id.in_(user_ids))
    records = {user_id: TrackRecord() for user_id in user_ids or ()}
    records.update({user_id: TrackRecord(*counts) for user_id, *counts in session.execute(query)})
    return records


@dataclass(frozen=True)
class Giving:
    """What a member did for others' problems, whatever came of it."""

    forwards: int
    introductions_for_others: int


def giving(session: Session, user_id: int) -> Giving:
    forwards = select(func.count()).where(Referral.sender_id == user_id).scalar_subquery()
    for_others = (
        select(func.count())
        .where(
            Introduction.introducer_id == user_id,
            Introduction.status != IntroductionStatus.DUPLICATE,
            Introduction.candidate_user_id.is_distinct_from(user_id),
        )
        .scalar_subquery()
    )
    row = session.execute(select(forwards, for_others)).one()
    return Giving(*row)
