"""How a person on a chain appears to a viewer: the one rule every page, API answer, e-mail and
notification follows (docs/architecture.md, "Anonymity").

A member who keeps their name off chains appears as "Anonymous member" to everyone except
themselves and the people they dealt with directly on that problem: whoever forwarded the
problem to them and whomever they forwarded it to already know who they are. The company is
not such a person (unless one of its members forwarded to them), nor are links further up or
down. An address a problem was forwarded to is shown only to the member who sent it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.referrals.models import Referral

ANONYMOUS = "Anonymous member"
NOT_CLAIMED = "not claimed yet"
INVITED_BY_EMAIL = "someone invited by e-mail"


class Person(Protocol):
    """What the rule reads of a member: a ``User``, or a row of these three columns (a page that
    shows only names need not load whole members)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def show_name_on_chains(self) -> bool: ...


@dataclass(frozen=True)
class Viewer:
    """Who is looking at one problem's chains, and whom they know directly on it."""

    user_id: int | None
    knows: frozenset[int] = frozenset()

    def may_see(self, person: Person) -> bool:
        return person.show_name_on_chains or person.id == self.user_id or person.id in self.knows


NOBODY = Viewer(None)
# The company as a whole (what its own systems read through its webhooks), not one of its
# members: it dealt directly with nobody on a chain, so it sees only the names members show.
COMPANY = Viewer(None)


def viewer_on(session: Session, user: User | None, problem_id: int) -> Viewer:
    """The viewer's direct contacts on this problem's chains, in one query."""
    if user is None or not getattr(user, "id", None):
        return NOBODY
    rows = session.execute(
        select(Referral.sender_id, Referral.holder_id, Referral.recipient_user_id).where(
            Referral.problem_id == problem_id,
            or_(Referral.sender_id == user.id, Referral.holder_id == user.id, Referral.recipient_user_id == user.id),
        )
    )
    return _viewer_from(user.id, rows)


def viewer_among(user: User | None, referrals: Iterable[Referral]) -> Viewer:
    """``viewer_on`` for a page that has loaded every referral of the problem already."""
    if user is None or not getattr(user, "id", None):
        return NOBODY
    return _viewer_from(user.id, ((r.sender_id, r.holder_id, r.recipient_user_id) for r in referrals))


def _viewer_from(user_id: int, referrals: Iterable[tuple[int | None, int | None, int | None]]) -> Viewer:
    """Whoever sent the viewer a referral, and whoever the viewer sent one to."""
    knows: set[int | None] = set()
    for sender_id, holder_id, recipient_id in referrals:
        if sender_id == user_id:
            knows.update({holder_id, recipient_id})
        elif user_id in (holder_id, recipient_id):
            knows.add(sender_id)
    return Viewer(user_id, frozenset(person for person in knows if person is not None and person != user_id))


def viewer_of_link(session: Session, user: User | None, referral: Referral) -> Viewer:
    """Whoever opens a referral link was sent it, and so knows its sender."""
    seen_by = viewer_on(session, user, referral.problem_id)
    if referral.sender_id is None:
        return seen_by
    return Viewer(seen_by.user_id, seen_by.knows | {referral.sender_id})


def name_of(person: Person | None, viewer: Viewer) -> str:
    """The person's name as this viewer may see it."""
    if person is None:
        return NOT_CLAIMED
    return person.name if viewer.may_see(person) else ANONYMOUS


def id_of(person: Person | None, viewer: Viewer) -> int | None:
    """The person's member id, only where their name may be shown (an id names them too)."""
    return person.id if person is not None and viewer.may_see(person) else None


def recipient_of(referral: Referral, viewer: Viewer) -> str:
    """Who a referral went to: the member as the viewer may see them, or, for an address that
    has no account yet, the address to its sender and a neutral phrase to everyone else."""
    person = referral.holder or referral.recipient_user
    if person is not None:
        return name_of(person, viewer)
    if referral.sender_id is not None and referral.sender_id == viewer.user_id and referral.recipient_email:
        return referral.recipient_email
    return INVITED_BY_EMAIL
