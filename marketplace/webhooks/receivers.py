"""The domain signals a company's webhooks carry, each turned into the payload its endpoints get.

Each receiver runs inside its event's transaction and only queues messages (``service.publish``)
for the endpoints of the company whose problem it is. People on chains appear as they appear to
the company (``appearance.COMPANY``): a member who keeps their name off chains is "Anonymous
member" with no id; a candidate is named only once they agreed to be introduced.
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.ledger.models import Dispute, Share
from marketplace.ledger.settlement import SettlementSummary
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import appearance
from marketplace.referrals.introductions import company_sees_candidate
from marketplace.referrals.models import Introduction, Referral
from marketplace.webhooks.service import publish


def _person(person: User | None) -> dict[str, Any]:
    return {"id": appearance.id_of(person, appearance.COMPANY), "name": appearance.name_of(person, appearance.COMPANY)}


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "id": problem.id,
        "title": problem.title,
        "status": problem.status.value,
        "bounty": {"amount": problem.bounty_amount, "currency": problem.currency},
        "expires_at": problem.expires_at.isoformat() if problem.expires_at else None,
    }


def _introduction(introduction: Introduction) -> dict[str, Any]:
    agreed = company_sees_candidate(introduction)
    return {
        "id": introduction.id,
        "status": introduction.status.value,
        "introducer": _person(introduction.introducer),
        "message": introduction.message,
        "candidate": {"name": introduction.candidate_name, "email": introduction.candidate_email} if agreed else None,
        "candidate_note": introduction.candidate_note if agreed else None,
    }


def problem_funded(problem: Problem, *, session: Session, **_: Any) -> None:
    publish(session, problem.company_id, "problem.funded", {"problem": _problem(problem)})


# A cancellation is sent too, though a manager of the company made it: its other managers, and
# the systems that mirror its problems, would otherwise miss it.
_CLOSED_AS = {ProblemStatus.EXPIRED: "problem.expired", ProblemStatus.CANCELLED: "problem.cancelled"}


def problem_closed(problem: Problem, *, session: Session, **_: Any) -> None:
    publish(session, problem.company_id, _CLOSED_AS[problem.status], {"problem": _problem(problem)})


def refund_completed(problem: Problem, *, session: Session, **_: Any) -> None:
    publish(session, problem.company_id, "problem.refunded", {"problem": _problem(problem)})


def referral_claimed(referral: Referral, *, session: Session, **_: Any) -> None:
    problem = referral.problem
    data = {
        "problem": _problem(problem),
        "referral": {"id": referral.id, "depth": referral.depth, "holder": _person(referral.holder)},
    }
    publish(session, problem.company_id, "referral.claimed", data)


def introduction_proposed(introduction: Introduction, *, session: Session, **_: Any) -> None:
    problem = introduction.problem
    data = {"problem": _problem(problem), "introduction": _introduction(introduction)}
    publish(session, problem.company_id, "introduction.proposed", data)


def introduction_accepted(
    introduction: Introduction, *, session: Session, chain: list[int], settlement: SettlementSummary, **_: Any
) -> None:
    """The paid chain, top first, as the company sees it, and where the bounty went."""
    problem = introduction.problem
    members = {user.id: user for user in session.scalars(select(User).where(User.id.in_(chain)))}
    paid: dict[int, int] = {}
    for line in settlement.shares:
        paid[line.user_id] = paid.get(line.user_id, 0) + line.amount
    data = {
        "problem": _problem(problem),
        "introduction": _introduction(introduction),
        "chain": [{**_person(members.get(user_id)), "share": paid.get(user_id, 0)} for user_id in chain],
        "settlement": {
            "currency": settlement.currency,
            "platform_fee": settlement.platform_fee,
            "candidate_share": settlement.candidate_share,
            "returned_to_company": settlement.remainder,
        },
    }
    publish(session, problem.company_id, "introduction.accepted", data)


def shares_released(problem: Problem, *, session: Session, shares: list[Share], **_: Any) -> None:
    """How much became the chain's, in total: who was paid is in ``introduction.accepted``."""
    released = {"count": len(shares), "amount": sum(share.amount for share in shares), "currency": problem.currency}
    publish(session, problem.company_id, "shares.released", {"problem": _problem(problem), "released": released})


def dispute_opened(dispute: Dispute, *, session: Session, chargeback: bool = False, **_: Any) -> None:
    problem = dispute.problem
    data = {
        "problem": _problem(problem),
        "dispute": {
            "id": dispute.id,
            "status": dispute.status.value,
            "reason": dispute.reason,
            "chargeback": chargeback,
        },
    }
    publish(session, problem.company_id, "dispute.opened", data)
