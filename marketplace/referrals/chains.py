"""Referral chains (docs/architecture.md): picking a problem from the board, forwarding it,
claiming a place, and the hash chain that keeps attribution honest.

Attribution must be something nobody can rewrite: a member's first claimed referral fixes their
place, every referral's immutable fields are hashed into ``chain_hash`` together with its parent's
hash, and ``verify_chains`` recomputes them all. Who claimed a place, and when, is written later,
so each claim is also appended to the problem's attribution records (``attribution.py``).
"""

import functools
import hashlib
import json
import secrets
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, joinedload, object_session

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.accounts.service import normalize_email, require_verified_email, role_in, verified_user_by_email
from marketplace.db import Prepared, connection_of, utcnow
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationError
from marketplace.problems import service as problems
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import attribution, visibility
from marketplace.referrals.models import Introduction, IntroductionStatus, Referral, ReferralStatus

MAX_NOTE = 2000


class ReferralError(Conflict):
    code = "referral_rule"


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
    if session is None:
        raise ValueError(f"referral {referral.id} is not in a session")
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
    """The referral a link names, with what opening or claiming it reads in the same statement:
    its problem and the company that posted it, its sender and its parent (where the chain
    continues); each would otherwise be a round trip of its own."""
    referral = session.scalar(
        select(Referral)
        .where(Referral.token == (token or ""))
        .options(
            joinedload(Referral.problem).joinedload(Problem.company),
            joinedload(Referral.sender),
            joinedload(Referral.parent),
        )
    )
    if referral is None:
        raise NotFound("This referral link is not valid.")
    return referral


# Built once and run straight on the DBAPI cursor: it is read on every visitor's request for a
# landing page, most of them answered from the cache with this the only statement.
_LANDING_CHANGE = Prepared(
    select(
        problems.LAST_CHANGE.scalar_subquery(),
        select(func.max(Referral.updated_at)).scalar_subquery(),
        select(func.max(User.updated_at)).scalar_subquery(),
    )
)


def last_change(bind: Session | Connection) -> tuple[datetime | None, ...]:
    """When anything a visitor's landing page shows last changed, in one statement of three
    indexed reads: its problem (and the company's name, which never changes), the referral's
    state, and the names and anonymity of the people on its chain. Every write to a problem, a
    referral or a member moves its ``updated_at`` (the column's ``onupdate``, ``db.write_time``,
    covers the guarded ``UPDATE``s of claims and expiries too), so the stamp moves with any of them."""
    return _LANDING_CHANGE.first(connection_of(bind), {}) or (None, None, None)


# Forwarding and claiming -----------------------------------------------------------------------


def require_open(problem: Problem) -> None:
    if problem.status != ProblemStatus.OPEN:
        raise ReferralError(
            "Referrals and introductions are possible only while the problem is open "
            f"(it is {problem.status.value.replace('_', ' ')})."
        )


def clean_note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationError(f"Keep the note under {MAX_NOTE} characters.", code="invalid_note")
    return note


def _new_referral(session: Session, **fields: Any) -> Referral:
    referral = Referral(token=secrets.token_urlsafe(24), created_at=utcnow(), **fields)
    if referral.parent is not None:
        referral.parent_id = referral.parent.id  # Hashed below; the relationship alone sets it only at flush.
    parent_hash = referral.parent.chain_hash if referral.parent else ""
    if referral.parent is None and referral.parent_id is not None:
        parent_hash = session.get_one(Referral, referral.parent_id).chain_hash
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


def pick_from_board(session: Session, actor: User, problem_id: int) -> Referral:
    """A member who picks a public problem becomes the root of a new chain."""
    problem = visibility.get_visible(session, actor, problem_id)
    require_open(problem)
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
    attribution.record_claim(session, referral)
    signals.referral_claimed.send(referral, session=session)
    return referral


def forward(
    session: Session,
    actor: User,
    problem_id: int,
    *,
    to_user_id: int | None = None,
    to_email: str | None = None,
    note: str | None = None,
) -> Referral:
    """Pass the problem on to someone the actor knows, by account or by e-mail address."""
    problem = visibility.get_visible(session, actor, problem_id)
    require_open(problem)
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
        recipient = verified_user_by_email(session, email)
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
    _refuse_second_referral(session, problem.id, recipient, email)
    referral = _new_referral(
        session,
        problem=problem,
        problem_id=problem.id,
        parent=parent,
        sender_id=actor.id,
        recipient_user_id=recipient.id if recipient else None,
        recipient_email=None if recipient else email,
        depth=depth,
        note=clean_note(note),
    )
    signals.referral_sent.send(referral, session=session)
    signals.chain_grew.send(referral, session=session, what="was forwarded the problem", exclude_id=actor.id)
    return referral


def _refuse_second_referral(session: Session, problem_id: int, recipient: User | None, email: str | None) -> None:
    """One waiting referral per person and problem: a second would race the first sender for
    the same place (whoever's link is claimed first takes the credit) and send a second e-mail."""
    addressed_to = [Referral.recipient_email == (recipient.email if recipient else email)]
    if recipient is not None:
        addressed_to.append(Referral.recipient_user_id == recipient.id)
    waiting = session.scalar(
        select(Referral.id)
        .where(Referral.problem_id == problem_id, Referral.status == ReferralStatus.SENT, or_(*addressed_to))
        .limit(1)
    )
    if waiting is not None:
        raise ReferralError(
            "That person has already been sent this problem and has not answered yet; "
            "the first referral stands, so there is nothing to add.",
            code="already_sent",
        )


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
    require_open(problem)
    if referral.recipient_user_id is not None and referral.recipient_user_id != actor.id:
        raise Forbidden("This referral was sent to someone else.")
    if referral.recipient_email is not None:
        require_verified_email(actor, "claim a referral sent to an e-mail address")
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
    if cast(CursorResult, result).rowcount != 1:
        raise ReferralError("This referral link has already been used.", code="already_claimed")
    session.refresh(referral)
    attribution.record_claim(session, referral)
    signals.referral_claimed.send(referral, session=session)
    signals.chain_grew.send(referral, session=session, what="joined it", exclude_id=None)
    return referral


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
