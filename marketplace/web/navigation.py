"""What the navigation bar shows a logged-in member: their companies and their unread count."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, Integer, bindparam, func, literal, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Company, Membership, User
from marketplace.db import Prepared, connection_of
from marketplace.notifications.models import Notification

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


def navigation_of(session: Session, user: User) -> tuple[Sequence[Any], int]:
    """The member's companies (``id``, ``name``, ``role``), and their unread notifications, in
    one statement: it runs on every page a member sees (docs/performance.md, "Statements per
    page"). Plain rows on the session's connection, since the links need no loaded company.

    One row per company, or a single row without a company for a member of none; every row
    carries the unread count."""
    rows = _NAVIGATION.all(connection_of(session), {"member_id": user.id})
    return [row for row in rows if row.id is not None], rows[0].unread
