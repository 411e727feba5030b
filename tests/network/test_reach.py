"""The reach search as the app serves it, against a breadth-first search over the ``connections``
table: same members, hops and mutual counts, the documented ranking, valid paths along confirmed
connections only; and after connections and skills change through the services, every process's
index (built before or after the changes) answers what the database says."""

import re
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from marketplace.accounts.models import User
from marketplace.accounts.service import update_profile
from marketplace.accounts.skills import set_member_skills
from marketplace.db import request_reads_only, utcnow
from marketplace.network import changes, reach_service, service
from marketplace.network.models import ChangeKind, Connection, ConnectionRequest, NetworkChange, RequestStatus
from marketplace.network.reach_service import ANONYMOUS, ReachGraph
from marketplace.problems.models import Problem
from marketplace.referrals import chains, read_models, records
from marketplace.referrals.models import Introduction, IntroductionStatus, Referral
from marketplace.workflows import reach as reach_search
from tests.builders import connection as connect
from tests.conftest import csrf_token

POOL = 9  # members 0..7 are outsiders; 8 is the company's employee, who is never a result
SKILL_NAMES = ["postgres", "kafka", "go"]  # the problem asks for PostgreSQL or Kafka


def adjacency(session) -> dict[int, set[int]]:
    peers: dict[int, set[int]] = {}
    for user_id, peer_id in session.execute(select(Connection.user_id, Connection.peer_id)):
        peers.setdefault(user_id, set()).add(peer_id)
    return peers


def bfs(peers, source) -> dict[int, int]:
    distance, queue = {source: 0}, deque([source])
    while queue:
        node = queue.popleft()
        for peer in peers.get(node, ()):
            if peer not in distance:
                distance[peer] = distance[node] + 1
                queue.append(peer)
    return distance


def expected_reach(session, viewer_id, problem, k, company):
    """Brute force from the tables: holders of any of the problem's skills within three hops."""
    peers = adjacency(session)
    skill_ids = {s.id for s in problem.skills}
    holders = {user.id for user in session.scalars(select(User)) if skill_ids & {s.id for s in user.skills}}
    records = dict(
        session.execute(
            select(Introduction.introducer_id, func.count())
            .where(Introduction.status == IntroductionStatus.ACCEPTED)
            .group_by(Introduction.introducer_id)
        ).all()
    )
    found = []
    for user_id, hops in bfs(peers, viewer_id).items():
        if 1 <= hops <= 3 and user_id in holders and user_id not in company and user_id != viewer_id:
            mutual = len(peers.get(viewer_id, set()) & peers.get(user_id, set()))
            found.append((hops, -mutual, -records.get(user_id, 0), user_id))
    return [(user_id, hops, -mutual) for hops, mutual, _, user_id in sorted(found)][:k]


def check_served(session, graph, viewer, problem, k, company):
    results = reach_search.problem_reach(session, graph, viewer, problem, k)
    event(f"results: {min(len(results), 3)}, deepest: {max((r.hops for r in results), default=0)}")
    assert [(r.user_id, r.hops, r.mutual) for r in results] == expected_reach(session, viewer.id, problem, k, company)
    peers = adjacency(session)
    for result in results:
        ids = [person.user_id for person in result.path]
        assert len(ids) == result.hops + 1 and ids[0] == viewer.id and ids[-1] == result.user_id
        assert all(b in peers.get(a, set()) for a, b in pairwise(ids)), "a path must follow confirmed connections"


def check_degrees(session, graph, user):
    distance = bfs(adjacency(session), user.id)
    expected = tuple(sum(1 for d in distance.values() if d == hops) for hops in (1, 2, 3))
    assert reach_service.degree_counts(session, graph, user) == expected


@dataclass
class Scene:
    pool: list
    problem: Problem
    company: set[int]
    graph: ReachGraph  # this process: updated incrementally from one example to the next
    other_process: ReachGraph  # built before any change, catches up only from the change log


