"""Posting, editing, publishing, funding, cancelling and expiring problems; the public board."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, UnaryExpression, and_, exists, func, or_, select
from sqlalchemy.orm import Session, defer, joinedload, selectinload

from marketplace import signals, text
from marketplace.accounts.models import Skill, User
from marketplace.accounts.service import require_member, role_in
from marketplace.accounts.skills import resolve_skills, skill_slug
from marketplace.db import Prepared, connection_of, guarded_update, utcnow
from marketplace.errors import Conflict, NotFound, ValidationError
from marketplace.keyset import Window, seek
from marketplace.money import MINOR_DIGITS as CURRENCIES
from marketplace.problems import splits
from marketplace.problems.models import Problem, ProblemStatus, Visibility, problem_skills

MIN_BOUNTY_MAJOR = 10
MAX_BOUNTY_MINOR = 10**11
DEFAULT_EXPIRY_DAYS = 60
PAGE_SIZE = 20


class ProblemError(Conflict):
    code = "problem_state"


@dataclass
class ProblemInput:
    """What a company fills in when posting; validated by ``_apply``."""

    title: str
    description: str
    bounty_amount: int
    currency: str = "usd"
    skills: list[str] | str = field(default_factory=list)
    split_rule: str = splits.DEFAULT_RULE
    split_params: dict | None = None
    max_depth: int = 6
    guarantee_days: int = 30
    visibility: str = "public"
    expires_at: datetime | None = None
    candidate_share_bps: int = 0


def _int_in(value: object, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            f"{what} must be a whole number from {low} to {high}.",
            code="invalid_" + what.lower().replace(" ", "_"),
        )
    return value


def _apply(session: Session, problem: Problem, data: ProblemInput, platform_fee_bps: int) -> None:
    title = text.single_line(data.title, "The title").strip()
    if not 5 <= len(title) <= 200:
        raise ValidationError("Give the problem a title of 5 to 200 characters.", code="invalid_title")
    description = text.multi_line(data.description, "The description").strip()
    if not 20 <= len(description) <= 20000:
        raise ValidationError("Describe the problem in 20 to 20,000 characters.", code="invalid_description")
    currency = (data.currency or "").strip().lower()
    if currency not in CURRENCIES:
        raise ValidationError(
            f"Currency must be one of {', '.join(sorted(c.upper() for c in CURRENCIES))}.",
            code="invalid_currency",
        )
    minimum = MIN_BOUNTY_MAJOR * 10 ** CURRENCIES[currency]
    amount = _int_in(data.bounty_amount, minimum, MAX_BOUNTY_MINOR, "Bounty amount")
    max_depth = _int_in(data.max_depth, 1, 12, "Max depth")
    guarantee_days = _int_in(data.guarantee_days, 0, 365, "Guarantee days")
    candidate_share_bps = _int_in(data.candidate_share_bps, 0, 5000, "Candidate share bps")
    try:
        visibility = Visibility(data.visibility)
    except ValueError:
        raise ValidationError("Visibility must be 'public' or 'private'.", code="invalid_visibility") from None
    params = splits.normalize_params(data.split_rule, data.split_params, max_depth=max_depth)
    expires_at = data.expires_at or (utcnow() + timedelta(days=DEFAULT_EXPIRY_DAYS))
    if expires_at.tzinfo is None:
        raise ValidationError("Give the expiry with a time zone.", code="invalid_expires_at")
    if expires_at <= utcnow():
        raise ValidationError("The expiry date must be in the future.", code="invalid_expires_at")
    skills = resolve_skills(session, data.skills)
    if not skills:
        raise ValidationError("Name at least one skill the expert needs.", code="invalid_skills")
    problem.title, problem.description = title, description
    problem.bounty_amount, problem.currency = amount, currency
    problem.split_rule, problem.split_params = data.split_rule, params
    problem.platform_fee_bps, problem.candidate_share_bps = platform_fee_bps, candidate_share_bps
    problem.max_depth, problem.guarantee_days = max_depth, guarantee_days
    problem.visibility, problem.expires_at, problem.skills = visibility, expires_at, skills


def create_problem(
    session: Session,
    actor: User,
    company_id: int,
    data: ProblemInput,
    *,
    publish: bool,
    platform_fee_bps: int,
) -> Problem:
    """Any member of the company may post; a published problem waits for its bounty to be funded."""
    require_member(session, actor, company_id)
    problem = Problem(company_id=company_id, created_by_id=actor.id, status=ProblemStatus.DRAFT)
    _apply(session, problem, data, platform_fee_bps)
    session.add(problem)
    session.flush()
    if publish:
        _publish(session, actor, problem)
    return problem


def company_problem(session: Session, actor: User, problem_id: int) -> Problem:
    """A problem of a company the actor belongs to; to anyone else it does not exist."""
    problem = session.get(Problem, problem_id)
    if problem is None or role_in(session, actor, problem.company_id) is None:
        raise NotFound("No such problem, or it is not shared with you.")
    return problem


def update_draft(
    session: Session, actor: User, problem_id: int, data: ProblemInput, *, publish: bool = False
) -> Problem:
    """Any member of the company edits a draft, and may publish it in the same step."""
    problem = company_problem(session, actor, problem_id)
    if problem.status != ProblemStatus.DRAFT:
        raise ProblemError("Only a draft can be edited; this problem is already published.")
    _apply(session, problem, data, problem.platform_fee_bps)
    if publish:
        _publish(session, actor, problem)
    session.flush()
    return problem


def publish(session: Session, actor: User, problem_id: int) -> Problem:
    problem = company_problem(session, actor, problem_id)
    if problem.status != ProblemStatus.DRAFT:
        raise ProblemError("This problem is already published.")
    _publish(session, actor, problem)
    return problem


def _publish(session: Session, actor: User, problem: Problem) -> None:
    problem.status = ProblemStatus.AWAITING_PAYMENT
    problem.published_at = utcnow()
    session.flush()
    signals.problem_published.send(problem, session=session, actor_id=actor.id)


def transition(
    session: Session, problem: Problem, expected: set[ProblemStatus], new: ProblemStatus, **values: Any
) -> None:
    """A guarded state change: one UPDATE that only succeeds from an expected state.

    Two requests racing for the same change cannot both win; the loser gets a clear conflict.
    """
    if not guarded_update(session, problem, expected, status=new, **values):  # and ``updated_at``
        raise ProblemError(
            f"This problem is {problem.status.value.replace('_', ' ')}; it cannot become {new.value.replace('_', ' ')}."
        )


# The board -------------------------------------------------------------------------------------

SORTS: dict[str, tuple[UnaryExpression[Any], ...]] = {
    "newest": (Problem.published_at.desc(), Problem.id.desc()),
    "bounty": (Problem.bounty_amount.desc(), Problem.id.desc()),
    "closing": (Problem.expires_at.asc(), Problem.id.asc()),
}


@dataclass
class BoardQuery:
    q: str = ""
    skill: str = ""
    min_bounty: int | None = None
    max_bounty: int | None = None
    currency: str = ""
    status: str = "open"
    sort: str = "newest"
    page: int = 1

    def __post_init__(self) -> None:
        """Search words are typed text like any other (``marketplace.text``), whichever page or
        route they come from; NUL, for one, cannot even be sent to PostgreSQL."""
        for name, label in (("q", "The search"), ("skill", "The skill"), ("currency", "The currency")):
            setattr(self, name, text.single_line(getattr(self, name), label))


@dataclass
class Page:
    items: list[Problem]
    page: int
    total: int
    per_page: int = PAGE_SIZE

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.page * self.per_page < self.total else None

    @property
    def prev_page(self) -> int | None:
        return self.page - 1 if self.page > 1 else None


def _board_select(query: BoardQuery, visible: ColumnElement[bool]) -> Select:
    stmt = select(Problem).where(visible)
    if query.status:
        try:
            stmt = stmt.where(Problem.status == ProblemStatus(query.status))
        except ValueError:
            raise ValidationError(f"Unknown status '{query.status}'.", code="invalid_status") from None
    if query.q.strip():
        # autoescape: a "%" or "_" in the search matches itself, not any text.
        words = query.q.strip().lower()
        stmt = stmt.where(
            or_(
                func.lower(Problem.title).contains(words, autoescape=True),
                func.lower(Problem.description).contains(words, autoescape=True),
            )
        )
    if query.skill.strip():
        stmt = stmt.where(
            exists().where(
                problem_skills.c.problem_id == Problem.id,
                problem_skills.c.skill_id == Skill.id,
                Skill.slug == skill_slug(query.skill),
            )
        )
    if query.currency:
        stmt = stmt.where(Problem.currency == query.currency.lower())
    if query.min_bounty is not None:
        stmt = stmt.where(Problem.bounty_amount >= _bound(query.min_bounty))
    if query.max_bounty is not None:
        stmt = stmt.where(Problem.bounty_amount <= _bound(query.max_bounty))
    return stmt


def _bound(value: int) -> int:
    """A bounty bound pulled into 0 .. MAX + 1: it selects the same rows (every bounty is in
    1 .. MAX) and stays a 64-bit integer, which the database needs."""
    return min(max(value, 0), MAX_BOUNTY_MINOR + 1)


# Built once: it is read on every visitor's request, where building it would cost more than
# running it. Other stamps that cover problems among other things read it as a subquery.
LAST_CHANGE = select(func.max(Problem.updated_at))
# Straight on the DBAPI cursor: through ``Connection.execute`` SQLAlchemy's bookkeeping took 50 of
# the stamp's 64 µs, on a cached page where this is all the database work (docs/performance.md).
_LAST_CHANGE = Prepared(LAST_CHANGE)


def last_change(bind: Session | Connection) -> datetime | None:
    """When any problem last changed: every write to a problem sets its ``updated_at`` (the
    column's ``onupdate``, ``db.write_time``, which the ORM's flush and the guarded updates of
    ``transition`` both apply), so this stamp moves whenever anything a visitor's page shows of
    problems does (docs/performance.md, "Caching")."""
    (newest,) = _LAST_CHANGE.first(connection_of(bind), {}) or (None,)
    return newest


def public_filter() -> ColumnElement[bool]:
    """What anyone may see: public problems once published."""
    return and_(Problem.visibility == Visibility.PUBLIC, Problem.status != ProblemStatus.DRAFT)


def board(session: Session, query: BoardQuery, visible: ColumnElement[bool], window: Window | None = None) -> Page:
    """A page of the problems matching ``query`` among those ``visible`` to the viewer (the
    referrals domain says which those are: ``referrals.visibility``): numbered pages, or with a
    ``window`` the keyset page after a problem (``keyset.seek`` on ``board_sort_key``)."""
    if query.sort not in SORTS:
        raise ValidationError(f"Sort by one of {', '.join(SORTS)}.", code="invalid_sort")
    if query.page < 1 or query.page > 10_000:
        raise ValidationError("Page must be 1 or more.", code="invalid_page")
    stmt = _board_select(query, visible)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    loading = (selectinload(Problem.skills), joinedload(Problem.company))
    if window is not None:
        sort, descending = KEYSET_SORTS[query.sort]
        items = session.scalars(seek(stmt, sort, Problem.id, window, descending=descending).options(*loading)).all()
        return Page(items=list(items), page=1, total=total, per_page=window.limit)
    items = session.scalars(
        stmt.order_by(*SORTS[query.sort]).limit(PAGE_SIZE).offset((query.page - 1) * PAGE_SIZE).options(*loading)
    ).all()
    return Page(items=list(items), page=query.page, total=total)


# The board's sorts as keyset pages see them: one never-NULL key (a problem without an expiry
# closes last) and its direction, the id breaking ties.
NEVER = datetime(9999, 12, 31, tzinfo=UTC)
KEYSET_SORTS: dict[str, tuple[Any, bool]] = {
    "newest": (func.coalesce(Problem.published_at, Problem.created_at), True),
    "bounty": (Problem.bounty_amount, True),
    "closing": (func.coalesce(Problem.expires_at, NEVER), False),
}


def board_sort_key(problem: Problem, sort: str) -> tuple[Any, int]:
    """The keyset key of ``problem`` under ``sort`` (``KEYSET_SORTS``)."""
    value = {
        "newest": problem.published_at or problem.created_at,
        "bounty": problem.bounty_amount,
        "closing": problem.expires_at or NEVER,
    }[sort]
    return value, problem.id


def problems_of_company(session: Session, company_id: int) -> list[Problem]:
    """The company's problems, newest first, for a caller that has checked the reader is one of
    its members (the company page has: it shows their roles)."""
    return list(
        session.scalars(
            select(Problem)
            .where(Problem.company_id == company_id)
            .order_by(Problem.created_at.desc())
            .options(defer(Problem.description), selectinload(Problem.skills))
        )
    )


@dataclass(frozen=True)
class BountyTerms:
    """What a problem's shares follow from: its bounty and its split, fixed once it is published.
    Hashable, so that a page can render what follows from them once (``web.problems.split_table``)."""

    bounty: int
    currency: str
    rule: str
    params: str  # the split's parameters as JSON with sorted keys
    platform_fee_bps: int
    candidate_share_bps: int
    max_depth: int

    @classmethod
    def of(cls, problem: Problem) -> "BountyTerms":
        return cls(
            problem.bounty_amount,
            problem.currency,
            problem.split_rule,
            json.dumps(problem.split_params, sort_keys=True),
            problem.platform_fee_bps,
            problem.candidate_share_bps,
            problem.max_depth,
        )

    def preview(self, max_links: int = 6) -> list[splits.Settlement]:
        """The settlement for each length of chain, up to ``max_links`` and the problem's depth."""
        return splits.preview(
            self.bounty,
            rule=self.rule,
            params=json.loads(self.params),
            platform_fee_bps=self.platform_fee_bps,
            candidate_share_bps=self.candidate_share_bps,
            max_links=min(max_links, self.max_depth),
        )


def payout_preview(problem: Problem, max_links: int = 6) -> list[splits.Settlement]:
    return BountyTerms.of(problem).preview(max_links)
