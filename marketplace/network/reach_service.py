"""The reach search as the app serves it: a process-local ``ReachIndex`` kept in step with SQL, and
the queries of the problem page, the API and the network page, with the privacy of DESIGN.md
section 5 applied to every name.
"""

import threading
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Membership, User
from marketplace.network.models import ChangeKind, Connection, NetworkChange, user_skills
from marketplace.network.reach import Reach, ReachIndex
from marketplace.problems.models import Problem
from marketplace.referrals.models import Referral
from marketplace.referrals.service import track_records

MAX_HOPS = 3
ANONYMOUS = "a member"
_CHANGES = select(NetworkChange.id, NetworkChange.kind, NetworkChange.a, NetworkChange.b, NetworkChange.created_at)


class ReachGraph:
    """One process's reach index over one database.

    Built from the tables on first use; before every query it applies the ``network_changes``
    rows newer than the last one it applied (one indexed range read, usually empty). The log's
    ids follow commit order (see ``changes.py``), so after catching up the index answers exactly
    as the database would at that moment, whichever process made the changes. When the log no
    longer holds the last applied row (pruned, or the database was restored) it rebuilds.
    """

    def __init__(self, **options) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._index: ReachIndex | None = None
        self._last_change: tuple | None = None  # the whole row: ids alone may be reused after a restore

    def index(self, session: Session) -> ReachIndex:
        """The index, caught up with every change committed before this call."""
        with self._lock:
            if self._index is None or not self._catch_up(session):
                self._build(session)
            return self._index

    def _build(self, session: Session) -> None:
        # The log position first: changes committed while the tables are read are applied again
        # later, which is harmless because every change states a new value rather than a delta.
        newest = session.execute(_CHANGES.order_by(NetworkChange.id.desc()).limit(1)).first()
        self._last_change = tuple(newest) if newest else None
        accepted = {user_id: record[1] for user_id, record in track_records(session, None).items()}
        self._index = ReachIndex.from_db(session.connection(), accepted, **self._options)

    def _catch_up(self, session: Session) -> bool:
        """Apply the changes after the last applied one; False when the log does not continue it."""
        last = self._last_change
        rows = session.execute(
            _CHANGES.where(NetworkChange.id >= (last[0] if last else 0)).order_by(NetworkChange.id)
        ).all()
        if last is not None:
            if not rows or tuple(rows[0]) != last:
                return False
            rows = rows[1:]
        skills_changed, records_changed = set(), set()
        for change in rows:
            if change.kind == ChangeKind.CONNECT:
                self._index.add_connection(change.a, change.b)
            elif change.kind == ChangeKind.DISCONNECT:
                self._index.remove_connection(change.a, change.b)
            elif change.kind == ChangeKind.SKILLS:
                skills_changed.add(change.a)
            else:
                records_changed.add(change.a)
        if skills_changed:
            held = defaultdict(list)
            for user_id, skill_id in session.execute(
                select(user_skills.c.user_id, user_skills.c.skill_id).where(user_skills.c.user_id.in_(skills_changed))
            ):
                held[user_id].append(skill_id)
            for user_id in skills_changed:
                self._index.set_skills(user_id, held[user_id])
        for user_id, (_, accepted) in track_records(session, sorted(records_changed)).items():
            self._index.set_track_record(user_id, accepted)
        if rows:
            self._last_change = tuple(rows[-1])
        return True


@dataclass(frozen=True)
class Person:
    """A member as the viewer may see them: no id and no name when they keep their name private."""

    user_id: int | None
    name: str


@dataclass(frozen=True)
class ReachResult:
    """A member with one of the skills, and one shortest chain of connections to them."""

    user_id: int | None
    name: str
    hops: int
    path: tuple[Person, ...]
    mutual: int
    track_record: int


@dataclass(frozen=True)
class Via:
    """One of the viewer's connections, and how many of the results lie through them."""

    user_id: int
    name: str
    reaches: int
    has_skill: bool
    can_forward: bool


@dataclass(frozen=True)
class Starter:
    """A member of the company, and the results their network reaches first."""

    user_id: int
    name: str
    reaches: int
    nearest: int


@dataclass
class ProblemReach:
    """What the problem page shows: ``via`` for a member, ``starters`` for the company."""

    results: list[ReachResult]
    k: int
    via: list[Via]
    starters: list[Starter]

    @property
    def capped(self) -> bool:
        return len(self.results) >= self.k


