"""Reading the audit log: every entry for platform admins, a problem's history for its people.

Both reads are one statement each, whatever the number of entries (the actor is joined in).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session, joinedload

from marketplace.accounts.models import User
from marketplace.audit.models import AuditEntry
from marketplace.db import Prepared, Read, connection_of
from marketplace.errors import ValidationError
from marketplace.ledger.disputes import require_platform_admin
from marketplace.referrals import appearance
from marketplace.referrals.read_models import ProblemPage

PAGE_SIZE = 50
MAX_PAGE = 10_000

# What each action reads as on a problem's history, after the actor's name.
WORDS = {
    "problem.published": "published the problem",
    "problem.funded": "funded the bounty",
    "problem.cancelled": "cancelled the problem",
    "problem.expired": "closed the problem: it expired",
    "referral.forwarded": "forwarded the problem",
    "referral.claimed": "took a place in a chain",
    "introduction.made": "introduced a candidate",
    "introduction.consented": "agreed to be introduced",
    "introduction.accepted": "accepted an introduction",
    "introduction.declined": "declined an introduction",
    "bounty.settled": "settled the bounty along the chain",
    "shares.released": "released the shares at the end of the guarantee",
    "dispute.opened": "reported the introduction as failed",
    "dispute.upheld": "upheld the report: the bounty is refunded",
    "dispute.rejected": "rejected the report: the shares are released",
    "payout.sent": "sent a payout",
    "payout.failed": "could not send a payout",
}
SYSTEM = "The platform"


@dataclass(frozen=True)
class Page:
    entries: list[AuditEntry]
    page: int
    has_next: bool


def admin_page(
    session: Session,
    actor: User,
    *,
    subject_type: str = "",
    subject_id: int | None = None,
    problem_id: int | None = None,
    page: int = 1,
) -> Page:
    """The log for a platform admin, newest first, filtered by subject and by problem."""
    require_platform_admin(actor)
    if not 1 <= page <= MAX_PAGE:
        raise ValidationError(f"The page must be between 1 and {MAX_PAGE}.", code="invalid_query")
    query = select(AuditEntry).options(joinedload(AuditEntry.actor)).order_by(AuditEntry.id.desc())
    if subject_type:
        query = query.where(AuditEntry.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(AuditEntry.subject_id == subject_id)
    if problem_id is not None:
        query = query.where(AuditEntry.problem_id == problem_id)
    rows = list(session.scalars(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return Page(rows[:PAGE_SIZE], page, len(rows) > PAGE_SIZE)


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    who: str
    what: str


# Built once: the problem page of everyone involved reads it (docs/performance.md). Rows of the
# columns the history shows, not entries with their actors as objects, which cost five times as
# much for a dozen entries and ten times as much for none.
_PROBLEM_ENTRIES = Prepared(
    select(AuditEntry.at, AuditEntry.action, User.id, User.name, User.show_name_on_chains)
    .outerjoin(User, User.id == AuditEntry.actor_id)
    .where(AuditEntry.problem_id == bindparam("problem_id", type_=Integer))
    .order_by(AuditEntry.id)
)


def problem_entries_read(problem_id: int) -> Read:
    """The statement ``problem_history`` runs, to be read ahead with the page's others."""
    return _PROBLEM_ENTRIES.read(problem_id=problem_id)


def problem_history(session: Session, page: ProblemPage) -> list[HistoryLine]:
    """The problem's entries, oldest first, for the people involved (``ProblemPage.involved``):
    the company's members and the members holding a place in one of its chains; nobody else sees
    any. Names appear as the viewer may see them (``referrals.appearance``); addresses and
    details stay with admins."""
    if not page.involved:
        return []
    entries = problem_entries_read(page.problem.id).all(connection_of(session))
    return [
        HistoryLine(
            entry.at,
            appearance.name_of(entry, page.chains.seen_by) if entry.id is not None else SYSTEM,
            WORDS.get(entry.action, entry.action),
        )
        for entry in entries
    ]
