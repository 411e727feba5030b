"""What people see of chains: the referral tree as each viewer may see it, and a member's dashboard.

Names follow each member's privacy choice (``display_name``).
"""

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.accounts.service import role_in
from marketplace.errors import NotFound
from marketplace.problems.models import Problem
from marketplace.referrals.chains import chain_to, place_of
from marketplace.referrals.models import Introduction, Referral


def involved_in(session: Session, viewer: User | None, problem: Problem) -> bool:
    """The people of a problem: its company's members and the members holding a place in one of
    its chains (who may see its history and the fingerprint of the chain it paid)."""
    if viewer is None:
        return False
    return role_in(session, viewer, problem.company_id) is not None or place_of(session, viewer, problem.id) is not None


# The referral tree -----------------------------------------------------------------------------


@dataclass
class TreeNode:
    referral: Referral
    label: str
    children: list["TreeNode"] = field(default_factory=list)
    hidden_below: int = 0


def display_name(user: User | None, viewer: User | None, *, close: bool) -> str:
    """A member's name on a chain, unless they chose to stay anonymous to people not close to them."""
    if user is None:
        return "not claimed yet"
    if close or user.show_name_on_chains or (viewer is not None and viewer.id == user.id):
        return user.name
    return "Anonymous member"


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
    direct = set()
    if place:
        direct = {place.parent.holder_id if place.parent else None} | {c.holder_id for c in children.get(place.id, [])}

    def build(referral: Referral, below_place: bool) -> TreeNode | None:
        if not is_company and not below_place and referral.id not in path_ids:
            return None
        holder = referral.holder or referral.recipient_user
        close = is_company and False or (holder is not None and holder.id in direct)
        label = (
            display_name(holder, viewer, close=close)
            if holder
            else ("an e-mail invitation" if not is_company else referral.recipient_email or "")
        )
        node = TreeNode(referral, label)
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