def _people(session: Session, viewer: User, found: list[Reach], always_named: set[int]) -> dict[int, Person]:
    """Names along the paths: the viewer's own connections are named, others as they allow."""
    ids = {user_id for reach in found for user_id in reach.path}
    if not ids:
        return {}
    rows = session.execute(
        select(User.id, User.name, User.show_name_on_chains, Connection.peer_id.is_not(None))
        .outerjoin(Connection, and_(Connection.user_id == viewer.id, Connection.peer_id == User.id))
        .where(User.id.in_(ids))
    )
    close = always_named | {viewer.id}
    people = {user_id: Person(None, ANONYMOUS) for user_id in ids}
    for user_id, name, shown, connected in rows:
        if shown or connected or user_id in close:
            people[user_id] = Person(user_id, name)
    return people


def _results(found: list[Reach], people: dict[int, Person]) -> list[ReachResult]:
    return [
        ReachResult(
            user_id=people[reach.user_id].user_id,
            name=people[reach.user_id].name,
            hops=reach.hops,
            path=tuple(people[user_id] for user_id in reach.path),
            mutual=reach.mutual,
            track_record=reach.track_record,
        )
        for reach in found
    ]


def _reach(
    session: Session, graph: ReachGraph, viewer: User, problem: Problem, k: int
) -> tuple[list[ReachResult], set[int]]:
    """The results and the ids of the company's members."""
    company = set(session.scalars(select(Membership.user_id).where(Membership.company_id == problem.company_id)))
    index = graph.index(session)
    skill_ids = [skill.id for skill in problem.skills]
    if viewer.id in company:
        found = index.experts_from_many(sorted(company), skill_ids, k, MAX_HOPS, exclude=company)
        return _results(found, _people(session, viewer, found, company)), company
    found = index.experts(viewer.id, skill_ids, k, MAX_HOPS, exclude=company)
    return _results(found, _people(session, viewer, found, set())), company


def problem_reach(
    session: Session, graph: ReachGraph, viewer: User, problem: Problem, k: int = 10
) -> list[ReachResult]:
    """The nearest ``k`` members within three hops who hold any of the problem's skills.

    Searched from the viewer, or, for the company's own people, from every member of the company
    (each result then starts at the colleague best placed to reach them). Members of the company
    are never results: they cannot be introduced to their own company.
    """
    return _reach(session, graph, viewer, problem, k)[0]


def problem_page_reach(
    session: Session, graph: ReachGraph, viewer: User, problem: Problem, k: int = 20
) -> ProblemReach:
    """``problem_reach`` grouped for the page: through which connection, or from which colleague."""
    results, company = _reach(session, graph, viewer, problem, k)
    if viewer.id in company:
        return ProblemReach(results, k, via=[], starters=_starters(results))
    return ProblemReach(results, k, via=_via(session, problem, results, company), starters=[])


def _via(session: Session, problem: Problem, results: list[ReachResult], company: set[int]) -> list[Via]:
    counts: dict[Person, int] = defaultdict(int)
    experts = set()
    for result in results:
        counts[result.path[1]] += 1
        if result.hops == 1:
            experts.add(result.user_id)
    in_chains = set(
        session.scalars(
            select(Referral.holder_id).where(
                Referral.problem_id == problem.id, Referral.holder_id.in_([p.user_id for p in counts])
            )
        )
    )
    via = [
        Via(
            user_id=person.user_id,
            name=person.name,
            reaches=count,
            has_skill=person.user_id in experts,
            can_forward=person.user_id not in company and person.user_id not in in_chains,
        )
        for person, count in counts.items()
    ]
    return sorted(via, key=lambda v: (-v.reaches, v.name))


def _starters(results: list[ReachResult]) -> list[Starter]:
    groups: dict[Person, list[int]] = defaultdict(list)
    for result in results:
        groups[result.path[0]].append(result.hops)
    starters = [Starter(p.user_id, p.name, len(hops), min(hops)) for p, hops in groups.items()]
    return sorted(starters, key=lambda s: (s.nearest, -s.reaches, s.name))


def degree_counts(session: Session, graph: ReachGraph, user: User) -> tuple[int, ...]:
    """How many members are exactly 1, 2 and 3 hops away along confirmed connections."""
    return graph.index(session).degree_counts(user.id, MAX_HOPS)
