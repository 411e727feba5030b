"""What the navigation bar shows a logged-in member: their companies and their unread count."""

from sqlalchemy import BindParameter, Integer, bindparam, func, literal, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Company, Membership, Role, User
from marketplace.notifications.models import Notification

_MEMBER: BindParameter[int] = bindparam("member_id", type_=Integer)
_UNREAD = select(func.count()).where(Notification.user_id == _MEMBER, Notification.read_at.is_(None))
_ONE_ROW = select(literal(1).label("one")).subquery()
# Built once: it runs on every page a member sees, where building it cost more than running it.
_NAVIGATION = (
    select(_UNREAD.scalar_subquery(), Company, Membership.role)
    .select_from(_ONE_ROW)
    .outerjoin(Membership, Membership.user_id == _MEMBER)
    .outerjoin(Company, Company.id == Membership.company_id)
    .order_by(Company.name)
)


def navigation_of(session: Session, user: User) -> tuple[list[tuple[Company, Role]], int]:
    """The member's companies with their role, and their unread notifications, in one statement:
    it runs on every page a member sees (docs/performance.md, "Statements per page").

    One row per company, or a single row without a company for a member of none; every row
    carries the unread count."""
    rows = session.execute(_NAVIGATION, {"member_id": user.id}).all()
    companies = [(company, role) for _, company, role in rows if company is not None]
    return companies, rows[0][0]
