"""Who may see which problem: public problems once published, every problem to its company's
members, and a private one to the people on its chains. Chains are this domain's, which is why
the rule lives here and not with problems (docs/architecture.md, "Layers").
"""

import functools

from sqlalchemy import BindParameter, ColumnElement, Integer, Select, and_, bindparam, exists, literal, or_, select
from sqlalchemy.orm import Session, aliased

from marketplace.accounts.models import Company, Membership, Role, Skill, User
from marketplace.db import InstanceLoader, Prepared, Read, connection_of
from marketplace.errors import NotFound
from marketplace.keyset import Window
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus, problem_skills
from marketplace.referrals.models import Introduction, Referral


def participant_filter(user_id: int | BindParameter[int]) -> ColumnElement[bool]:
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
    return _visible_to(getattr(user, "id", None) if user is not None else None)


def _visible_to(user_id: int | BindParameter[int] | None) -> ColumnElement[bool]:
    public = problems.public_filter()
    if user_id is None:
        return public
    member = exists().where(Membership.company_id == Problem.company_id, Membership.user_id == user_id)
    return or_(public, member, and_(Problem.status != ProblemStatus.DRAFT, participant_filter(user_id)))


def get_visible(session: Session, user: User | None, problem_id: int) -> Problem:
    return visible_with_role(session, user, problem_id)[0]


# Each problem's columns, its company's and its skills', put together into the ORM's own
# instances (``db.InstanceLoader``): through the ORM's query, loading the problem with its
# company and skills cost as much as the rest of reading the problem page's chains.
_PROBLEMS, _COMPANIES, _SKILLS = InstanceLoader(Problem), InstanceLoader(Company), InstanceLoader(Skill)
_COMPANY_AT = len(_PROBLEMS.columns)
_SKILL_AT = _COMPANY_AT + len(_COMPANIES.columns)
_ROLE_AT = _SKILL_AT + len(_SKILLS.columns)


@functools.cache
def _problem_with_role(for_member: bool) -> Select:
    """Built once per kind of viewer: every page of a problem runs it, and building it cost twice
    as much as running it. The company, the skills and the role come in the same statement:
    every such page shows the first two, and the problem page decides by the third.

    The skills are joined flat (``problems LEFT JOIN problem_skills LEFT JOIN skills``), not
    as ``joinedload`` nests a many-to-many (``LEFT JOIN (problem_skills JOIN skills)``): SQLite
    cannot flatten that nested join and built it whole for every problem page, every problem's
    skills, before picking this one's (docs/performance.md, "Indexes and rendering")."""
    viewer_id: BindParameter[int] | None = bindparam("viewer_id", type_=Integer) if for_member else None
    # An alias, so that the membership test inside ``_visible_to`` is not correlated to it.
    viewer_membership = aliased(Membership)
    query = (
        select(
            *_PROBLEMS.columns,
            *_COMPANIES.columns,
            *_SKILLS.columns,
            viewer_membership.role if for_member else literal(None),
        )
        .join(Company, Company.id == Problem.company_id)
        .outerjoin(problem_skills, problem_skills.c.problem_id == Problem.id)
        .outerjoin(Skill, Skill.id == problem_skills.c.skill_id)
        .where(Problem.id == bindparam("problem_id"), _visible_to(viewer_id))
        .order_by(Skill.slug)
    )
    if for_member:
        query = query.outerjoin(
            viewer_membership,
            and_(viewer_membership.company_id == Problem.company_id, viewer_membership.user_id == viewer_id),
        )
    return query


_PROBLEM_WITH_ROLE = {for_member: Prepared(_problem_with_role(for_member)) for for_member in (False, True)}


def problem_with_role_read(viewer_id: int | None, problem_id: int) -> Read:
    """The statement ``visible_with_role`` runs, to be read ahead with a page's others."""
    if viewer_id is None:
        return _PROBLEM_WITH_ROLE[False].read(problem_id=problem_id)
    return _PROBLEM_WITH_ROLE[True].read(problem_id=problem_id, viewer_id=viewer_id)


def visible_with_role(session: Session, user: User | None, problem_id: int) -> tuple[Problem, Role | None]:
    """The problem if ``user`` may see it, with its company and skills, and their role in its
    company (None for anyone else)."""
    rows = problem_with_role_read(getattr(user, "id", None), problem_id).all(connection_of(session))
    if not rows:
        raise NotFound("No such problem, or it is not shared with you.")
    first = rows[0]
    problem = _PROBLEMS.instance(session, first[:_COMPANY_AT])
    _PROBLEMS.relate(
        problem,
        company=_COMPANIES.instance(session, first[_COMPANY_AT:_SKILL_AT]),
        skills=[
            skill for row in rows if (skill := _SKILLS.instance_if_any(session, row[_SKILL_AT:_ROLE_AT])) is not None
        ],
    )
    role = first[_ROLE_AT]
    return problem, Role(role) if role is not None else None


def board(
    session: Session, user: User | None, query: problems.BoardQuery, window: Window | None = None
) -> problems.Page:
    """The board as ``user`` may see it (anonymous when None)."""
    return problems.board(session, query, visible_filter(user), window)