@pytest.fixture
def scene(session, world, open_problem) -> Scene:
    """Built once per test run, before hypothesis's examples (which share it)."""
    pool = [User(email=f"pool{i}@example.com", name=f"Pool {i}", password_hash="x") for i in range(POOL - 1)]
    session.add_all(pool)
    session.commit()
    problem = open_problem(skills=["Postgres", "kafka"])
    other_process = ReachGraph(track_records=records.track_records)
    other_process.index(session)
    company = {world.owner.id, world.admin.id, world.employee.id}
    return Scene(
        [*pool, world.employee], problem, company, ReachGraph(track_records=records.track_records), other_process
    )


pairs = st.sampled_from([(a, b) for a in range(POOL) for b in range(a + 1, POOL)])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edges=st.sets(pairs, min_size=4, max_size=16),
    pending=st.sets(pairs, max_size=6),
    skills=st.lists(st.sets(st.sampled_from(SKILL_NAMES)), min_size=POOL, max_size=POOL),
    viewer=st.integers(0, POOL - 2),
    k=st.integers(1, 10),
)
def test_served_reach_matches_a_breadth_first_search_of_the_tables(session, scene, edges, pending, skills, viewer, k):
    """Each example turns the previous example's graph into its own through the services, so the
    long-lived indexes are updated incrementally; a third index is built from scratch."""
    pool = scene.pool
    session.execute(
        update(ConnectionRequest)
        .where(ConnectionRequest.status == RequestStatus.PENDING)
        .values(status=RequestStatus.CANCELLED)
    )
    session.commit()
    current = {
        (a, b) for a in range(POOL) for b in range(a + 1, POOL) if service.is_connected(session, pool[a].id, pool[b].id)
    }
    for a, b in sorted(current - edges):
        service.remove_connection(session, pool[b], pool[a].id)
        session.commit()
    for a, b in sorted(edges - current):
        connect(session, pool[a], pool[b])
    for a, b in sorted(pending - edges):  # asked, never confirmed: not a connection anywhere
        service.request_connection(session, pool[a], user_id=pool[b].id, note="Met at a meetup")
        session.commit()
    for user, names in zip(pool, skills, strict=True):
        set_member_skills(session, user, sorted(names))
        session.commit()

    for graph in (scene.graph, scene.other_process, ReachGraph(track_records=records.track_records)):
        check_served(session, graph, pool[viewer], scene.problem, k, scene.company)
        check_degrees(session, graph, pool[viewer])
    session.rollback()


def test_a_pending_request_is_not_a_connection(session, world, open_problem):
    problem = open_problem()
    graph = ReachGraph(track_records=records.track_records)
    service.request_connection(session, world.ann, user_id=world.dev.id, note="We met once")
    session.commit()
    assert reach_search.problem_reach(session, graph, world.ann, problem) == []
    assert reach_service.degree_counts(session, graph, world.ann) == (0, 0, 0)
    assert service.connections_of(session, world.ann) == []


def test_ranking_by_hops_then_mutual_connections_then_track_record(session, world, open_problem, make_user):
    """Ann reaches three PostgreSQL people at two hops: Pia shares two connections with her, Quinn
    and Rui one each; Rui's accepted introduction puts him before Quinn, and an accepted
    introduction recorded later (by another process) reaches the served ranking too."""
    problem = open_problem()
    pia, quinn, rui = (make_user(name, skills="postgresql") for name in ("Pia Park", "Quinn Quade", "Rui Reis"))
    for a, b in [
        (world.ann, world.bob),
        (world.ann, world.cleo),
        (world.bob, pia),
        (world.cleo, pia),
        (world.bob, quinn),
        (world.cleo, rui),
        (world.ann, world.dev),
    ]:
        connect(session, a, b)
    accepted = dict(problem_id=problem.id, candidate_email="x@example.com", message="m" * 12, consent_token="t")
    session.add(Introduction(introducer_id=rui.id, status=IntroductionStatus.ACCEPTED, **accepted))
    session.commit()
    graph = ReachGraph(track_records=records.track_records)
    ranked = reach_search.problem_reach(session, graph, world.ann, problem)
    assert [(r.name, r.hops, r.mutual, r.track_record) for r in ranked] == [
        ("Dev Sharma", 1, 0, 0),
        ("Pia Park", 2, 2, 0),
        ("Rui Reis", 2, 1, 1),
        ("Quinn Quade", 2, 1, 0),
    ]

    for token in ("t2", "t3"):
        session.add(
            Introduction(
                introducer_id=quinn.id, status=IntroductionStatus.ACCEPTED, **{**accepted, "consent_token": token}
            )
        )
    changes.record_change(session, ChangeKind.TRACK_RECORD, quinn.id)
    session.commit()
    ranked = reach_search.problem_reach(session, graph, world.ann, problem)
    assert [r.name for r in ranked][2:] == ["Quinn Quade", "Rui Reis"]


