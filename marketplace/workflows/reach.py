"""The reach search for a problem: the nearest members within three hops who hold one of its
skills, from the viewer or from the whole company, grouped for the problem page.

It reads the network's index (``network.reach_service``), the problem's skills and company, and
is told who already holds a place on its chains (the problem page has them loaded), which is why
it is a workflow.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Membership, User
from marketplace.db import Prepared, Read, connection_of
from marketplace.network.reach import Reach
from marketplace.network.reach_service import MAX_HOPS, Person, ReachGraph
from marketplace.problems.models import Problem

# Built once: a member's problem page runs it on every request, and building it cost more than
# running it (docs/performance.md, "What limits them"). By the problem's id, which the page knows
# before it reads anything, so that it can be read ahead with the page's other statements.
_COMPANY_MEMBERS = Prepared(
    select(Membership.user_id).where(
        Membership.company_id
        == select(Problem.company_id).where(Problem.id == bindparam("problem_id", type_=Integer)).scalar_subquery()
    )
)


def reach_reads(graph: ReachGraph, problem_id: int) -> list[Read]:
    """The statements a search for the problem runs before it searches, whoever the viewer: the
    company's members and the network's log since the index last caught up (``db.reading_ahead``)."""
    return [_COMPANY_MEMBERS.read(problem_id=problem_id), *graph.catch_up_reads()]


@dataclass(frozen=True)
class ReachResult:
    """A member with one of the skills, and one shortest chain of connections to them."""

    user_id: int | None
    name: str
    hops: int
    path: tuple[Person, ...]
    mutual: int
    track_record: int


class Via(NamedTuple):
    """One of the viewer's connections, and how many of the results lie through them (a tuple:
    the reach panel is kept by what it shows, ``web.reach_panel``)."""

    user_id: int
    name: str
    reaches: int
    has_skill: bool
    can_forward: bool

    @property
    def summary(self) -> str:
        """The connection and how many results lie through them, as in "Ann (3)"."""
        return f"{self.name} ({self.reaches})"


class Starter(NamedTuple):
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
    company = {row[0] for row in _COMPANY_MEMBERS.read(problem_id=problem.id).fetchall(connection_of(session))}
    index = graph.index(session)
    skill_ids = [skill.id for skill in problem.skills]
    if viewer.id in company:
        found = index.experts_from_many(sorted(company), skill_ids, k, MAX_HOPS, exclude=company)
        return _results(found, graph.people_as_seen(session, viewer, found, company)), company
    found = index.experts(viewer.id, skill_ids, k, MAX_HOPS, exclude=company)
    return _results(found, graph.people_as_seen(session, viewer, found, set())), company


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
    session: Session, graph: ReachGraph, viewer: User, problem: Problem, holders: set[int], k: int = 20
) -> ProblemReach:
    """``problem_reach`` grouped for the page: through which connection, or from which colleague.
    ``holders`` are the members who hold a place on the problem's chains: the viewer cannot
    forward the problem to them again."""
    results, company = _reach(session, graph, viewer, problem, k)
    if viewer.id in company:
        return ProblemReach(results, k, via=[], starters=_starters(results))
    return ProblemReach(results, k, via=_via(results, company, holders), starters=[])


def _via(results: list[ReachResult], company: set[int], holders: set[int]) -> list[Via]:
    counts: dict[Person, int] = defaultdict(int)
    experts = set()
    for result in results:
        counts[result.path[1]] += 1
        if result.hops == 1:
            experts.add(result.user_id)
    via = [
        Via(
            user_id=_named_id(person),
            name=person.name,
            reaches=count,
            has_skill=person.user_id in experts,
            can_forward=person.user_id not in company and person.user_id not in holders,
        )
        for person, count in counts.items()
    ]
    return sorted(via, key=lambda v: (-v.reaches, v.name))


def _named_id(person: Person) -> int:
    """The id of a member the viewer sees by name: their own connections, their colleagues."""
    if person.user_id is None:
        raise ValueError(f"{person.name!r} is shown without their id")
    return person.user_id


def _starters(results: list[ReachResult]) -> list[Starter]:
    groups: dict[Person, list[int]] = defaultdict(list)
    for result in results:
        groups[result.path[0]].append(result.hops)
    starters = [Starter(_named_id(p), p.name, len(hops), min(hops)) for p, hops in groups.items()]
    return sorted(starters, key=lambda s: (s.nearest, -s.reaches, s.name))
