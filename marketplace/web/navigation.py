"""What the navigation bar shows a logged-in member: their companies and their unread count."""

from collections.abc import Sequence

from sqlalchemy import BindParameter, Integer, Row, bindparam, func, literal, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Company, Membership, User
from marketplace.db import connection_of
from marketplace.notifications.models import Notification

_MEMBER: BindParameter[int] = bindparam("member_id", type_=Integer)
_UNREAD = select(func.count()).where(Notification.user_id == _MEMBER, Notification.read_at.is_(None))
_ONE_ROW = select(literal(1).label("one")).subquery()
# Built once: it runs on every page a member sees, where building it cost more than running it.
_NAVIGATION = (
    select(_UNREAD.scalar_subquery().label("unread"), Company.id, Company.name, Membership.role)
    .select_from(_ONE_ROW)
    .outerjoin(Membership, Membership.user_id == _MEMBER)
    .outerjoin(Company, Company.id == Membership.company_id)
    .order_by(Company.name)
)


def navigation_of(session: Session, user: User) -> tuple[Sequence[Row], int]:
    """The member's companies (``id``, ``name``, ``role``), and their unread notifications, in
    one statement: it runs on every page a member sees (docs/performance.md, "Statements per
    page"). Plain rows on the session's connection, since the links need no loaded company.

    One row per company, or a single row without a company for a member of none; every row
    carries the unread count."""
    rows = connection_of(session).execute(_NAVIGATION, {"member_id": user.id}).all()
    return [row for row in rows if row.id is not None], rows[0].unread