def test_changes_reach_a_process_built_earlier_and_a_pruned_log_rebuilds(session, world, open_problem):
    problem = open_problem()
    this_process, other_process = (
        ReachGraph(track_records=records.track_records),
        ReachGraph(track_records=records.track_records),
    )
    assert reach_search.problem_reach(session, other_process, world.ann, problem) == []

    connect(session, world.ann, world.bob)
    connect(session, world.bob, world.dev)
    assert [(r.name, r.hops) for r in reach_search.problem_reach(session, this_process, world.ann, problem)] == [
        ("Dev Sharma", 2)
    ]
    assert [(r.name, r.hops) for r in reach_search.problem_reach(session, other_process, world.ann, problem)] == [
        ("Dev Sharma", 2)
    ]

    service.remove_connection(session, world.dev, world.bob.id)
    set_member_skills(session, world.cleo, "PostgreSQL")
    session.commit()
    connect(session, world.bob, world.cleo)
    assert [(r.name, r.hops) for r in reach_search.problem_reach(session, other_process, world.ann, problem)] == [
        ("Cleo Duarte", 2)
    ]

    # Changes older than the retention are pruned (the newest is kept); a process whose last applied
    # change is gone rebuilds from the tables and still answers right.
    session.execute(update(NetworkChange).values(created_at=utcnow() - changes.RETENTION - timedelta(hours=1)))
    session.commit()
    connect(session, world.ann, world.dev)
    session.execute(update(NetworkChange).values(created_at=utcnow() - changes.RETENTION - timedelta(hours=1)))
    session.commit()
    assert changes.prune_changes(session) > 0
    session.commit()
    assert session.scalar(select(func.count()).select_from(NetworkChange)) == 1
    names = [(r.name, r.hops) for r in reach_search.problem_reach(session, this_process, world.ann, problem)]
    assert names == [("Dev Sharma", 1), ("Cleo Duarte", 2)]


def test_the_log_starting_over_makes_a_process_rebuild(session, world, open_problem):
    """A restored database (or emptied tables) no longer holds the change a process applied last."""
    problem = open_problem()
    graph = ReachGraph(track_records=records.track_records)
    connect(session, world.ann, world.dev)
    assert len(reach_search.problem_reach(session, graph, world.ann, problem)) == 1
    session.execute(delete(Connection))
    session.execute(delete(NetworkChange))
    session.commit()
    assert reach_search.problem_reach(session, graph, world.ann, problem) == []


def test_names_beyond_the_first_hop_follow_each_members_choice(session, world, open_problem, make_user):
    """Ann → Bob (hides his name) → Cleo (hides hers) → Dev: Bob is Ann's own connection and is
    named; Cleo is "a member" without an id; Dev shows his name."""
    problem = open_problem()
    world.bob.show_name_on_chains = False
    world.cleo.show_name_on_chains = False
    session.commit()
    for a, b in [(world.ann, world.bob), (world.bob, world.cleo), (world.cleo, world.dev)]:
        connect(session, a, b)
    (result,) = reach_search.problem_reach(session, ReachGraph(track_records=records.track_records), world.ann, problem)
    assert [(p.user_id, p.name) for p in result.path] == [
        (world.ann.id, "Ann Li"),
        (world.bob.id, "Bob Martins"),
        (None, "a member"),
        (world.dev.id, "Dev Sharma"),
    ]
    world.dev.show_name_on_chains = False
    session.commit()
    (result,) = reach_search.problem_reach(session, ReachGraph(track_records=records.track_records), world.ann, problem)
    assert (result.user_id, result.name) == (None, "a member")


