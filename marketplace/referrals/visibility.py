"""Who may see which problem: public problems once published, every problem to its company's
members, and a private one to the people on its chains. Chains are this domain's, which is why
the rule lives here and not with problems (docs/architecture.md, "Layers").
"""

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session, joinedload

from marketplace.accounts.models import Membership, User
from marketplace.errors import NotFound
from marketplace.keyset import Window
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals.models import Introduction, Referral


def participant_filter(user_id: int) -> ColumnElement[bool]:
    """Problems where the user takes part: holds or was sent a referral, or was introduced.

    Forwarding and introducing need a place in a chain or a role in the company, so they are not
    counted on their own: a member removed from the company loses its private problems with the
    role, while a chain member keeps them through their place.
    """
    in_chain = exists().where(
        Referral.problem_id == Problem.id,
        or_(Referral.holder_id == user_id, Referral.recipient_user_id == user_id),
    )
    introduced = exists().where(Introduction.problem_id == Problem.id, Introduction.candidate_user_id == user_id)
    return or_(in_chain, introduced)


def visible_filter(user: User | None) -> ColumnElement[bool]:
    """Who sees what: public problems once published; private ones only to the company and chain."""
    public = problems.public_filter()
    if user is None or not getattr(user, "id", None):
        return public
    member = exists().where(Membership.company_id == Problem.company_id, Membership.user_id == user.id)
    return or_(public, member, and_(Problem.status != ProblemStatus.DRAFT, participant_filter(user.id)))


def get_visible(session: Session, user: User | None, problem_id: int) -> Problem:
    # The company and the skills come in the same statement: every page of a problem shows them.
    problem = (
        session.execute(
            select(Problem)
            .where(Problem.id == problem_id, visible_filter(user))
            .options(joinedload(Problem.company), joinedload(Problem.skills))
        )
        .unique()
        .scalar_one_or_none()
    )
    if problem is None:
        raise NotFound("No such problem, or it is not shared with you.")
    return problem


def board(
    session: Session, user: User | None, query: problems.BoardQuery, window: Window | None = None
) -> problems.Page:
    """The board as ``user`` may see it (anonymous when None)."""
    return problems.board(session, query, visible_filter(user), window)
