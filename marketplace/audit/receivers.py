"""One receiver per signal that matters: each adds one audit entry (two for an accept: the
decision and the settlement) to the sender's session, so it commits or rolls back with the change.

Who acted is the member the event itself names when it names one (the sender of a referral, the
holder of a claim, the company member who decided); otherwise the member whose request made the
change (``origin``); otherwise nobody, which means the system. The address is the request's.
"""

from typing import Any

from sqlalchemy.orm import Session

from marketplace import origin
from marketplace.accounts.models import Company, Invitation, Role, User
from marketplace.audit.models import AuditEntry
from marketplace.ledger.models import Dispute, Share
from marketplace.ledger.settlement import SettlementSummary
from marketplace.problems.models import Problem
from marketplace.referrals.attribution import fingerprint
from marketplace.referrals.models import Introduction, Referral


def record(
    session: Session,
    action: str,
    subject: Any,
    *,
    problem_id: int | None,
    actor_id: int | None = None,
    **detail: Any,
) -> None:
    """Add one entry about ``subject`` (a mapped row: its table names the subject's type)."""
    came_from = origin.current()
    session.add(
        AuditEntry(
            actor_id=actor_id if actor_id is not None else came_from.actor_id,
            action=action,
            subject_type=subject.__tablename__,
            subject_id=subject.id,
            problem_id=problem_id,
            ip=came_from.ip,
            detail=detail,
        )
    )


def member_signed_up(user: User, *, session: Session, **_: Any) -> None:
    record(session, "member.signed_up", user, problem_id=None, actor_id=user.id)


def email_verified(user: User, *, session: Session, **_: Any) -> None:
    record(session, "member.email_verified", user, problem_id=None, actor_id=user.id)


def invitation_created(invitation: Invitation, *, session: Session, **_: Any) -> None:
    record(
        session, "invitation.created", invitation, problem_id=None, actor_id=invitation.invited_by_id,
        company_id=invitation.company_id, role=invitation.role.value,
    )  # fmt: skip


def invitation_withdrawn(invitation: Invitation, *, session: Session, actor: User, **_: Any) -> None:
    record(
        session, "invitation.withdrawn", invitation, problem_id=None, actor_id=actor.id,
        company_id=invitation.company_id, role=invitation.role.value,
    )  # fmt: skip


def member_removed(company: Company, *, session: Session, member: User, role: Role, actor: User, **_: Any) -> None:
    record(session, "member.removed", company, problem_id=None, actor_id=actor.id, member_id=member.id, role=role.value)


def problem_published(problem: Problem, *, session: Session, actor_id: int, **_: Any) -> None:
    record(session, "problem.published", problem, problem_id=problem.id, actor_id=actor_id)


def problem_funded(problem: Problem, *, session: Session, **_: Any) -> None:
    record(
        session,
        "problem.funded",
        problem,
        problem_id=problem.id,
        amount=problem.bounty_amount,
        currency=problem.currency,
    )


def problem_closed(problem: Problem, *, session: Session, **_: Any) -> None:
    """Cancelled by a manager, or expired (the system)."""
    record(session, f"problem.{problem.status.value}", problem, problem_id=problem.id)


def referral_sent(referral: Referral, *, session: Session, **_: Any) -> None:
    record(
        session,
        "referral.forwarded",
        referral,
        problem_id=referral.problem_id,
        actor_id=referral.sender_id,
        depth=referral.depth,
        to_member_id=referral.recipient_user_id,
    )


def referral_claimed(referral: Referral, *, session: Session, **_: Any) -> None:
    record(
        session,
        "referral.claimed",
        referral,
        problem_id=referral.problem_id,
        actor_id=referral.holder_id,
        depth=referral.depth,
        parent_id=referral.parent_id,
    )


def introduction_awaiting_consent(introduction: Introduction, *, session: Session, **_: Any) -> None:
    record(
        session,
        "introduction.made",
        introduction,
        problem_id=introduction.problem_id,
        actor_id=introduction.introducer_id,
        place_id=introduction.referral_id,
    )


def introduction_proposed(introduction: Introduction, *, session: Session, **_: Any) -> None:
    """A self-introduction is made and consented at once; any other is the candidate's consent."""
    if introduction.is_self_introduction:
        record(
            session,
            "introduction.made",
            introduction,
            problem_id=introduction.problem_id,
            actor_id=introduction.introducer_id,
            place_id=introduction.referral_id,
            self_introduction=True,
        )
        return
    record(
        session,
        "introduction.consented",
        introduction,
        problem_id=introduction.problem_id,
        actor_id=introduction.candidate_user_id,
    )