def test_the_company_sees_which_employees_are_best_placed(session, world, open_problem, make_user):
    problem = open_problem()
    erin = make_user("Erin Walsh", skills="postgres")
    connect(session, world.employee, world.bob)
    connect(session, world.bob, world.dev)
    connect(session, world.owner, erin)
    connect(session, world.admin, world.employee)
    reach = reach_search.problem_page_reach(
        session, ReachGraph(track_records=records.track_records), world.admin, problem, holders=set()
    )
    assert [(s.name, s.reaches, s.nearest) for s in reach.starters] == [
        ("Olivia Owner", 1, 1),
        ("Ethan Employee", 1, 2),
    ]
    assert reach.via == []
    # Employees are never results: they cannot be introduced to their own company.
    set_member_skills(session, world.employee, "postgres")
    session.commit()
    assert world.employee.id not in [
        r.user_id
        for r in reach_search.problem_reach(
            session, ReachGraph(track_records=records.track_records), world.admin, problem
        )
    ]


def test_the_reach_panel_groups_by_connection_and_offers_forwards_where_they_can_go(
    session, world, open_problem, make_user
):
    """Through Bob, and through Ethan, who works for the company (no forward to him); once Bob
    holds a place in a chain for the problem, he cannot be forwarded it again either."""
    problem = open_problem()
    erin = make_user("Erin Walsh", skills="postgres")
    connect(session, world.ann, world.bob)
    connect(session, world.bob, world.dev)
    connect(session, world.ann, world.employee)
    connect(session, world.employee, erin)
    graph = ReachGraph(track_records=records.track_records)

    def holders() -> set[int]:  # as the problem page passes them: from its chains, loaded once
        return read_models.chain_view(session, world.ann, problem, is_company=False).holders

    reach = reach_search.problem_page_reach(session, graph, world.ann, problem, holders())
    assert [(v.name, v.reaches, v.has_skill, v.can_forward) for v in reach.via] == [
        ("Bob Martins", 1, False, True),
        ("Ethan Employee", 1, False, False),
    ]
    chains.pick_from_board(session, world.bob, problem.id)
    session.commit()
    assert holders() == {world.bob.id}
    reach = reach_search.problem_page_reach(session, graph, world.ann, problem, holders())
    assert [v.can_forward for v in reach.via] == [False, False]


def test_names_read_while_a_change_was_applied_are_not_kept(session, world, open_problem, monkeypatch):
    """Two requests of one process: the first reads Cleo's name; before it can keep it, the second
    applies her change of name. Kept, the old name would be shown until she changed it again."""
    problem = open_problem()
    for a, b in [(world.ann, world.bob), (world.bob, world.cleo), (world.cleo, world.dev)]:
        connect(session, a, b)
    graph = ReachGraph(track_records=records.track_records)
    read_names = reach_service._APPEARANCES

    class RenamedWhileReading:
        """The names as read; then, before they are kept, Cleo's change commits and is applied."""

        def fetchall(self, connection, params):
            rows = read_names.fetchall(connection, params)
            monkeypatch.setattr(reach_service, "_APPEARANCES", read_names)
            update_profile(session, world.cleo, name="Cleo D.", headline="", skills="", show_name_on_chains=True)
            session.commit()
            graph.index(session)
            return rows

    def path_names() -> list[str]:
        (result,) = reach_search.problem_reach(session, graph, world.ann, problem)
        return [person.name for person in result.path]

    token = request_reads_only.set(True)  # as in a page that only reads, whose names may be kept
    try:
        monkeypatch.setattr(reach_service, "_APPEARANCES", RenamedWhileReading())
        assert path_names() == ["Ann Li", "Bob Martins", "Cleo Duarte", "Dev Sharma"]  # as it was read
        assert path_names() == ["Ann Li", "Bob Martins", "Cleo D.", "Dev Sharma"]
    finally:
        request_reads_only.reset(token)


