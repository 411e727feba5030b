"""What the navigation bar shows a logged-in member: their companies and their unread count."""

from typing import Any, NamedTuple

from flask import g
from sqlalchemy import BindParameter, Integer, bindparam, func, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Company, Membership, Role, User
from marketplace.db import InstanceLoader, Prepared, Read, connection_of
from marketplace.notifications.models import Notification


class CompanyLink(NamedTuple):
    """A company of the member's, as the navigation links to it."""

    id: int
    name: str
    role: Role


_MEMBER: BindParameter[int] = bindparam("member_id", type_=Integer)
_UNREAD = select(func.count()).where(Notification.user_id == _MEMBER, Notification.read_at.is_(None))
_MEMBERS = InstanceLoader(User)
# The member's row with their unread count and each of their companies: one row per company, or
# one without a company for a member of none. Built and compiled once, and run on the driver's
# cursor: it runs on every page a member sees, where building it, then SQLAlchemy's execution,
# each cost more than running it.
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

Navigation = tuple[list[CompanyLink], int]


def member_read(member_id: int) -> Read:
    """The statement ``load_member`` runs, to be read ahead with a page's others."""
    return _MEMBER_WITH_NAVIGATION.read(member_id=member_id)


def _read(session: Session, member_id: int) -> tuple[list[Any], Navigation]:
    rows = member_read(member_id).all(connection_of(session))
    companies = [CompanyLink(row.company_id, row.company_name, row.role) for row in rows if row.company_id is not None]
    return rows, (companies, rows[0].unread if rows else 0)


def navigation_of(session: Session, user: User) -> Navigation:
    """The member's companies and their unread notifications, in one statement: it runs on
    every page a member sees (docs/performance.md, "Statements per page"). Plain rows on the
    session's connection, since the links need no loaded company. What ``load_member`` kept
    for this request, if it loaded this member."""
    kept = g.get("member_navigation")
    if kept is not None and kept[0] == user.id:
        return kept[1]
    return _read(session, user.id)[1]


def load_member(session: Session, member_id: int) -> User | None:
    """The member a page is for, read in the same statement as their navigation bar, which is
    kept for ``navigation_of`` until the request ends: on PostgreSQL each statement is a round
    trip to the server, and every member's page made these two. Only for a request that only
    reads, where nothing the bar shows can change between loading the member and rendering it."""
    rows, navigation = _read(session, member_id)
    if not rows:
        return None
    g.member_navigation = (member_id, navigation)
    return _MEMBERS.instance(session, rows[0][: len(_MEMBERS.columns)])
