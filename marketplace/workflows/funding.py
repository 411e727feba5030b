"""A problem's bounty: paid into escrow, or given back when the problem closes unmatched.

Funding opens the problem and posts the payment together; closing (cancel or expiry) ends its
pending work, refunds its escrow and tells the company, together; the last returned refund
marks the problem refunded.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.accounts.service import require_manager
from marketplace.db import utcnow
from marketplace.errors import ValidationError
from marketplace.ledger import settlement
from marketplace.ledger.posting import Posted
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.problems.service import ProblemError
from marketplace.referrals import chains, visibility

CLOSING = {ProblemStatus.CANCELLED, ProblemStatus.EXPIRED, ProblemStatus.DISPUTED}


def fund_problem(
    session: Session,
    problem_id: int,
    *,
    amount: int | None = None,
    currency: str | None = None,
    reference: str = "test-payment",
) -> Problem:
    """Open a problem whose bounty has been paid, and put the payment in its escrow.

    The Checkout webhook passes what was paid and the payment's id; test payments (the demo,
    the "fund" button in development) default to exactly the bounty.
    """
    problem = session.get_one(Problem, problem_id)
    problems.transition(session, problem, {ProblemStatus.AWAITING_PAYMENT}, ProblemStatus.OPEN, funded_at=utcnow())
    settlement.record_funding(
        session,
        problem,
        amount=problem.bounty_amount if amount is None else amount,
        currency=currency or problem.currency,
        reference=reference,
    )
    signals.problem_funded.send(problem, session=session)
    return problem


def fund_without_payment(session: Session, actor: User, problem_id: int, *, allowed: bool) -> Problem:
    """The test-payment button: a manager of the company funds it without a card, where no
    payment provider is configured (``allowed``)."""
    problem = visibility.get_visible(session, actor, problem_id)
    if not allowed:
        raise ValidationError("Fund the bounty through checkout.", code="use_checkout")
    require_manager(session, actor, problem.company_id)
    return fund_problem(session, problem.id)


def cancel_problem(session: Session, actor: User, problem_id: int) -> Problem:
    problem = visibility.get_visible(session, actor, problem_id)
    require_manager(session, actor, problem.company_id)
    problems.transition(
        session,
        problem,
        {ProblemStatus.DRAFT, ProblemStatus.AWAITING_PAYMENT, ProblemStatus.OPEN},
        ProblemStatus.CANCELLED,
        closed_at=utcnow(),
    )
    _close_unmatched(session, problem)
    return problem


def expire_due(session: Session, now: datetime | None = None) -> list[int]:
    """Close every problem past its expiry that is still waiting or open; returns their ids."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Problem).where(
                Problem.expires_at <= now,
                Problem.status.in_([ProblemStatus.AWAITING_PAYMENT, ProblemStatus.OPEN]),
            )
        )
    )
    expired = []
    for problem in due:
        try:
            problems.transition(
                session,
                problem,
                {ProblemStatus.AWAITING_PAYMENT, ProblemStatus.OPEN},
                ProblemStatus.EXPIRED,
                closed_at=now,
            )
        except ProblemError:
            continue  # Someone accepted an introduction in the meantime.
        _close_unmatched(session, problem)
        expired.append(problem.id)
    return expired


def _close_unmatched(session: Session, problem: Problem) -> None:
    """Pending work expires, a paid bounty is refunded in full, and the company hears of it."""
    chains.close_open_work(session, problem)
    settlement.refund_unspent(session, problem)
    signals.problem_closed.send(problem, session=session)


def complete_refund(session: Session, key: str, *, reference: str) -> Posted:
    """A refund came back to the company (the payment work calls this).

    When the last refund of a problem that closed without a lasting match is back, the problem
    becomes ``refunded``.
    """
    problem, posted = settlement.record_refund_returned(session, key, reference=reference)
    refunds = settlement.refunds_of(session, problem)
    closed = any(r.key == settlement.refund_key(problem.id) for r in refunds)
    if closed and all(r.done for r in refunds) and problem.status in CLOSING:
        problems.transition(session, problem, CLOSING, ProblemStatus.REFUNDED)
    if posted.created:
        signals.refund_completed.send(problem, session=session, key=key)
    return posted
