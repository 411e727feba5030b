"""Settling a problem when its company accepts an introduction.

Everything happens in the caller's database transaction: the guarded state change of the
problem (only one accept can win, however many race), the introduction's acceptance, and the
division of the bounty along the chain.
"""

from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.db import utcnow
from marketplace.ledger import splits
from marketplace.problems.models import ProblemStatus
from marketplace.problems.service import transition
from marketplace.referrals.models import Introduction, IntroductionStatus


def settlement_for(introduction: Introduction) -> splits.Settlement:
    from marketplace.referrals.service import chain_members

    problem = introduction.problem
    links = len(chain_members(introduction.referral))
    if links == 0:
        # A company member introduced the candidate directly: nobody to pay along a chain.
        fee = problem.bounty_amount * problem.platform_fee_bps // splits.BPS_SCALE
        candidate = problem.bounty_amount * problem.candidate_share_bps // splits.BPS_SCALE
        remainder = problem.bounty_amount - fee - candidate
        return splits.Settlement(problem.bounty_amount, fee, candidate, (), remainder)
    return splits.settle_amounts(
        problem.bounty_amount,
        links,
        rule=problem.split_rule,
        params=problem.split_params,
        platform_fee_bps=problem.platform_fee_bps,
        candidate_share_bps=problem.candidate_share_bps,
    )


def settle_introduction(session: Session, introduction: Introduction, actor: User) -> splits.Settlement:
    from marketplace.referrals.service import _set_status

    problem = introduction.problem
    transition(session, problem, {ProblemStatus.OPEN}, ProblemStatus.IN_GUARANTEE, closed_at=utcnow())
    _set_status(
        session,
        introduction,
        {IntroductionStatus.PROPOSED},
        IntroductionStatus.ACCEPTED,
        decided_at=utcnow(),
        decided_by_id=actor.id,
    )
    return settlement_for(introduction)
