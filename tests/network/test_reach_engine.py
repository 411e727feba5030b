"""The reach engine against a plain-Python breadth-first search on many small random graphs."""

import os
import threading
from collections import deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from marketplace.db import make_engine
from marketplace.network.reach import ReachIndex

SKILLS = range(4)


class Model:
    """The graph as Python sets: the oracle the index must agree with."""

    def __init__(self, members, edges, skills, track):
        self.members = set(members)
        self.adjacent = {m: set() for m in self.members}
        for a, b in edges:
            self.connect(a, b)
        self.skills = {s: set(h) for s, h in skills.items()}
        self.track = dict(track)

    def connect(self, a, b):
        self.members |= {a, b}
        self.adjacent.setdefault(a, set()).add(b)
        self.adjacent.setdefault(b, set()).add(a)

    def disconnect(self, a, b):
        self.adjacent.get(a, set()).discard(b)
        self.adjacent.get(b, set()).discard(a)

    def set_skills(self, user, skills):
        self.members.add(user)
        self.adjacent.setdefault(user, set())
        for skill in SKILLS:
            self.skills.setdefault(skill, set()).discard(user)
        for skill in skills:
            self.skills[skill].add(user)

    def distances(self, source):
        distance = {source: 0}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for peer in self.adjacent.get(node, ()):
                if peer not in distance:
                    distance[peer] = distance[node] + 1
                    queue.append(peer)
        return distance

    def mutual(self, a, b):
        return len(self.adjacent.get(a, set()) & self.adjacent.get(b, set()))

    def experts(self, sources, skills, k, max_hops, exclude=()):
        """Per expert the best (hops, -mutual) over the sources, ranked by the documented keys."""
        holders = set().union(*(self.skills.get(s, set()) for s in skills))
        best = {}
        for source in sources:
            if source not in self.members:
                continue
            for expert, hops in self.distances(source).items():
                if expert in holders and 1 <= hops <= max_hops:
                    key = (hops, -self.mutual(source, expert))
                    best[expert] = min(best.get(expert, key), key)
        excluded = set(exclude) | set(sources)
        ranked = sorted(
            (hops, neg_mutual, -self.track.get(e, 0), e) for e, (hops, neg_mutual) in best.items() if e not in excluded
        )
        return [(e, hops, -neg_mutual, -neg_track) for hops, neg_mutual, neg_track, e in ranked][:k]

    def degree_counts(self, source, max_hops):
        distance = self.distances(source) if source in self.members else {}
        return tuple(sum(1 for d in distance.values() if d == h) for h in range(1, max_hops + 1))

    def edges(self):
        return [(a, b) for a, peers in self.adjacent.items() for b in peers if a < b]

    def index(self, **options):
        edges = self.edges()
        src = np.array([a for a, _ in edges], dtype=np.int64)
        dst = np.array([b for _, b in edges], dtype=np.int64)
        skills = {s: np.array(sorted(h), dtype=np.int64) for s, h in self.skills.items()}
        members = np.array(sorted(self.members), dtype=np.int64)
        return ReachIndex.from_edges(members, src, dst, skills, self.track, **options)


def summary(reaches):
    return [(r.user_id, r.hops, r.mutual, r.track_record) for r in reaches]


def check_paths(model, reaches, sources):
    for reach in reaches:
        path = reach.path
        assert len(path) == reach.hops + 1
        assert path[0] in sources and path[-1] == reach.user_id
        assert all(b in model.adjacent[a] for a, b in zip(path, path[1:], strict=False))
        assert model.mutual(path[0], reach.user_id) == reach.mutual


def check_against_model(index, model, sources, skills, k, max_hops, exclude=()):
    expected = model.experts(sources, skills, k, max_hops, exclude)
    if len(sources) == 1:
        got = index.experts(sources[0], skills, k, max_hops, set(exclude))
    else:
        got = index.experts_from_many(sources, skills, k, max_hops, set(exclude))
    assert summary(got) == expected
    check_paths(model, got, sources)
    return got


MEMBER_IDS = st.integers(min_value=1, max_value=60).map(lambda i: i * 7 + 1000)


@st.composite
def graphs(draw, max_members=40):
    # Widely spread ids take the sort/search paths, compact ones the lookup-table paths.
    spread = draw(st.sampled_from([1, 10**9]))
    members = [i * spread for i in draw(st.lists(MEMBER_IDS, min_size=1, max_size=max_members, unique=True))]
    pair = st.tuples(st.sampled_from(members), st.sampled_from(members))
    edges = draw(st.lists(pair, max_size=3 * len(members)))
    skills = {s: draw(st.lists(st.sampled_from(members), max_size=6)) for s in SKILLS}
    track = draw(st.dictionaries(st.sampled_from(members), st.integers(0, 3)))
    return Model(members, [(a, b) for a, b in edges if a != b], skills, track)


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    graphs(),
    st.data(),
    st.integers(1, 12),
    st.integers(1, 4),
    st.lists(st.sampled_from(SKILLS), min_size=1, max_size=2),
)
def test_experts_match_breadth_first_search(model, data, k, max_hops, skills):
    index = model.index()
    members = sorted(model.members)
    exclude = data.draw(st.lists(st.sampled_from(members), max_size=3))
    for source in data.draw(st.lists(st.sampled_from(members), min_size=1, max_size=4)):
        check_against_model(index, model, [source], skills, k, max_hops, exclude)
        assert index.degree_counts(source, max_hops) == model.degree_counts(source, max_hops)


