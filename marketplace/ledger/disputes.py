"""Reporting a failed introduction during the guarantee period, and an admin's decision.

While a dispute is open the problem is ``disputed`` and its shares stay held: the release job
passes it by. Upheld, every share is clawed back to escrow, the platform fee with them (the
company pays only for an introduction that held), and the escrow is refunded; rejected, the
shares are released and the problem is settled. The problem's state changes are the
``workflows.disputes`` use cases'; this module keeps the dispute rows and the clawback.
"""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.accounts.service import require_manager
from marketplace.db import guarded_update, utcnow
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationError
from marketplace.ledger.accounts import PLATFORM_FEES, escrow_account, member_account
from marketplace.ledger.models import Dispute, DisputeStatus, Share, ShareStatus, TransactionKind
from marketplace.ledger.posting import Entry, post, transaction_by_key
from marketplace.ledger.settlement import guarantee_ends, settle_key
from marketplace.problems.models import Problem, ProblemStatus

MIN_REASON, MAX_REASON = 10, 5000


class DisputeError(Conflict):
    code = "dispute_state"


def require_platform_admin(user: User | None) -> None:
    if user is None or not getattr(user, "is_platform_admin", False):
        raise Forbidden("Only a platform admin can decide disputes.")


def checked_reason(session: Session, actor: User, problem: Problem, reason: str, now: datetime) -> str:
    """Whether ``actor`` may report this problem's introduction as failed now, and why: the
    reason, cleaned. An owner or admin of the company, within the guarantee period."""
    require_manager(session, actor, problem.company_id)
    reason = (reason or "").strip()
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        raise ValidationError(
            f"Say what went wrong in {MIN_REASON} to {MAX_REASON:,} characters.", code="invalid_reason"
        )
    ends = guarantee_ends(problem)
    if problem.status == ProblemStatus.IN_GUARANTEE and ends is not None and now >= ends:
        raise DisputeError(f"The guarantee period ended on {ends:%d %b %Y}; the shares are being released.")
    return reason


def record_dispute(session: Session, actor: User, problem: Problem, reason: str, now: datetime) -> Dispute:
    dispute = Dispute(problem_id=problem.id, opened_by_id=actor.id, reason=reason, opened_at=now)
    session.add(dispute)
    session.flush()
    signals.dispute_opened.send(dispute, session=session, chargeback=False)
    return dispute


def chargeback_dispute(session: Session, problem: Problem, *, stripe_dispute_id: str, reason: str) -> Dispute:
    """A chargeback opens a dispute in the company's name, for an admin to decide."""
    dispute = Dispute(
        problem_id=problem.id,
        opened_by_id=problem.created_by_id,
        reason=f"The card payment was disputed with the bank (Stripe dispute {stripe_dispute_id}: {reason}).",
    )
    session.add(dispute)
    session.flush()
    signals.dispute_opened.send(dispute, session=session, chargeback=True)
    return dispute


FRAUD_REASON = "The platform found that the chain which introduced the expert was not genuine."


def upheld_for_fraud(session: Session, actor: User, problem: Problem, note: str) -> Dispute:
    """A platform admin upheld a fraud flag on this problem: it is recorded as a dispute the
    platform opened and upheld at once, so that the problem's money reads as for any upheld
    dispute (clawed-back shares, a refund) on its page, in the books and to ``verify``. The fraud
    review announces the decision; no dispute signal is sent."""
    require_platform_admin(actor)
    now = utcnow()
    dispute = Dispute(
        problem_id=problem.id,
        opened_by_id=actor.id,
        reason=FRAUD_REASON,
        opened_at=now,
        status=DisputeStatus.UPHELD,
        resolved_by_id=actor.id,
        resolution_note=(note or "").strip(),
        resolved_at=now,
    )
    session.add(dispute)
    session.flush()
    return dispute


def decide(session: Session, actor: User, dispute_id: int, decision: str, *, note: str = "") -> Dispute:
    """Record an admin's "uphold" or "reject"; only a platform admin learns whether a dispute exists."""
    require_platform_admin(actor)
    dispute = session.get(Dispute, dispute_id)
    if dispute is None:
        raise NotFound("No such dispute.")
    status = {"uphold": DisputeStatus.UPHELD, "reject": DisputeStatus.REJECTED}[decision]
    decided = guarded_update(
        session,
        dispute,
        {DisputeStatus.OPEN},
        status=status,
        resolved_by_id=actor.id,
        resolution_note=(note or "").strip(),
        resolved_at=utcnow(),
    )
    if not decided:
        raise DisputeError(f"This dispute is already {dispute.status.value}.")
    signals.dispute_decided.send(dispute, session=session)
    return dispute


def claw_back(session: Session, problem: Problem) -> None:
    """The introduction failed: every held share and the platform fee go back to escrow."""
    held = session.scalars(select(Share).where(Share.problem_id == problem.id, Share.status == ShareStatus.HELD)).all()
    entries = [Entry(member_account(s.member_id, "held"), -s.amount, s.currency) for s in held]
    settled = transaction_by_key(session, settle_key(problem.id))
    fee = sum(e.amount for e in settled.entries if e.account.code == PLATFORM_FEES) if settled else 0
    if fee:
        entries.append(Entry(PLATFORM_FEES, -fee, problem.currency))
    if entries:
        entries.append(Entry(escrow_account(problem.id), -sum(e.amount for e in entries), problem.currency))
        post(session, TransactionKind.CLAWBACK, f"clawback:problem:{problem.id}", entries, problem_id=problem.id)
    session.execute(
        update(Share)
        .where(Share.problem_id == problem.id, Share.status == ShareStatus.HELD)
        .values(status=ShareStatus.CLAWED_BACK)
        .execution_options(synchronize_session=False)
    )


def dispute_of(session: Session, problem_id: int) -> Dispute | None:
    """The problem's dispute, if any, with the member who opened it (the page names them)."""
    return session.scalar(
        select(Dispute).where(Dispute.problem_id == problem_id).options(joinedload(Dispute.opened_by))
    )


def disputes_for_admin(session: Session, actor: User) -> list[Dispute]:
    """Open disputes first (oldest first: they wait longest), then the latest decisions."""
    require_platform_admin(actor)
    open_first = (Dispute.status != DisputeStatus.OPEN, Dispute.opened_at)
    return list(session.scalars(select(Dispute).order_by(*open_first).limit(200)))
