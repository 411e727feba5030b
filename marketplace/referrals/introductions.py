"""Double opt-in introductions: a chain member introduces a candidate, the candidate agrees
before the company sees who they are, and the company decides (docs/architecture.md).

Accepting is not here: it settles money, so it is the ``workflows.settlement`` use case, which
calls ``accept`` for this domain's part.
"""

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.accounts.service import (
    normalize_email,
    require_manager,
    require_verified_email,
    role_in,
    verified_user_by_email,
)
from marketplace.db import guarded_update, utcnow
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationError
from marketplace.keyset import Window, seek
from marketplace.problems.models import Problem
from marketplace.referrals import attribution, visibility
from marketplace.referrals.chains import chain_member_ids, clean_note, place_of, require_open
from marketplace.referrals.models import Introduction, IntroductionStatus


class IntroductionError(Conflict):
    code = "introduction_state"


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
    problem_id: int,
    *,
    candidate_user_id: int | None = None,
    candidate_email: str | None = None,
    candidate_name: str | None = None,
    message: str | None = None,
) -> Introduction:
    """Introduce a candidate; they consent before the company sees who they are (double opt-in)."""
    problem = visibility.get_visible(session, actor, problem_id)
    require_open(problem)
    place = place_of(session, actor, problem.id)
    if place is None and role_in(session, actor, problem.company_id) is None:
        raise Forbidden("Only members of a chain (or of the company) can introduce candidates.")
    if (candidate_user_id is None) == (not candidate_email):
        raise ValidationError("Introduce exactly one of: a member, or an e-mail address.", code="invalid_candidate")
    candidate = session.get(User, candidate_user_id) if candidate_user_id is not None else None
    if candidate_user_id is not None and candidate is None:
        raise NotFound("No such member.")
    email = candidate.email if candidate else normalize_email(candidate_email)
    candidate = candidate or verified_user_by_email(session, email)
    if candidate is not None and role_in(session, candidate, problem.company_id) is not None:
        raise ValidationError("The candidate already works for this company.", code="candidate_in_company")
    if place is not None and candidate is not None and candidate.id != actor.id:
        links_above = chain_member_ids(session, place.id)
        if candidate.id in links_above:
            raise ValidationError(
                "The candidate is a link of your own chain, so they would be paid twice for one "
                "introduction; they can put themselves forward from their own place instead.",
                code="candidate_in_chain",
            )
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
    if introduction.status != IntroductionStatus.DUPLICATE:
        attribution.record_introduction(session, introduction)
    if introduction.status == IntroductionStatus.AWAITING_CANDIDATE:
        signals.introduction_awaiting_consent.send(introduction, session=session)
    elif introduction.status == IntroductionStatus.PROPOSED:
        signals.introduction_proposed.send(introduction, session=session)
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
    **values: Any,
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
    """The candidate's answer. ``candidate`` is the logged-in user, or None for the e-mailed link.

    The account that answers (the logged-in candidate, or the one the introduction names) must have
    proven its address: whoever answers becomes the candidate the company sees, and may be paid.
    """
    if candidate is not None:
        is_candidate = introduction.candidate_user_id == candidate.id or introduction.candidate_email == candidate.email
        if not is_candidate:
            raise Forbidden("Only the candidate can answer this introduction.")
    answering = candidate or introduction.candidate_user
    if answering is not None:
        require_verified_email(answering, "answer an introduction")
        if introduction.candidate_user_id is None:
            introduction.candidate_user_id = answering.id
    if introduction.status == IntroductionStatus.AWAITING_CANDIDATE:
        require_open(introduction.problem)
    new = IntroductionStatus.PROPOSED if accept else IntroductionStatus.DECLINED
    _set_status(
        session,
        introduction,
        {IntroductionStatus.AWAITING_CANDIDATE},
        new,
        consented_at=utcnow() if accept else None,
        candidate_note=clean_note(note),
    )
    if accept:
        attribution.record_consent(session, introduction)
        signals.introduction_proposed.send(introduction, session=session)
    else:
        signals.introduction_refused.send(introduction, session=session)
    return introduction


def decline(session: Session, actor: User, introduction_id: int, *, note: str = "") -> Introduction:
    """The company goes another way; the introducer and their chain hear it kindly."""
    introduction = get_visible_introduction(session, actor, introduction_id)
    require_manager(session, actor, introduction.problem.company_id)
    _set_status(
        session,
        introduction,
        {IntroductionStatus.PROPOSED},
        IntroductionStatus.DECLINED,
        decided_at=utcnow(),
        decided_by_id=actor.id,
        decision_note=clean_note(note),
    )
    signals.introduction_declined.send(introduction, session=session)
    return introduction


def withdraw(session: Session, actor: User, introduction_id: int) -> Introduction:
    """The introducer takes the introduction back; the candidate and, if it had reached them,
    the company hear it (the notifications' receiver)."""
    introduction = get_visible_introduction(session, actor, introduction_id)
    if introduction.introducer_id != actor.id:
        raise Forbidden("Only the member who made the introduction can withdraw it.")
    was_proposed = introduction.status == IntroductionStatus.PROPOSED
    _set_status(
        session,
        introduction,
        {IntroductionStatus.AWAITING_CANDIDATE, IntroductionStatus.PROPOSED},
        IntroductionStatus.WITHDRAWN,
    )
    signals.introduction_withdrawn.send(introduction, session=session, was_proposed=was_proposed)
    return introduction


def accept(session: Session, actor: User, introduction: Introduction, now: datetime) -> list[int]:
    """This domain's part of an accept (``workflows.settlement``): proposed → accepted, once
    however many accepts race. Returns the paid links' user ids, top first."""
    if not guarded_update(
        session,
        introduction,
        {IntroductionStatus.PROPOSED},
        status=IntroductionStatus.ACCEPTED,
        decided_at=now,
        decided_by_id=actor.id,
    ):
        raise IntroductionError(
            f"Only a proposed introduction can be accepted; this one is {introduction.status.value.replace('_', ' ')}."
        )
    return chain_member_ids(session, introduction.referral_id) if introduction.referral_id else []


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


def introductions_for_problem(
    session: Session, actor: User, problem: Problem, window: Window | None = None
) -> list[Introduction]:
    """The company's review list for a problem the actor can see (``review_list``), to its
    members only."""
    if role_in(session, actor, problem.company_id) is None:
        raise NotFound("No such problem, or it is not shared with you.")
    return review_list(session, problem, window)


def review_list(session: Session, problem: Problem, window: Window | None = None) -> list[Introduction]:
    """Everything but duplicates, newest first, with their introducers; for callers that have
    checked the reader belongs to the company. With a ``window``, that page (``keyset.seek``)."""
    query = (
        select(Introduction)
        .where(Introduction.problem_id == problem.id, Introduction.status != IntroductionStatus.DUPLICATE)
        .options(joinedload(Introduction.introducer))
    )
    if window is not None:
        return list(session.scalars(seek(query, Introduction.created_at, Introduction.id, window, descending=True)))
    return list(session.scalars(query.order_by(Introduction.created_at.desc())))