@FAST
@given(graphs(), st.data(), st.integers(1, 12), st.integers(1, 4))
def test_experts_from_many_take_the_best_source(model, data, k, max_hops):
    index = model.index()
    members = sorted(model.members)
    sources = data.draw(st.lists(st.sampled_from(members), min_size=1, max_size=5, unique=True))
    check_against_model(index, model, sources, [0, 1], k, max_hops)


# A person in an operation: an existing member (by position) most of the time, else a newcomer.
PEOPLE = st.one_of(st.integers(0, 99).map(lambda n: ("member", n)), MEMBER_IDS.map(lambda i: ("new", i)))
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), PEOPLE, PEOPLE),
        st.tuples(st.just("remove"), PEOPLE, PEOPLE),
        st.tuples(st.just("remove an existing connection"), st.integers(0, 99), st.none()),
        st.tuples(st.just("skills"), PEOPLE, st.frozensets(st.sampled_from(SKILLS))),
        st.tuples(st.just("track"), PEOPLE, st.integers(0, 3)),
        st.tuples(st.just("compact"), st.none(), st.none()),
    ),
    max_size=30,
)


def person(model, choice):
    kind, value = choice
    return sorted(model.members)[value % len(model.members)] if kind == "member" else value


@FAST
@given(graphs(max_members=25), OPERATIONS, st.integers(1, 8), st.sampled_from([2, 4, 10_000]))
def test_incremental_updates_answer_like_a_rebuild(model, operations, k, compact_after):
    index = model.index(compact_after=compact_after)
    # Query before updating so that per-skill links are cached and must be patched.
    for source in model.members:
        index.experts(source, [0], k)
    for operation, first, second in operations:
        if operation == "add" and person(model, first) != person(model, second):
            a, b = person(model, first), person(model, second)
            index.add_connection(a, b)
            model.connect(a, b)
        elif operation == "remove":
            a, b = person(model, first), person(model, second)
            index.remove_connection(a, b)
            model.disconnect(a, b)
        elif operation == "remove an existing connection" and model.edges():
            a, b = sorted(model.edges())[first % len(model.edges())]
            index.remove_connection(a, b)
            model.disconnect(a, b)
        elif operation == "skills":
            user = person(model, first)
            index.set_skills(user, second)
            model.set_skills(user, second)
        elif operation == "track":
            user = person(model, first)
            index.set_track_record(user, second)
            model.members.add(user)
            model.adjacent.setdefault(user, set())
            model.track[user] = second
        elif operation == "compact":
            index.compact()
    rebuilt = model.index()
    for source in sorted(model.members):
        for skills in ([0], [1, 2]):
            got = check_against_model(index, model, [source], skills, k, 3)
            assert summary(got) == summary(rebuilt.experts(source, skills, k))
        assert index.degree_counts(source) == rebuilt.degree_counts(source)


def test_an_answer_is_kept_while_the_network_is_unchanged_and_never_after_a_change():
    """Answers are kept with the snapshot they were found on (``ReachIndex.experts_from_many``):
    asked again, the same question gets the same answer, whatever the caller did with the
    first list; after any change, the answer is the new network's."""
    model = Model([1, 2, 3, 4], [(1, 2), (2, 3), (3, 4)], {0: [4]}, {})
    index = model.index()
    index.experts(1, [0]).clear()
    assert summary(index.experts(1, [0])) == [(4, 3, 0, 0)]
    assert summary(index.experts(1, [0], exclude={4})) == []
    index.add_connection(1, 4)
    assert summary(index.experts(1, [0])) == [(4, 1, 0, 0)]
    index.set_track_record(4, 2)
    assert summary(index.experts(1, [0])) == [(4, 1, 0, 2)]
    index.set_skills(4, [])
    assert index.experts(1, [0]) == []


def test_unknown_source_and_skill_have_no_reach():
    model = Model([1, 2], [(1, 2)], {0: [2]}, {})
    index = model.index()
    assert index.experts(99, [0]) == []
    assert index.experts(1, [42]) == []
    assert index.experts(1, [0], k=0) == []
    assert index.degree_counts(99) == (0, 0, 0)
    assert summary(index.experts(1, [0])) == [(2, 1, 0, 0)]


