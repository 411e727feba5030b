"""What the navigation bar shows a logged-in member: their companies and their unread count."""

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Company, Membership, Role, User
from marketplace.notifications.models import Notification


def navigation_of(session: Session, user: User) -> tuple[list[tuple[Company, Role]], int]:
    """The member's companies with their role, and their unread notifications, in one statement:
    it runs on every page a member sees (docs/performance.md, "Statements per page").

    One row per company, or a single row without a company for a member of none; every row
    carries the unread count."""
    unread = (
        select(func.count()).where(Notification.user_id == user.id, Notification.read_at.is_(None)).scalar_subquery()
    )
    one_row = select(literal(1).label("one")).subquery()
    rows = session.execute(
        select(unread, Company, Membership.role)
        .select_from(one_row)
        .outerjoin(Membership, Membership.user_id == user.id)
        .outerjoin(Company, Company.id == Membership.company_id)
        .order_by(Company.name)
    ).all()
    companies = [(company, role) for _, company, role in rows if company is not None]
    return companies, rows[0][0]
