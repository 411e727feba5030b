"""Raising a fraud flag when a chain settles, and a platform admin's review (docs/fraud.md).

A flag holds the settlement by moving its problem from ``in guarantee`` to ``disputed``, the
state a company's dispute uses: the release job passes a disputed problem by and ``release``
refuses it, so no new rule is needed in the ledger or the workflows. Cleared, the problem goes
back to its guarantee period (released at once if that has ended); upheld, the shares and the
fee are clawed back and the escrow refunded, exactly as for an upheld dispute, and the problem
carries an upheld dispute in the platform's name, so that its money reads as for any other.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.audit.models import AuditEntry
from marketplace.db import guarded_update, utcnow
from marketplace.errors import Conflict, NotFound
from marketplace.fraud.checks import ChainMember, Evidence, Forward, evidence_for
from marketplace.fraud.models import FraudFlag, FraudFlagStatus
from marketplace.ledger import disputes, settlement
from marketplace.ledger.disputes import require_platform_admin
from marketplace.ledger.models import Share, ShareRole, ShareStatus
from marketplace.payments.models import PayoutAccount
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals.models import Introduction, IntroductionStatus, Referral
from marketplace.workflows.settlement import release

SIGNED_UP = "member.signed_up"


class FraudReviewError(Conflict):
    code = "fraud_flag_state"


def chain_members(session: Session, introduction: Introduction, link_ids: list[int]) -> list[ChainMember]:
    """The paid links and the candidate, with where and when each signed up (the audit log)."""
    ids = set(link_ids)
    if introduction.candidate_user_id is not None:
        ids.add(introduction.candidate_user_id)
    if not ids:
        return []
    users = session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)).all()
    signups = {
        entry.subject_id: entry
        for entry in session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == SIGNED_UP, AuditEntry.subject_type == "users", AuditEntry.subject_id.in_(ids)
            )
        )
    }
    banks = dict(
        session.execute(
            select(PayoutAccount.user_id, PayoutAccount.bank_fingerprints).where(PayoutAccount.user_id.in_(ids))
        ).all()
    )
    return [
        ChainMember(
            id=user.id,
            email=user.email,
            name=user.name,
            email_skeleton=user.email_skeleton,
            created_at=user.created_at,
            signup_ip=signups[user.id].ip if user.id in signups else None,
            signed_up_at=signups[user.id].at if user.id in signups else None,
            bank_fingerprints=frozenset(banks.get(user.id) or ()),
        )
        for user in users
    ]


def chain_forwards(session: Session, introduction: Introduction) -> list[Forward]:
    """Each forward along the introduction's chain, top first: when the parent link was claimed
    and when its holder passed it on."""
    forwards: list[Forward] = []
    referral = session.get(Referral, introduction.referral_id) if introduction.referral_id else None
    while referral is not None and referral.parent is not None:
        forwards.append(Forward(claimed_at=referral.parent.claimed_at, forwarded_at=referral.created_at))
        referral = referral.parent
    return forwards[::-1]


def screen_settlement(session: Session, introduction: Introduction, link_ids: list[int]) -> FraudFlag | None:
    """Run every check over a chain just settled; on any evidence, hold the shares and flag it."""
    evidence = evidence_for(chain_members(session, introduction, link_ids), chain_forwards(session, introduction))
    if not evidence:
        return None
    return raise_flag(session, introduction, evidence)


def screen_unpaid_settlements(session: Session, member: User) -> list[FraudFlag]:
    """Screen again every unflagged settlement that still owes ``member`` a share, once Stripe
    shows a new bank account behind their payout account: members usually set up payouts after
    they are paid, so a bank account shared along a chain is seldom known when it settles."""
    unpaid = {ShareStatus.HELD, ShareStatus.AVAILABLE}
    problem_ids = select(Share.problem_id).where(Share.member_id == member.id, Share.status.in_(unpaid))
    accepted = session.scalars(
        select(Introduction)
        .where(
            Introduction.problem_id.in_(problem_ids),
            Introduction.status == IntroductionStatus.ACCEPTED,
            ~select(FraudFlag.id).where(FraudFlag.problem_id == Introduction.problem_id).exists(),
        )
        .order_by(Introduction.id)
    ).all()
    flags = []
    for introduction in accepted:
        links = session.scalars(
            select(Share.member_id)
            .where(Share.problem_id == introduction.problem_id, Share.role == ShareRole.LINK)
            .order_by(Share.position)
        ).all()
        flag = screen_settlement(session, introduction, list(links))
        if flag is not None:
            flags.append(flag)
    return flags


def raise_flag(session: Session, introduction: Introduction, evidence: list[Evidence]) -> FraudFlag:
    problem = introduction.problem
    if problem.status == ProblemStatus.IN_GUARANTEE:
        problems.transition(session, problem, {ProblemStatus.IN_GUARANTEE}, ProblemStatus.DISPUTED)
    flag = FraudFlag(problem_id=problem.id, introduction_id=introduction.id, evidence=[e.as_json() for e in evidence])
    session.add(flag)
    session.flush()
    signals.fraud_flag_raised.send(flag, session=session)
    held = "its shares are held" if problem.status == ProblemStatus.DISPUTED else "its shares were already released"
    signals.payment_alert.send(
        None,
        session=session,
        key=f"fraud:problem:{problem.id}",
        text=(
            f"The chain paid on problem {problem.id} raised fraud signals "
            f"({', '.join(sorted({e.signal for e in evidence}))}); {held}. Review it on the fraud page."
        ),
        link="/admin/fraud",
    )
    return flag


def _decide(session: Session, actor: User, flag_id: int, status: FraudFlagStatus, note: str) -> FraudFlag:
    require_platform_admin(actor)
    flag = session.get(FraudFlag, flag_id)
    if flag is None:
        raise NotFound("No such fraud flag.")
    decided = guarded_update(
        session,
        flag,
        {FraudFlagStatus.OPEN},
        status=status,
        decided_by_id=actor.id,
        decided_at=utcnow(),
        note=(note or "").strip(),
    )
    if not decided:
        raise FraudReviewError(f"This flag is already {flag.status.value}.")
    return flag


def clear(session: Session, actor: User, flag_id: int, *, note: str = "", now: datetime | None = None) -> FraudFlag:
    """The chain is genuine: its problem returns to the guarantee period, and its shares are
    released now if that period has ended (otherwise the release job releases them when it does)."""
    flag = _decide(session, actor, flag_id, FraudFlagStatus.CLEARED, note)
    problem = flag.problem
    # A dispute (a chargeback, say) opened during the review keeps the money held until it is decided.
    if problem.status == ProblemStatus.DISPUTED and disputes.dispute_of(session, problem.id) is None:
        problems.transition(session, problem, {ProblemStatus.DISPUTED}, ProblemStatus.IN_GUARANTEE)
        ends = settlement.guarantee_ends(problem)
        if ends is not None and ends <= (now or utcnow()):
            release(session, problem, {ProblemStatus.IN_GUARANTEE})
    signals.fraud_flag_decided.send(flag, session=session)
    return flag


def uphold(session: Session, actor: User, flag_id: int, *, note: str = "") -> FraudFlag:
    """The chain was gamed: every held share and the fee go back to escrow and the company is
    refunded, as for an upheld dispute. Refused once the shares were released."""
    flag = _decide(session, actor, flag_id, FraudFlagStatus.UPHELD, note)
    problem: Problem = flag.problem
    if problem.status != ProblemStatus.DISPUTED:
        raise FraudReviewError("The shares were already released; they cannot be clawed back here.")
    if disputes.dispute_of(session, problem.id) is not None:
        raise FraudReviewError("A dispute is open on this problem too; decide it on the disputes page.")
    disputes.upheld_for_fraud(session, actor, problem, flag.note)
    disputes.claw_back(session, problem)
    settlement.refund_unspent(session, problem)
    signals.fraud_flag_decided.send(flag, session=session)
    return flag


def flags_for_admin(session: Session, actor: User) -> list[FraudFlag]:
    """Open flags first (oldest first: they wait longest), then the latest decisions."""
    require_platform_admin(actor)
    open_first = (FraudFlag.status != FraudFlagStatus.OPEN, FraudFlag.raised_at)
    return list(session.scalars(select(FraudFlag).order_by(*open_first).limit(200)))