def introduction_accepted(
    introduction: Introduction, *, session: Session, chain: list[int], settlement: SettlementSummary, **_: Any
) -> None:
    """The decision, and the settlement it posted along the chain its attribution head names."""
    record(
        session,
        "introduction.accepted",
        introduction,
        problem_id=introduction.problem_id,
        actor_id=introduction.decided_by_id,
        chain=chain,
        chain_fingerprint=fingerprint(settlement.chain_head),
    )
    record(
        session,
        "bounty.settled",
        introduction.problem,
        problem_id=introduction.problem_id,
        actor_id=introduction.decided_by_id,
        **settlement.as_dict(),
    )


def introduction_declined(introduction: Introduction, *, session: Session, **_: Any) -> None:
    record(
        session,
        "introduction.declined",
        introduction,
        problem_id=introduction.problem_id,
        actor_id=introduction.decided_by_id,
    )


def introduction_refused(introduction: Introduction, *, session: Session, **_: Any) -> None:
    """The candidate's no: through the e-mailed link the answering account may be unknown."""
    record(
        session,
        "introduction.refused",
        introduction,
        problem_id=introduction.problem_id,
        actor_id=introduction.candidate_user_id,
    )


def introduction_withdrawn(introduction: Introduction, *, session: Session, was_proposed: bool, **_: Any) -> None:
    record(
        session,
        "introduction.withdrawn",
        introduction,
        problem_id=introduction.problem_id,
        actor_id=introduction.introducer_id,
        was_proposed=was_proposed,
    )


def shares_released(problem: Problem, *, session: Session, shares: list[Share], **_: Any) -> None:
    """The guarantee period ended (the system), or an admin rejected a dispute."""
    record(
        session,
        "shares.released",
        problem,
        problem_id=problem.id,
        shares=[share.id for share in shares],
        amount=sum(share.amount for share in shares),
    )


def dispute_opened(dispute: Dispute, *, session: Session, chargeback: bool, **_: Any) -> None:
    record(
        session,
        "dispute.opened",
        dispute,
        problem_id=dispute.problem_id,
        actor_id=None if chargeback else dispute.opened_by_id,
        chargeback=chargeback,
    )


def dispute_decided(dispute: Dispute, *, session: Session, **_: Any) -> None:
    record(
        session,
        f"dispute.{dispute.status.value}",
        dispute,
        problem_id=dispute.problem_id,
        actor_id=dispute.resolved_by_id,
    )


def refund_completed(problem: Problem, *, session: Session, key: str, **_: Any) -> None:
    """Stripe confirmed the refund reached the company (the system: a webhook or the sweep)."""
    record(session, "refund.completed", problem, problem_id=problem.id, refund_key=key)


def payout_bank_account_added(member: User, *, session: Session, fingerprints: list[str], **_: Any) -> None:
    """Kept for a fraud review: which bank accounts stood behind a member's payouts, and since when."""
    record(session, "payout_account.bank_added", member, problem_id=None, actor_id=member.id, fingerprints=fingerprints)


def payout_sent(share: Share, *, session: Session, transfer_id: str, amount: int, **_: Any) -> None:
    record(
        session,
        "payout.sent",
        share,
        problem_id=share.problem_id,
        member_id=share.member_id,
        amount=amount,
        currency=share.currency,
        transfer_id=transfer_id,
    )


def payout_failed(share: Share, *, session: Session, reason: str, amount: int, **_: Any) -> None:
    record(
        session,
        "payout.failed",
        share,
        problem_id=share.problem_id,
        member_id=share.member_id,
        amount=amount,
        currency=share.currency,
        reason=reason,
    )


def fraud_flag_raised(flag: Any, *, session: Session, **_: Any) -> None:
    """``flag`` is a ``FraudFlag`` (the fraud checks sit above this package, so it is not named)."""
    record(
        session, "fraud.flag_raised", flag, problem_id=flag.problem_id,
        introduction_id=flag.introduction_id, signals=sorted({e["signal"] for e in flag.evidence}),
    )  # fmt: skip


def fraud_flag_decided(flag: Any, *, session: Session, **_: Any) -> None:
    record(session, f"fraud.flag_{flag.status.value}", flag, problem_id=flag.problem_id, actor_id=flag.decided_by_id)


def webhook_endpoint_changed(endpoint: Any, *, session: Session, actor: User, change: str, **_: Any) -> None:
    """Where a company's events go is worth a trace: an endpoint is a way for data to leave."""
    record(
        session, f"webhook.{change}", endpoint, problem_id=None, actor_id=actor.id,
        company_id=endpoint.company_id, url=endpoint.url, event_types=list(endpoint.event_types),
        enabled=endpoint.enabled,
    )  # fmt: skip


def webhook_endpoint_disabled(endpoint: Any, *, session: Session, company_id: int, **_: Any) -> None:
    record(session, "webhook.disabled", endpoint, problem_id=None, company_id=company_id, url=endpoint.url)
