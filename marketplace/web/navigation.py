"""What the navigation bar shows a logged-in member: their companies and their unread count."""

from typing import NamedTuple

from flask import g
from sqlalchemy import BindParameter, Integer, bindparam, func, literal, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Company, Membership, Role, User
from marketplace.db import Prepared, PreparedGet, connection_of
from marketplace.notifications.models import Notification


class CompanyLink(NamedTuple):
    """A company of the member's, as the navigation links to it."""

    id: int
    name: str
    role: Role


_MEMBER: BindParameter[int] = bindparam("member_id", type_=Integer)
_UNREAD = select(func.count()).where(Notification.user_id == _MEMBER, Notification.read_at.is_(None))
_ONE_ROW = select(literal(1).label("one")).subquery()
# Built and compiled once, and run on the driver's cursor: it runs on every page a member sees,
# where building it, then SQLAlchemy's execution, each cost more than running it.
_NAVIGATION = Prepared(
    select(_UNREAD.scalar_subquery().label("unread"), Company.id, Company.name, Membership.role)
    .select_from(_ONE_ROW)
    .outerjoin(Membership, Membership.user_id == _MEMBER)
    .outerjoin(Company, Company.id == Membership.company_id)
    .order_by(Company.name)
)
_MEMBERS = PreparedGet(User)
# The member's own row first, then the same as ``_NAVIGATION``: one row per company, or one
# without a company for a member of none.
_MEMBER_WITH_NAVIGATION = Prepared(
    select(
        *_MEMBERS.columns,
        _UNREAD.scalar_subquery().label("unread"),
        Company.id.label("company_id"),
        Company.name.label("company_name"),
        Membership.role,
    )
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(Company, Company.id == Membership.company_id)
    .where(User.id == _MEMBER)
    .order_by(Company.name)
)


def navigation_of(session: Session, user: User) -> tuple[list[CompanyLink], int]:
    """The member's companies and their unread notifications, in one statement: it runs on
    every page a member sees (docs/performance.md, "Statements per page"). Plain rows on the
    session's connection, since the links need no loaded company. What ``load_member`` kept
    for this request, if it loaded this member."""
    kept = g.get("member_navigation")
    if kept is not None and kept[0] == user.id:
        return kept[1], kept[2]
    rows = _NAVIGATION.all(connection_of(session), {"member_id": user.id})
    return [CompanyLink(row.id, row.name, row.role) for row in rows if row.id is not None], rows[0].unread


def load_member(session: Session, member_id: int) -> User | None:
    """The member a page is for, read in the same statement as their navigation bar, which is
    kept for ``navigation_of`` until the request ends: on PostgreSQL each statement is a round
    trip to the server, and every member's page made these two. Only for a request that only
    reads, where nothing the bar shows can change between loading the member and rendering it."""
    rows = _MEMBER_WITH_NAVIGATION.all(connection_of(session), {"member_id": member_id})
    if not rows:
        return None
    member = _MEMBERS.instance(session, rows[0][: len(_MEMBERS.columns)])
    companies = [CompanyLink(row.company_id, row.company_name, row.role) for row in rows if row.company_id is not None]
    g.member_navigation = (member_id, companies, rows[0].unread)
    return member
