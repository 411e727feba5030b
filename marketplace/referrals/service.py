"""Referral chains and double opt-in introductions (DESIGN.md section 3).

Attribution must be something nobody can rewrite: a member's first claimed referral fixes their
place, every referral's immutable fields are hashed into ``chain_hash`` together with its parent's
hash, and ``verify_chains`` recomputes them all.
"""

import functools
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session, object_session

from marketplace.accounts.models import User
from marketplace.accounts.service import normalize_email, require_manager, role_in, user_by_email
from marketplace.db import Prepared, connection_of, guarded_update, utcnow
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationError
from marketplace.network.changes import record_change
from marketplace.network.models import ChangeKind
from marketplace.notifications import events
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals.models import (
    Introduction,
    IntroductionStatus,
    Referral,
    ReferralStatus,
)

if TYPE_CHECKING:
    from marketplace.ledger.settlement import SettlementSummary

MAX_NOTE = 2000


class ReferralError(Conflict):
    code = "referral_rule"


class IntroductionError(Conflict):
    code = "introduction_state"


# Chain hashes ----------------------------------------------------------------------------------


def compute_chain_hash(referral: Referral, parent_hash: str) -> str:
    """sha256(parent hash ‖ canonical JSON of the fields that must never change)."""
    canonical = json.dumps(
        {
            "problem_id": referral.problem_id,
            "parent_id": referral.parent_id,
            "sender_id": referral.sender_id,
            "recipient_user_id": referral.recipient_user_id,
            "recipient_email": referral.recipient_email,
            "depth": referral.depth,
            "token": referral.token,
            "created_at": referral.created_at.isoformat(timespec="microseconds"),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256((parent_hash + canonical).encode()).hexdigest()


def verify_chains(session: Session) -> list[str]:
    """Recompute every chain hash from the root down; returns a line per broken referral."""
    problems_found = []
    hashes: dict[int, str] = {}
    for referral in session.scalars(select(Referral).order_by(Referral.id)):
        if referral.parent_id is not None and referral.parent_id not in hashes:
            problems_found.append(f"referral {referral.id}: parent {referral.parent_id} is missing or newer")
            continue
        parent_hash = hashes.get(referral.parent_id, "") if referral.parent_id else ""
        expected = compute_chain_hash(referral, parent_hash)
        if expected != referral.chain_hash:
            problems_found.append(
                f"referral {referral.id} (problem {referral.problem_id}): chain hash does not match its fields"
            )
        hashes[referral.id] = referral.chain_hash
    return problems_found


# Reading chains --------------------------------------------------------------------------------


def place_of(session: Session, user: User | None, problem_id: int) -> Referral | None:
    """The user's claimed referral on this problem: their fixed place in a chain."""
    if user is None or not getattr(user, "id", None):
        return None
    return session.scalar(
        select(Referral).where(
            Referral.problem_id == problem_id,
            Referral.holder_id == user.id,
            Referral.status == ReferralStatus.CLAIMED,
        )
    )


def chain_to(referral: Referral | None) -> list[Referral]:
    """The referrals from the root of the chain down to this one."""
    chain = []
    while referral is not None:
        chain.append(referral)
        referral = referral.parent
    return chain[::-1]


def chain_members(referral: Referral | None) -> list[User]:
    """The paid links of a chain, top first; a company member who shared the root is not a link."""
    if referral is None:
        return []
    session = object_session(referral)
    ids = chain_member_ids(session, referral.id)
    users = {user.id: user for user in session.scalars(select(User).where(User.id.in_(ids)))}
    return [users[user_id] for user_id in ids]


def chain_member_ids(session: Session, referral_id: int) -> list[int]:
    """The ids of ``chain_members`` of the referral with this id, in one query (settlement's hot path)."""
    rows = _chain_member_ids().fetchall(connection_of(session), {"referral_id": referral_id})
    return [holder_id for (holder_id,) in rows]


@functools.cache
def _chain_member_ids() -> Prepared:
    """The holders of the referral and its ancestors (a recursive CTE), root first."""
    columns = (Referral.id, Referral.parent_id, Referral.holder_id, Referral.depth)
    chain = select(*columns).where(Referral.id == bindparam("referral_id")).cte("chain", recursive=True)
    chain = chain.union_all(select(*columns).join(chain, Referral.id == chain.c.parent_id))
    return Prepared(select(chain.c.holder_id).where(chain.c.holder_id.is_not(None)).order_by(chain.c.depth))


def referral_by_token(session: Session, token: str) -> Referral:
    referral = session.scalar(select(Referral).where(Referral.token == (token or "")))
    if referral is None:
        raise NotFound("This referral link is not valid.")
    return referral


# Forwarding and claiming -----------------------------------------------------------------------


def _require_open(problem: Problem) -> None:
    if problem.status != ProblemStatus.OPEN:
        raise ReferralError(
            "Referrals and introductions are possible only while the problem is open "
            f"(it is {problem.status.value.replace('_', ' ')})."
        )


def _clean_note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationError(f"Keep the note under {MAX_NOTE} characters.", code="invalid_note")
    return note


def _new_referral(session: Session, **fields) -> Referral:
    referral = Referral(token=secrets.token_urlsafe(24), created_at=utcnow(), **fields)
    if referral.parent is not None:
        referral.parent_id = referral.parent.id  # Hashed below; the relationship alone sets it only at flush.
    parent_hash = referral.parent.chain_hash if referral.parent else ""
    if referral.parent is None and referral.parent_id is not None:
        parent_hash = session.get(Referral, referral.parent_id).chain_hash
    referral.chain_hash = compute_chain_hash(referral, parent_hash)
    session.add(referral)
    session.flush()
    return referral


def _check_can_join(session: Session, user: User, problem: Problem, parent: Referral | None) -> None:
    """The rules a new link must meet: not the company, not twice, not in a cycle."""
    if role_in(session, user, problem.company_id) is not None:
        raise ReferralError("Members of the company that posted the problem cannot be links of its chains.")
    if place_of(session, user, problem.id) is not None:
        raise ReferralError(
            "You already hold a place in a chain for this problem; the first referral you claimed counts."
        )
    if parent is not None and any(r.holder_id == user.id or r.sender_id == user.id for r in chain_to(parent)):
        raise ReferralError("That would make a cycle: you are already in this chain.")


def pick_from_board(session: Session, actor: User, problem: Problem) -> Referral:
    """A member who picks a public problem becomes the root of a new chain."""
    _require_open(problem)
    if problem.visibility.value != "public":
        raise ReferralError("Private problems are joined by referral only.")
    _check_can_join(session, actor, problem, None)
    referral = _new_referral(
        session,
        problem=problem,
        problem_id=problem.id,
        parent=None,
        sender_id=None,
        recipient_user_id=actor.id,
        depth=1,
        note="",
    )
    _claim(referral, actor)
    session.flush()
    return referral


def forward(
    session: Session,
    actor: User,
    problem: Problem,
    *,
    to_user_id: int | None = None,
    to_email: str | None = None,
    note: str | None = None,
) -> Referral:
    """Pass the problem on to someone the actor knows, by account or by e-mail address."""
    _require_open(problem)
    if (to_user_id is None) == (not to_email):
        raise ValidationError("Forward to exactly one of: a member, or an e-mail address.", code="invalid_recipient")
    recipient: User | None = None
    email: str | None = None
    if to_user_id is not None:
        recipient = session.get(User, to_user_id)
        if recipient is None:
            raise NotFound("No such member.")
    else:
        email = normalize_email(to_email)
        recipient = user_by_email(session, email)
    if recipient is not None and recipient.id == actor.id:
        raise ReferralError("You cannot refer a problem to yourself.", code="self_referral")

    parent = place_of(session, actor, problem.id)
    if parent is None:
        if role_in(session, actor, problem.company_id) is None:
            raise Forbidden("Claim a referral for this problem (or pick it from the board) before forwarding it.")
        depth = 1  # A company member shares the problem: the recipient is the first link.
    else:
        depth = parent.depth + 1
    if depth > problem.max_depth:
        raise ReferralError(
            f"This chain has reached the problem's maximum depth of {problem.max_depth}; "
            "introduce a candidate instead.",
            code="max_depth",
        )
    if recipient is not None:
        if role_in(session, recipient, problem.company_id) is not None:
            raise ReferralError("That person works for the company that posted the problem.")
        if parent is not None and any(r.holder_id == recipient.id for r in chain_to(parent)):
            raise ReferralError("That person is already in your chain: that would make a cycle.", code="cycle")
        if place_of(session, recipient, problem.id) is not None:
            raise ReferralError(
                "That person already holds a place in a chain for this problem.",
                code="already_in_chain",
            )
    referral = _new_referral(
        session,
        problem=problem,
        problem_id=problem.id,
        parent=parent,
        sender_id=actor.id,
        recipient_user_id=recipient.id if recipient else None,
        recipient_email=None if recipient else email,
        depth=depth,
        note=_clean_note(note),
    )
    events.referral_sent(session, referral)
    events.chain_grew(session, referral, "was forwarded the problem", exclude_id=actor.id)
    return referral


def _claim(referral: Referral, user: User) -> None:
    referral.status = ReferralStatus.CLAIMED
    referral.holder = user
    referral.holder_id = user.id
    referral.claimed_at = utcnow()


def claim(session: Session, actor: User, token: str) -> Referral:
    """Take the place a referral offers; the first claim fixes the member's place for good."""
    referral = referral_by_token(session, token)
    problem = referral.problem
    if referral.status == ReferralStatus.CLAIMED:
        if referral.holder_id == actor.id:
            raise ReferralError("You have already claimed this referral.", code="already_claimed")
        raise ReferralError("This referral link has already been used.", code="already_claimed")
    if referral.status == ReferralStatus.EXPIRED:
        raise ReferralError("This referral has expired.", code="expired")
    _require_open(problem)
    if referral.recipient_user_id is not None and referral.recipient_user_id != actor.id:
        raise Forbidden("This referral was sent to someone else.")
    if referral.sender_id == actor.id:
        raise ReferralError("You cannot claim a referral you sent.", code="self_referral")
    _check_can_join(session, actor, problem, referral.parent)
    # The guarded update makes a single-use link single-use even under concurrent claims.
    result = session.execute(
        update(Referral)
        .where(Referral.id == referral.id, Referral.status == ReferralStatus.SENT)
        .values(status=ReferralStatus.CLAIMED, holder_id=actor.id, claimed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise ReferralError("This referral link has already been used.", code="already_claimed")
    session.refresh(referral)
    events.chain_grew(session, referral, "joined it")
    return referral


# Introductions ---------------------------------------------------------------------------------


def _owner_of_candidate(session: Session, problem_id: int, email: str) -> Introduction | None:
    return session.scalar(
        select(Introduction)
        .where(
            Introduction.problem_id == problem_id,
            Introduction.candidate_email == email,
            Introduction.status.in_([s for s in IntroductionStatus if s.is_live]),
        )
        .order_by(Introduction.id)
        .limit(1)
    )


def introduce(
    session: Session,
    actor: User,
    problem: Problem,
    *,
    candidate_user_id: int | None = None,
    candidate_email: str | None = None,
    candidate_name: str | None = None,
    message: str | None = None,
) -> Introduction:
    """Introduce a candidate; they consent before the company sees who they are (double opt-in)."""
    _require_open(problem)
    place = place_of(session, actor, problem.id)
    if place is None and role_in(session, actor, problem.company_id) is None:
        raise Forbidden("Only members of a chain (or of the company) can introduce candidates.")
    if (candidate_user_id is None) == (not candidate_email):
        raise ValidationError("Introduce exactly one of: a member, or an e-mail address.", code="invalid_candidate")
    candidate = session.get(User, candidate_user_id) if candidate_user_id is not None else None
    if candidate_user_id is not None and candidate is None:
        raise NotFound("No such member.")
    email = candidate.email if candidate else normalize_email(candidate_email)
    candidate = candidate or user_by_email(session, email)
    if candidate is not None and role_in(session, candidate, problem.company_id) is not None:
        raise ValidationError("The candidate already works for this company.", code="candidate_in_company")
    message = (message or "").strip()
    if not 10 <= len(message) <= 5000:
        raise ValidationError(
            "Write the candidate and the company a message of 10 to 5,000 characters.",
            code="invalid_message",
        )
    name = (candidate_name or (candidate.name if candidate else "")).strip()[:120]
    owner = _owner_of_candidate(session, problem.id, email)
    introduction = Introduction(
        problem_id=problem.id,
        introducer_id=actor.id,
        referral_id=place.id if place else None,
        candidate_user_id=candidate.id if candidate else None,
        candidate_email=email,
        candidate_name=name,
        message=message,
        consent_token=secrets.token_urlsafe(24),
        status=IntroductionStatus.DUPLICATE if owner else IntroductionStatus.AWAITING_CANDIDATE,
    )
    if introduction.is_self_introduction and owner is None:
        introduction.status = IntroductionStatus.PROPOSED  # Putting yourself forward is consent.
        introduction.consented_at = utcnow()
    session.add(introduction)
    session.flush()
    if introduction.status == IntroductionStatus.AWAITING_CANDIDATE:
        events.introduction_needs_consent(session, introduction)
    elif introduction.status == IntroductionStatus.PROPOSED:
        events.introduction_proposed(session, introduction)
    return introduction


def introduction_by_token(session: Session, token: str) -> Introduction:
    introduction = session.scalar(select(Introduction).where(Introduction.consent_token == (token or "")))
    if introduction is None:
        raise NotFound("This introduction link is not valid.")
    return introduction


def _set_status(
    session: Session,
    introduction: Introduction,
    expected: set[IntroductionStatus],
    new: IntroductionStatus,
    **values,
) -> None:
    if not guarded_update(session, introduction, expected, status=new, **values):
        raise IntroductionError(
            f"This introduction is {introduction.status.value.replace('_', ' ')}; it cannot become {new.value}."
        )


def consent(
    session: Session,
    introduction: Introduction,
    candidate: User | None,
    *,
    accept: bool,
    note: str = "",
) -> Introduction:
    """The candidate's answer. ``candidate`` is the logged-in user, or None for the e-mailed link."""
    if candidate is not None:
        is_candidate = introduction.candidate_user_id == candidate.id or introduction.candidate_email == candidate.email
        if not is_candidate:
            raise Forbidden("Only the candidate can answer this introduction.")
        if introduction.candidate_user_id is None:
            introduction.candidate_user_id = candidate.id
    if introduction.status == IntroductionStatus.AWAITING_CANDIDATE:
        _require_open(introduction.problem)
    new = IntroductionStatus.PROPOSED if accept else IntroductionStatus.DECLINED
    _set_status(
        session,
        introduction,
        {IntroductionStatus.AWAITING_CANDIDATE},
        new,
        consented_at=utcnow() if accept else None,
        candidate_note=_clean_note(note),
    )
    if accept:
        events.introduction_proposed(session, introduction)
    return introduction


@dataclass
class AcceptResult:
    introduction: Introduction
    settlement: "SettlementSummary"


def accept(session: Session, actor: User, introduction: Introduction) -> AcceptResult:
    """The company accepts: the problem leaves ``open`` in one guarded update, then settles."""
    from marketplace.ledger.settlement import settle_introduction

    require_manager(session, actor, introduction.problem.company_id)
    if introduction.status != IntroductionStatus.PROPOSED:
        raise IntroductionError(
            f"Only a proposed introduction can be accepted; this one is {introduction.status.value.replace('_', ' ')}."
        )
    settlement = settle_introduction(session, introduction, actor)
    record_change(session, ChangeKind.TRACK_RECORD, introduction.introducer_id)  # it ranks reach results
    events.introduction_decided(session, introduction)
    return AcceptResult(introduction, settlement)


def decline(session: Session, actor: User, introduction: Introduction, *, note: str = "") -> Introduction:
    require_manager(session, actor, introduction.problem.company_id)
    _set_status(
        session,
        introduction,
        {IntroductionStatus.PROPOSED},
        IntroductionStatus.DECLINED,
        decided_at=utcnow(),
        decided_by_id=actor.id,
        decision_note=_clean_note(note),
    )
    events.introduction_decided(session, introduction)
    return introduction


def withdraw(session: Session, actor: User, introduction: Introduction) -> Introduction:
    if introduction.introducer_id != actor.id:
        raise Forbidden("Only the member who made the introduction can withdraw it.")
    _set_status(
        session,
        introduction,
        {IntroductionStatus.AWAITING_CANDIDATE, IntroductionStatus.PROPOSED},
        IntroductionStatus.WITHDRAWN,
    )
    return introduction


def close_open_work(session: Session, problem: Problem) -> None:
    """When a problem closes unmatched, its pending referrals and introductions expire."""
    session.execute(
        update(Referral)
        .where(Referral.problem_id == problem.id, Referral.status == ReferralStatus.SENT)
        .values(status=ReferralStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Introduction)
        .where(
            Introduction.problem_id == problem.id,
            Introduction.status.in_([IntroductionStatus.AWAITING_CANDIDATE, IntroductionStatus.PROPOSED]),
        )
        .values(status=IntroductionStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )


# Visibility of introductions -------------------------------------------------------------------


def can_see_introduction(session: Session, user: User, introduction: Introduction) -> bool:
    if introduction.introducer_id == user.id or introduction.candidate_user_id == user.id:
        return True
    if introduction.candidate_email == user.email:
        return True
    return role_in(session, user, introduction.problem.company_id) is not None


def get_visible_introduction(session: Session, user: User, introduction_id: int) -> Introduction:
    introduction = session.get(Introduction, introduction_id)
    if introduction is None or not can_see_introduction(session, user, introduction):
        raise NotFound("No such introduction.")
    return introduction


def company_sees_candidate(introduction: Introduction) -> bool:
    """Double opt-in: the candidate's details reach the company only after consent."""
    return introduction.consented_at is not None


def track_records(session: Session, user_ids: list[int] | None) -> dict[int, tuple[int, int]]:
    """(introductions made, introductions accepted) per introducer, duplicates not counted.

    ``None`` asks for every introducer (the reach index loads them all when it is built).
    """
    if user_ids is not None and not user_ids:
        return {}
    query = (
        select(
            Introduction.introducer_id,
            func.count(),
            func.count().filter(Introduction.status == IntroductionStatus.ACCEPTED),
        )
        .where(Introduction.status != IntroductionStatus.DUPLICATE)
        .group_by(Introduction.introducer_id)
    )
    if user_ids is not None:
        query = query.where(Introduction.introducer_id.in_(user_ids))
    rows = session.execute(query)
    records = {uid: (0, 0) for uid in user_ids or ()}
    records.update({uid: (made, accepted) for uid, made, accepted in rows})
    return records


def introductions_for_problem(session: Session, actor: User, problem: Problem) -> list[Introduction]:
    """The company's review list: everything but duplicates, newest first."""
    if role_in(session, actor, problem.company_id) is None:
        raise NotFound("No such problem, or it is not shared with you.")
    return list(
        session.scalars(
            select(Introduction)
            .where(Introduction.problem_id == problem.id, Introduction.status != IntroductionStatus.DUPLICATE)
            .order_by(Introduction.created_at.desc())
        )
    )


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
    def referrals(*conditions):
        return list(
            session.scalars(select(Referral).where(*conditions).order_by(Referral.created_at.desc()).limit(100))
        )

    def introductions(*conditions):
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
