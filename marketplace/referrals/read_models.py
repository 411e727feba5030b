"""What people see of chains: the referral tree as each viewer may see it, and a member's dashboard.

Names follow each member's privacy choice (``referrals.appearance``).
"""

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.accounts.service import role_in
from marketplace.errors import NotFound
from marketplace.problems.models import Problem
from marketplace.referrals import appearance
from marketplace.referrals.chains import chain_to, place_of
from marketplace.referrals.models import Introduction, Referral

# The referral tree -----------------------------------------------------------------------------


@dataclass
class TreeNode:
    referral: Referral
    label: str
    children: list["TreeNode"] = field(default_factory=list)
    hidden_below: int = 0


def tree(session: Session, viewer: User, problem: Problem) -> list[TreeNode]:
    """The referral tree as the viewer may see it.

    The company sees every chain; a chain member sees the path above them and what grew below
    them; names follow each member's privacy choice, except for one's own direct contacts.
    """
    referrals = list(session.scalars(select(Referral).where(Referral.problem_id == problem.id).order_by(Referral.id)))
    children: dict[int | None, list[Referral]] = {}
    for referral in referrals:
        children.setdefault(referral.parent_id, []).append(referral)
    is_company = role_in(session, viewer, problem.company_id) is not None
    place = place_of(session, viewer, problem.id)
    if not is_company and place is None:
        raise NotFound("You are not part of a chain for this problem.")
    path_ids = {r.id for r in chain_to(place)} if place else set()
    seen_by = appearance.viewer_on(session, viewer, problem.id)

    def build(referral: Referral, below_place: bool) -> TreeNode | None:
        if not is_company and not below_place and referral.id not in path_ids:
            return None
        node = TreeNode(referral, appearance.recipient_of(referral, seen_by))
        for child in children.get(referral.id, []):
            sub = build(child, below_place or referral.id == (place.id if place else None))
            if sub is not None:
                node.children.append(sub)
        return node

    return [n for n in (build(root, False) for root in children.get(None, [])) if n is not None]


def tree_as_dict(node: TreeNode) -> dict:
    r = node.referral
    return {
        "id": r.id,
        "depth": r.depth,
        "status": r.status.value,
        "member": node.label,
        "claimed_at": r.claimed_at.isoformat() if r.claimed_at else None,
        "children": [tree_as_dict(c) for c in node.children],
    }


# The member's dashboard ------------------------------------------------------------------------


@dataclass
class Dashboard:
    received: list[Referral]
    sent: list[Referral]
    places: list[Referral]
    introductions_made: list[Introduction]
    introductions_received: list[Introduction]


def dashboard(session: Session, user: User) -> Dashboard:
    def referrals(*conditions: ColumnElement[bool]) -> list[Referral]:
        return list(
            session.scalars(select(Referral).where(*conditions).order_by(Referral.created_at.desc()).limit(100))
        )

    def introductions(*conditions: ColumnElement[bool]) -> list[Introduction]:
        return list(
            session.scalars(select(Introduction).where(*conditions).order_by(Introduction.created_at.desc()).limit(100))
        )

    return Dashboard(
        received=referrals(
            or_(Referral.recipient_user_id == user.id, Referral.recipient_email == user.email),
            Referral.sender_id.is_not(None),
        ),
        sent=referrals(Referral.sender_id == user.id),
        places=referrals(Referral.holder_id == user.id),
        introductions_made=introductions(Introduction.introducer_id == user.id),
        introductions_received=introductions(
            or_(
                Introduction.candidate_user_id == user.id,
                Introduction.candidate_email == user.email,
            ),
            Introduction.introducer_id != user.id,
        ),
    )