def test_names_a_request_that_writes_read_are_not_kept(session, world, open_problem):
    """A request that writes may read its own change of name, which could yet roll back."""
    problem = open_problem()
    for a, b in [(world.ann, world.bob), (world.bob, world.dev)]:
        connect(session, a, b)
    graph = ReachGraph(track_records=records.track_records)
    world.bob.name = "Bob, renamed and rolled back"
    session.flush()
    (result,) = reach_search.problem_reach(session, graph, world.ann, problem)
    assert result.path[1].name == "Bob, renamed and rolled back"
    session.rollback()
    token = request_reads_only.set(True)
    try:
        (result,) = reach_search.problem_reach(session, graph, world.ann, problem)
    finally:
        request_reads_only.reset(token)
    assert result.path[1].name == "Bob Martins"


def test_a_companys_people_see_their_own_connections_named_on_any_colleagues_path(session, world, open_problem):
    """Bob hides his name and is connected to two of the company's people, the admin and the
    employee; Dev, behind Bob, is reached through one of them. Whichever it is, both see Bob named,
    as their own connection; the owner, who does not know Bob, sees "a member"."""
    problem = open_problem()
    world.bob.show_name_on_chains = False
    session.commit()
    for a, b in [(world.admin, world.bob), (world.employee, world.bob), (world.bob, world.dev)]:
        connect(session, a, b)
    graph = ReachGraph(track_records=records.track_records)
    for viewer, bob_as_seen in [
        (world.admin, "Bob Martins"),
        (world.employee, "Bob Martins"),
        (world.owner, ANONYMOUS),
    ]:
        (result,) = reach_search.problem_reach(session, graph, viewer, problem)
        assert result.path[0].user_id in (world.admin.id, world.employee.id)
        assert (result.path[1].name, result.name) == (bob_as_seen, "Dev Sharma"), viewer.name


def _panel_token(html: str) -> str:
    """The CSRF token of the reach panel's form (the page's other forms carry their own field)."""
    found = re.search(
        r'<form method="post" class="mb-2">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', html
    )
    assert found, "no reach panel with forwards on the page"
    return found.group(1)


def test_the_reach_panel_is_drawn_once_for_what_it_shows_with_each_sessions_own_token(
    session, world, open_problem, browser
):
    """Each process draws the panel once for what it shows (``web.reach_panel``): two sessions
    that see the same panel each get their own CSRF token in it, a forward posted with it goes
    through, and once the connection holds a place the next view offers no forward to them."""
    problem = open_problem()
    connect(session, world.ann, world.bob)
    connect(session, world.bob, world.dev)
    session.commit()
    page = f"/problems/{problem.id}"
    first, second = browser(), browser()
    first.login(world.ann.email)
    second.login(world.ann.email)
    one, other = first.get(page).text, second.get(page).text
    assert "Forward to Bob Martins" in one and "Forward to Bob Martins" in other
    assert _panel_token(one) == csrf_token(one) and _panel_token(other) == csrf_token(other)
    assert _panel_token(one) != _panel_token(other)
    forwarded = second.client.post(f"{page}/forward-to/{world.bob.id}", data={"csrf_token": _panel_token(other)})
    assert forwarded.status_code == 302
    chains.claim(
        session,
        world.bob,
        session.scalars(select(Referral).where(Referral.recipient_user_id == world.bob.id)).one().token,
    )
    session.commit()
    assert "Bob Martins" in first.get(page).text and "Forward to Bob Martins" not in first.get(page).text
