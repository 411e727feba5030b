"""A failed introduction reported in the guarantee period, a chargeback, and an admin's decision.

Opening a dispute freezes the problem (``disputed``: its shares stay held). Upheld, the shares
and the fee are clawed back and the escrow refunded; rejected, the shares are released.
"""

from datetime import datetime

from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.db import utcnow
from marketplace.ledger import disputes, settlement
from marketplace.ledger.models import Dispute
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.problems.service import ProblemError
from marketplace.referrals import visibility
from marketplace.workflows.settlement import release


def open_dispute(
    session: Session, actor: User, problem_id: int, *, reason: str, now: datetime | None = None
) -> Dispute:
    """The company (an owner or admin) reports that the accepted introduction failed."""
    problem = visibility.get_visible(session, actor, problem_id)
    now = now or utcnow()
    reason = disputes.checked_reason(session, actor, problem, reason, now)
    problems.transition(session, problem, {ProblemStatus.IN_GUARANTEE}, ProblemStatus.DISPUTED)
    return disputes.record_dispute(session, actor, problem, reason, now)


def decide(session: Session, actor: User, dispute_id: int, decision: str, *, note: str = "") -> Dispute:
    """``decision`` is "uphold" or "reject"; only a platform admin learns whether a dispute exists."""
    dispute = disputes.decide(session, actor, dispute_id, decision, note=note)
    problem = dispute.problem
    if decision == "uphold":
        disputes.claw_back(session, problem)
        settlement.refund_unspent(session, problem)
    else:
        release(session, problem, {ProblemStatus.DISPUTED})
    return dispute


def freeze_for_chargeback(session: Session, problem: Problem, *, stripe_dispute_id: str, reason: str) -> str:
    """The company's bank disputed the charge: the problem's money stops moving and admins hear.

    Returns what happened, in words, for the webhook's record.
    """
    outcome = f"problem is {problem.status.value}"
    try:
        problems.transition(session, problem, {ProblemStatus.IN_GUARANTEE}, ProblemStatus.DISPUTED)
        disputes.chargeback_dispute(session, problem, stripe_dispute_id=stripe_dispute_id, reason=reason)
        outcome = "frozen"
    except ProblemError:
        if problem.status == ProblemStatus.DISPUTED and disputes.dispute_of(session, problem.id) is None:
            # Held for a fraud review: the bank's dispute is recorded beside it, so clearing the
            # review cannot release the money while the chargeback is open.
            disputes.chargeback_dispute(session, problem, stripe_dispute_id=stripe_dispute_id, reason=reason)
            outcome = "frozen"
    signals.payment_alert.send(
        None,
        session=session,
        key=f"dispute:{stripe_dispute_id}",
        text=f"Chargeback {stripe_dispute_id} on problem {problem.id} ({outcome}); decide it on the disputes page.",
    )
    return outcome