def test_rejects_invalid_queries():
    index = Model([1, 2], [(1, 2)], {0: [2]}, {}).index()
    with pytest.raises(ValueError):
        index.experts(1, [0], k=-1)
    with pytest.raises(ValueError):
        index.degree_counts(1, max_hops=0)
    with pytest.raises(ValueError):
        index.add_connection(1, 1)


def test_edges_may_be_given_in_both_directions_with_duplicates():
    src = np.array([1, 2, 1, 3, 3])
    dst = np.array([2, 1, 2, 2, 3])
    index = ReachIndex.from_edges(np.array([4]), src, dst, {0: np.array([3])})
    assert index.degree_counts(1) == (1, 1, 0)
    assert index.degree_counts(4) == (0, 0, 0)
    assert [r.path for r in index.experts(1, [0])] == [(1, 2, 3)]


def test_memory_is_reported_and_the_skill_cache_stays_within_budget():
    model = Model(range(1, 30), [(i, i + 1) for i in range(1, 29)], {0: [5, 20], 1: [9]}, {})
    index = model.index(skill_cache_bytes=1)
    before = index.memory_bytes()
    assert before > 0
    for source in range(1, 30, 3):
        for skills in ([0], [1], [0, 1]):
            check_against_model(index, model, [source], skills, 3, 4)
    assert before < index.memory_bytes() <= before + 8 * 2 * len(model.edges())


def test_per_thread_stamps_survive_many_queries():
    model = Model(range(1, 40), [(i, (i * 7) % 39 + 1) for i in range(1, 40)], {0: [3]}, {})
    index = model.index()
    for _ in range(3):
        for source in range(1, 40):
            assert index.degree_counts(source, 5) == model.degree_counts(source, 5)


def test_queries_run_concurrently_with_updates():
    """Readers see whole snapshots in order: with connections only added, reach never shrinks."""
    model = Model(range(1, 80), [(i, i + 1) for i in range(1, 79)], {0: [40, 60, 75]}, {})
    index = model.index(compact_after=5)
    additions = [(i, (i * 17) % 79 + 1) for i in range(1, 79) if abs(i - ((i * 17) % 79 + 1)) > 1]
    finished, failures, answers = threading.Event(), [], []

    def read(source):
        largest = 0
        try:
            while not finished.is_set():
                reach = sum(index.degree_counts(source))
                assert reach >= largest
                largest = reach
                answers.append((source, index.experts(source, [0], k=2)))
        except Exception as failure:  # reported by the main thread
            failures.append(failure)

    readers = [threading.Thread(target=read, args=(source,)) for source in (1, 30, 79)]
    for reader in readers:
        reader.start()
    for a, b in additions:
        index.add_connection(a, b)
        model.connect(a, b)
    finished.set()
    for reader in readers:
        reader.join()
    assert not failures
    assert answers
    for source, reaches in answers:
        for reach in reaches:
            path = reach.path
            assert path[0] == source and path[-1] == reach.user_id and len(path) == reach.hops + 1
            assert all(b in model.adjacent[a] for a, b in zip(path, path[1:], strict=False))
    for source in (1, 30, 79):
        check_against_model(index, model, [source], [0], 3, 3)


DATABASES = ["sqlite://"]
if os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"):
    DATABASES.append(os.environ["TEST_DATABASE_URL"])


@pytest.mark.parametrize("url", DATABASES, ids=lambda url: url.split(":")[0])
@settings(max_examples=20, deadline=None)
@given(model=graphs())
def test_from_db_reads_connections_and_skills(url, model):
    engine = create_engine(url) if url == "sqlite://" else make_engine(url)
    # Temporary tables shadow any real ones and vanish with the rolled-back transaction.
    with engine.connect() as connection:
        connection.execute(
            text(
                "CREATE TEMPORARY TABLE connections (user_id BIGINT NOT NULL, peer_id BIGINT NOT NULL,"
                " PRIMARY KEY (user_id, peer_id))"
            )
        )
        connection.execute(
            text("CREATE TEMPORARY TABLE user_skills (user_id BIGINT NOT NULL, skill_id INTEGER NOT NULL)")
        )
        directed = [{"a": a, "b": b} for a, b in model.edges()] + [{"a": b, "b": a} for a, b in model.edges()]
        if directed:
            connection.execute(text("INSERT INTO connections VALUES (:a, :b)"), directed)
        held = [{"u": u, "s": s} for s, users in model.skills.items() for u in users]
        if held:
            connection.execute(text("INSERT INTO user_skills VALUES (:u, :s)"), held)
        index = ReachIndex.from_db(connection, track_record=model.track)
        connection.rollback()
    engine.dispose()
    for source in sorted(model.members):
        # Members without connections or skills are not in the tables: their answers are empty.
        check_against_model(index, model, [source], [0, 3], 5, 3)
        assert index.degree_counts(source) == model.degree_counts(source, 3)
