"""In-memory reach search: who in a member's network, within a few hops, holds a skill.

Members are arbitrary integer user ids, mapped to dense indices. The confirmed connections form an
undirected graph kept as a CSR matrix (int32 ``indptr``/``indices``). Changes since the
last compaction live in a small overlay of added and removed connections that queries consult
(rows the overlay touches are read exactly, all others straight from the CSR); once the overlay
holds ``compact_after`` directed changes it is merged into a new CSR.

For each queried skill the index keeps, as sorted ``member << 32 | expert`` keys, every connection
between a holder of the skill and anyone else. Looking up the keys of the source's neighbours gives
the experts one and two hops away together with the middle member and the mutual-connection
counts, without expanding the two-hop frontier. Only when fewer than ``k`` experts lie within two
hops is the frontier expanded, and the experts at hop ``h`` are then the unvisited experts linked
to a member at hop ``h - 1``: a lookup, not a further expansion.

Thread safety: every query reads one immutable snapshot, taken with a single attribute read.
Writers serialise on a lock, build the next snapshot (sharing the unchanged arrays) and publish it
by assignment. The per-skill keys are the one piece filled lazily; each snapshot owns its cache,
guarded by its own lock, and writers carry the cached skills over to the next snapshot, patched.
Scratch arrays for breadth-first search are per thread.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
import scipy.sparse as sp
from sqlalchemy import text

MAX_HOPS = 16
"""Longest introduction chain a query may ask for; keeps per-query BFS stamps within one byte."""

ANSWERS_KEPT = 1024
"""Answers an index keeps for its current snapshot (``ReachIndex.experts_from_many``): at most
20 experts each, with their paths, a few megabytes in all."""

_LOW32 = np.int64(0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class Reach:
    """An expert the source can be introduced to, with one shortest chain of connections."""

    user_id: int
    hops: int
    path: tuple[int, ...]
    mutual: int
    track_record: int


class ReachIndex:
    """Answers "who within a few hops holds skill S" from an in-memory copy of the graph.

    Build it with ``from_edges`` or ``from_db``; keep it current with the update methods.
    """

    def __init__(
        self,
        snapshot: _Snapshot,
        *,
        compact_after: int = 4096,
    ) -> None:
        self._snapshot = snapshot
        self._compact_after = compact_after
        self._write_lock = threading.Lock()
        self._stamps = _Stamps()
        # The experts found on one snapshot, by question: see ``experts_from_many``.
        self._answers: tuple[_Snapshot, dict[tuple, tuple[Reach, ...]]] = (snapshot, {})

    @classmethod
    def from_edges(
        cls,
        user_ids: np.ndarray,
        src: np.ndarray,
        dst: np.ndarray,
        skills: Mapping[int, np.ndarray],
        track_record: Mapping[int, int] | None = None,
        *,
        compact_after: int = 4096,
        skill_cache_bytes: int = 512 * 2**20,
    ) -> ReachIndex:
        """Build from connection pairs; each ``(src[i], dst[i])`` is one undirected connection.

        Either one row per connection or one per direction may be given: pairs are symmetrised,
        duplicates and self-connections dropped. Members are ``user_ids`` plus every id that
        appears in ``src``, ``dst``, ``skills`` or ``track_record``. ``skills`` maps a skill id
        to the user ids holding it; ``track_record`` maps a user id to accepted introductions.
        """
        track_record = track_record or {}
        track_ids = np.fromiter(track_record.keys(), dtype=np.int64, count=len(track_record))
        src, dst = _as_ids(src), _as_ids(dst)
        skills = {int(skill): _as_ids(holders) for skill, holders in skills.items()}
        ids = _unique(np.concatenate([_as_ids(user_ids), src, dst, *skills.values(), track_ids]))
        index_of = _indexer(ids)
        holders = {skill: _unique(index_of(holder_ids)) for skill, holder_ids in skills.items()}
        track = np.zeros(ids.size, dtype=np.int64)
        track[index_of(track_ids)] = np.fromiter(track_record.values(), dtype=np.int64, count=len(track_record))
        snapshot = _Snapshot(
            members=_Members(ids, ids, np.arange(ids.size, dtype=np.int32)),
            adjacency=_Adjacency.from_pairs(index_of(src), index_of(dst), ids.size),
            holders=holders,
            track_record=track,
            links=_LinkCache(skill_cache_bytes),
        )
        return cls(snapshot, compact_after=compact_after)

    @classmethod
    def from_db(
        cls,
        connection,
        track_record: Mapping[int, int] | None = None,
        **options,
    ) -> ReachIndex:
        """Build from the ``connections`` and ``user_skills`` tables of a SQLAlchemy Connection.

        ``connections`` stores both directions of every confirmed connection, so only the rows
        with ``user_id < peer_id`` are read. Ids come back aggregated into one comma-separated
        string per user (per skill), parsed by numpy: one Python-level row per member instead of
        one per connection. ``options`` are passed on to ``from_edges``.
        """
        users, peer_counts, peers = _fetch_grouped(
            connection, "connections", "user_id", "peer_id", where="WHERE user_id < peer_id"
        )
        skill_ids, holder_counts, holders = _fetch_grouped(connection, "user_skills", "skill_id", "user_id")
        ends = np.cumsum(holder_counts)
        skills = {
            skill: holders[end - count : end]
            for skill, count, end in zip(skill_ids.tolist(), holder_counts, ends, strict=True)
        }
        return cls.from_edges(
            np.empty(0, dtype=np.int64),
            np.repeat(users, peer_counts),
            peers,
            skills,
            track_record,
            **options,
        )

    def experts(
        self,
        source: int,
        skill_ids: Sequence[int],
        k: int = 10,
        max_hops: int = 3,
        exclude: set[int] | None = None,
    ) -> list[Reach]:
        """The ``k`` best-placed members within ``max_hops`` holding any of ``skill_ids``.

        Ranked by hops, then mutual connections with the source (descending), then track record
        (descending), then user id. The source and the ``exclude`` ids are never returned but may
        appear inside a path. An unknown source has no network.
        """
        return self.experts_from_many([source], skill_ids, k, max_hops, exclude)

    def experts_from_many(
        self,
        sources: Sequence[int],
        skill_ids: Sequence[int],
        k: int = 10,
        max_hops: int = 3,
        exclude: set[int] | None = None,
    ) -> list[Reach]:
        """Like ``experts`` for a group (a company's employees): each expert reached the best way.

        For each expert the best source is the one with the fewest hops and, among those, the
        most mutual connections; ``path`` starts at that source and ``mutual`` is that source's.
        Sources are never returned.

        A snapshot never changes once published, so neither does the answer to a question asked
        of it: answers are kept with the snapshot they were found on (up to ``ANSWERS_KEPT``)
        and go with it when a change publishes the next one. A member who opens a problem's page
        again, or each colleague of a company on its page, asks the same question of an
        unchanged network, and the search was a tenth of that page (docs/performance.md,
        "What limits them").
        """
        if k < 0:
            raise ValueError("k must not be negative")
        _check_hops(max_hops)
        snapshot = self._snapshot
        question = (tuple(sources), tuple(sorted(set(skill_ids))), k, max_hops, frozenset(exclude or ()))
        kept_for, answers = self._answers
        if kept_for is not snapshot:
            answers = {}
            self._answers = (snapshot, answers)
        answer = answers.get(question)
        if answer is None:
            answer = tuple(self._search(snapshot, sources, skill_ids, k, max_hops, exclude or set()))
            if len(answers) >= ANSWERS_KEPT:
                answers.clear()
            answers[question] = answer
        return list(answer)

    def _search(
        self,
        snapshot: _Snapshot,
        sources: Sequence[int],
        skill_ids: Sequence[int],
        k: int,
        max_hops: int,
        exclude: set[int],
    ) -> list[Reach]:
        found = snapshot.members.lookup(sources)
        indices = _unique(found[found >= 0])
        skills = [s for s in set(skill_ids) if snapshot.holders.get(s, _NO_MEMBERS).size]
        if k == 0 or not indices.size or not skills:
            return []
        excluded = snapshot.members.lookup(list(exclude))
        excluded = _unique(np.concatenate([indices, excluded[excluded >= 0]]))
        return _ExpertSearch(snapshot, self._stamps, indices, skills, excluded).run(k, max_hops)

    def connected(self, a: int, b: int) -> bool:
        """Whether members ``a`` and ``b`` are connected."""
        snapshot = self._snapshot
        rows = snapshot.members.lookup([a, b])
        return bool(min(rows) >= 0 and snapshot.adjacency.has_edge(int(rows[0]), int(rows[1])))

    def degree_counts(self, source: int, max_hops: int = 3) -> tuple[int, ...]:
        """Number of members at exactly 1, 2, ..., ``max_hops`` hops from ``source``."""
        _check_hops(max_hops)
        snapshot = self._snapshot
        index = snapshot.members.lookup([source])[0]
        if index < 0:
            return (0,) * max_hops
        adjacency = snapshot.adjacency
        visit, base = self._stamps.generation(adjacency.n, max_hops)
        visit[index] = base
        frontier = np.array([index], dtype=np.int32)
        counts = []
        for hop in range(1, max_hops + 1):
            fresh = adjacency.neighbour_mask(frontier) & (visit[: adjacency.n] < base)
            if hop == max_hops:
                counts.append(int(np.count_nonzero(fresh)))
                break
            frontier = np.flatnonzero(fresh).astype(np.int32)
            visit[frontier] = base + hop
            counts.append(frontier.size)
        return tuple(counts)

    def add_connection(self, a: int, b: int) -> None:
        """Record a confirmed connection; unknown members join the index."""
        self._change_connection(a, b, +1)

    def remove_connection(self, a: int, b: int) -> None:
        """Forget a connection; a no-op when it is not there."""
        self._change_connection(a, b, -1)

    def set_skills(self, user_id: int, skill_ids: Iterable[int]) -> None:
        """Replace the skills a member holds; an unknown member joins the index."""
        wanted = {int(s) for s in skill_ids}
        with self._write_lock:
            snapshot = self._snapshot.with_members([user_id])
            self._publish(snapshot.with_skills(int(snapshot.members.lookup([user_id])[0]), wanted))

    def set_track_record(self, user_id: int, accepted_introductions: int) -> None:
        """Update a member's track record; an unknown member joins the index."""
        with self._write_lock:
            snapshot = self._snapshot.with_members([user_id])
            track = snapshot.track_record.copy()
            track[snapshot.members.lookup([user_id])[0]] = accepted_introductions
            self._publish(dataclasses.replace(snapshot, track_record=track))

    def compact(self) -> None:
        """Merge the overlay of connection changes into the CSR now (e.g. at a quiet time)."""
        with self._write_lock:
            self._snapshot = self._snapshot.compacted()

    def memory_bytes(self) -> int:
        """Bytes held in the current snapshot's arrays, including cached per-skill keys."""
        return self._snapshot.nbytes

    def _change_connection(self, a: int, b: int, sign: int) -> None:
        if a == b and sign > 0:
            raise ValueError("a member cannot be connected to themselves")
        with self._write_lock:
            snapshot = self._snapshot
            if sign > 0:
                snapshot = snapshot.with_members([a, b])
            ia, ib = (int(i) for i in snapshot.members.lookup([a, b]))
            if min(ia, ib) < 0 or ia == ib or snapshot.adjacency.has_edge(ia, ib) == (sign > 0):
                self._snapshot = snapshot
                return
            self._publish(snapshot.with_connection(ia, ib, sign))

    def _publish(self, snapshot: _Snapshot) -> None:
        if snapshot.adjacency.overlay_size > self._compact_after:
            snapshot = snapshot.compacted()
        self._snapshot = snapshot


def _check_hops(max_hops: int) -> None:
    if not 1 <= max_hops <= MAX_HOPS:
        raise ValueError(f"max_hops must be between 1 and {MAX_HOPS}")


_NO_MEMBERS = np.empty(0, dtype=np.int32)


@dataclass(frozen=True)
class _Members:
    """Dense index <-> user id. Indices only ever get appended, so CSR rows never move."""

    ids: np.ndarray  # int64, dense index -> user id
    sorted_ids: np.ndarray  # int64, ascending
    sorted_index: np.ndarray  # int32, dense index of each sorted id

    @property
    def count(self) -> int:
        return self.ids.size

    def lookup(self, user_ids) -> np.ndarray:
        """Dense indices of ``user_ids`` (int64), -1 for ids that are not members."""
        user_ids = np.asarray(user_ids, dtype=np.int64)
        if not self.count:
            return np.full(user_ids.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.sorted_ids, user_ids), self.count - 1)
        return np.where(self.sorted_ids[pos] == user_ids, self.sorted_index[pos], -1)

    def including(self, user_ids: Sequence[int]) -> _Members:
        new = _unique(np.asarray(user_ids, dtype=np.int64))
        new = new[self.lookup(new) < 0]
        if not new.size:
            return self
        pos = np.searchsorted(self.sorted_ids, new)
        return _Members(
            np.concatenate([self.ids, new]),
            np.insert(self.sorted_ids, pos, new),
            np.insert(self.sorted_index, pos, np.arange(self.count, self.count + new.size)),
        )

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.sorted_ids.nbytes + self.sorted_index.nbytes


@dataclass(frozen=True)
class _Adjacency:
    """Confirmed connections: a symmetric boolean CSR plus the changes made since it was built.

    ``changes`` maps each changed directed pair to +1 (added) or -1 (removed); ``delta`` is the
    same as an int8 CSR, so the exact rows are ``base[rows] + delta[rows]`` (scipy drops the
    zeros that removals leave).
    """

    base: sp.csr_array
    changes: Mapping[tuple[int, int], int]
    delta: sp.csr_array

    @classmethod
    def from_pairs(cls, a: np.ndarray, b: np.ndarray, n: int) -> _Adjacency:
        keep = a != b
        rows = np.concatenate([a[keep], b[keep]]).astype(np.int32)
        cols = np.concatenate([b[keep], a[keep]]).astype(np.int32)
        # coo -> csr is a counting sort; duplicates are OR-ed together.
        base = sp.coo_array((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(n, n)).tocsr()
        return cls(base, {}, _delta_matrix({}, n))

    @property
    def n(self) -> int:
        return self.base.shape[0]

    @property
    def overlay_size(self) -> int:
        return len(self.changes)

    @property
    def nbytes(self) -> int:
        return sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in (self.base, self.delta))

    def resized(self, n: int) -> _Adjacency:
        """The same graph over ``n`` members (new members have no connections yet)."""
        indptr = self.base.indptr
        padded = np.concatenate([indptr, np.full(n - self.n, indptr[-1], dtype=indptr.dtype)])
        base = sp.csr_array((self.base.data, self.base.indices, padded), shape=(n, n))
        return _Adjacency(base, self.changes, _delta_matrix(self.changes, n))

    def has_edge(self, a: int, b: int) -> bool:
        return bool(np.any(self.neighbours(a) == b))

    def with_change(self, a: int, b: int, sign: int) -> _Adjacency:
        """Add (``sign`` +1) or remove (-1) a connection the caller knows to be absent/present."""
        changes = dict(self.changes)
        for pair in ((a, b), (b, a)):
            value = changes.pop(pair, 0) + sign
            if value:
                changes[pair] = value
        return _Adjacency(self.base, changes, _delta_matrix(changes, self.n))

    def compacted(self) -> _Adjacency:
        if not self.changes:
            return self
        merged = (self.base.astype(np.int8) + self.delta).astype(bool)
        return _Adjacency(merged, {}, _delta_matrix({}, self.n))

    def neighbours(self, row: int) -> np.ndarray:
        return self.row_pairs(np.array([row], dtype=np.int32))[1]

    def row_pairs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(positions, neighbours)``: every neighbour of ``rows[positions[i]]``.

        A row the overlay leaves untouched is read straight from the CSR's arrays: selecting it
        through scipy's indexing built a new matrix in Python, the costliest step of a search."""
        positions, neighbours = [np.zeros(0, dtype=np.intp)], [np.zeros(0, dtype=np.int32)]
        if not rows.size:
            return positions[0], neighbours[0]
        touched = self._touched(rows)
        clean = np.flatnonzero(~touched)
        starts = self.base.indptr[rows[clean]]
        counts = self.base.indptr[rows[clean] + 1] - starts
        positions.append(np.repeat(clean, counts))
        neighbours.append(self.base.indices[_ranges(starts, counts)])
        dirty = np.flatnonzero(touched)
        if dirty.size:
            exact = self._exact(rows[dirty])
            positions.append(np.repeat(dirty, np.diff(exact.indptr)))
            neighbours.append(exact.indices)
        return np.concatenate(positions), np.concatenate(neighbours)

    def neighbour_mask(self, rows: np.ndarray) -> np.ndarray:
        """Boolean mask of every member adjacent to one of ``rows``.

        A transposed mat-vec of the selected rows: a scatter in compiled code, several times
        faster than gathering the neighbour lists and scattering them with numpy.
        """
        mask = np.zeros(self.n, dtype=bool)
        for picked, matrix in self._exact_parts(rows):
            if matrix.nnz:
                mask |= matrix.T @ np.ones(picked.size, dtype=bool)
        return mask

    def _exact_parts(self, rows: np.ndarray):
        """Rows untouched by the overlay straight from the CSR, the others corrected."""
        if not rows.size:
            return
        if not self.changes:
            yield np.arange(rows.size), self.base[rows]
            return
        touched = self._touched(rows)
        clean, dirty = np.flatnonzero(~touched), np.flatnonzero(touched)
        if clean.size:
            yield clean, self.base[rows[clean]]
        if dirty.size:
            yield dirty, self._exact(rows[dirty])

    def _touched(self, rows: np.ndarray) -> np.ndarray:
        """Which of ``rows`` the overlay changes."""
        return self.delta.indptr[rows + 1] != self.delta.indptr[rows]

    def _exact(self, rows: np.ndarray) -> sp.csr_array:
        """``rows`` with the overlay's changes applied."""
        return (self.base[rows].astype(np.int8) + self.delta[rows]).astype(bool)


def _delta_matrix(changes: Mapping[tuple[int, int], int], n: int) -> sp.csr_array:
    pairs = np.array(list(changes), dtype=np.int32).reshape(-1, 2)
    signs = np.fromiter(changes.values(), dtype=np.int8, count=len(changes))
    return sp.coo_array((signs, (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()


class _LinkCache:
    """Per skill, the sorted keys ``member << 32 | expert`` of every connection to a holder.

    Built on first use (cost: the holders' degrees) and kept within a byte budget, least recently
    used dropped first. Owned by one snapshot; writers copy the entries into the next, patched.
    """

    def __init__(self, budget_bytes: int, entries: Iterable[tuple[int, np.ndarray]] = ()):
        self._budget = budget_bytes
        self._entries: OrderedDict[int, np.ndarray] = OrderedDict(entries)
        self._bytes = sum(keys.nbytes for keys in self._entries.values())
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, skill: int, build: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            keys = self._entries.get(skill)
            if keys is not None:
                self._entries.move_to_end(skill)
                return keys
        keys = build()
        with self._lock:
            if skill not in self._entries:
                self._entries[skill] = keys
                self._bytes += keys.nbytes
                while self._bytes > self._budget and len(self._entries) > 1:
                    self._bytes -= self._entries.popitem(last=False)[1].nbytes
        return keys

    def patched(self, patch: Callable[[int, np.ndarray], np.ndarray]) -> _LinkCache:
        with self._lock:
            entries = list(self._entries.items())
        return _LinkCache(self._budget, [(skill, patch(skill, keys)) for skill, keys in entries])


@dataclass(frozen=True)
class _Snapshot:
    """Everything a query reads; never mutated after publication (bar the lazy link cache)."""

    members: _Members
    adjacency: _Adjacency
    holders: Mapping[int, np.ndarray]  # skill id -> sorted dense indices of its holders
    track_record: np.ndarray  # int64 per dense index
    links: _LinkCache

    @property
    def nbytes(self) -> int:
        return (
            self.members.nbytes
            + self.adjacency.nbytes
            + sum(h.nbytes for h in self.holders.values())
            + self.track_record.nbytes
            + self.links.nbytes
        )

    def skill_links(self, skill: int) -> np.ndarray:
        def build() -> np.ndarray:
            holders = self.holders[skill]
            positions, members = self.adjacency.row_pairs(holders)
            return np.sort(_link_keys(members, holders[positions]))

        return self.links.get(skill, build)

    def with_members(self, user_ids: Sequence[int]) -> _Snapshot:
        members = self.members.including(user_ids)
        if members is self.members:
            return self
        grown = members.count - self.members.count
        return dataclasses.replace(
            self,
            members=members,
            adjacency=self.adjacency.resized(members.count),
            track_record=np.concatenate([self.track_record, np.zeros(grown, dtype=np.int64)]),
        )

    def with_connection(self, a: int, b: int, sign: int) -> _Snapshot:
        def patch(skill: int, keys: np.ndarray) -> np.ndarray:
            holders = self.holders[skill]
            ends = np.array([b, a])
            held = _contains(holders, ends)
            changed = _link_keys(np.array([a, b])[held], ends[held])
            return _insert_keys(keys, changed) if sign > 0 else _delete_keys(keys, changed)

        return dataclasses.replace(
            self,
            adjacency=self.adjacency.with_change(a, b, sign),
            links=self.links.patched(patch),
        )

    def with_skills(self, member: int, wanted: set[int]) -> _Snapshot:
        held = {s for s, h in self.holders.items() if _contains(h, np.array([member]))[0]}
        gained, lost = wanted - held, held - wanted
        holders = dict(self.holders)
        for skill in gained:
            h = holders.get(skill, _NO_MEMBERS)
            holders[skill] = np.insert(h, np.searchsorted(h, member), member).astype(np.int32)
        for skill in lost:
            h = holders[skill]
            holders[skill] = np.delete(h, np.searchsorted(h, member))
        neighbours = self.adjacency.neighbours(member)
        links = _link_keys(neighbours, np.full(neighbours.size, member))

        def patch(skill: int, keys: np.ndarray) -> np.ndarray:
            if skill in gained:
                return _insert_keys(keys, links)
            if skill in lost:
                return _delete_keys(keys, links)
            return keys

        return dataclasses.replace(self, holders=holders, links=self.links.patched(patch))

    def compacted(self) -> _Snapshot:
        return dataclasses.replace(self, adjacency=self.adjacency.compacted())


class _ExpertSearch:
    """One ``experts_from_many`` query against one snapshot."""

    def __init__(
        self,
        snapshot: _Snapshot,
        stamps: _Stamps,
        sources: np.ndarray,
        skills: list[int],
        excluded: np.ndarray,
    ) -> None:
        self.snapshot = snapshot
        self.adjacency = snapshot.adjacency
        self.stamps = stamps
        self.sources = sources
        self.excluded = excluded
        self.holders = [snapshot.holders[s] for s in skills]
        self.links = [snapshot.skill_links(s) for s in skills]
        self.near = _NO_MEMBERS  # the sources' neighbours, one entry per (source, neighbour)
        self.visit, self.base = _NO_MEMBERS, 0  # BFS stamps, set once levels beyond 2 are searched

    def run(self, k: int, max_hops: int) -> list[Reach]:
        near = self._within_two_hops(max_hops)
        ranked = [near[near.hops == 1].ranked(self.snapshot)]
        if ranked[0].size < k:
            ranked.append(near[near.hops == 2].ranked(self.snapshot))
        found = sum(r.size for r in ranked)
        if found < k and max_hops > 2:
            for deeper in self._beyond_two_hops(max_hops, k - found):
                ranked.append(deeper.ranked(self.snapshot))
        best = _Candidates.concatenate(ranked)[:k]
        return best.to_reaches(self.snapshot, self._paths(best))

    def _within_two_hops(self, max_hops: int) -> _Candidates:
        """Experts one and two hops away via the link keys of the sources' neighbours."""
        source_pos, self.near = self.adjacency.row_pairs(self.sources)
        source_of = self.sources[source_pos].astype(np.int64)
        adjacent = np.sort(_link_keys(source_of, self.near))

        is_holder = np.zeros(self.near.size, dtype=bool)
        for holders in self.holders:
            is_holder |= _contains(holders, self.near)
        direct = _link_keys(source_of[is_holder], self.near[is_holder])

        # One entry per (source, middle, expert) chain; their count per pair is the mutual count.
        entries, experts = self._links_of_rows(self.near)
        via_keys, first, mutual = _distinct(_link_keys(source_of[entries], experts))
        middle = self.near[entries[first]]

        direct = direct[~_contains(via_keys, direct)]
        keys = np.concatenate([via_keys, direct])
        candidates = _Candidates(
            expert=(keys & _LOW32).astype(np.int32),
            hops=np.where(_contains(adjacent, keys), 1, 2).astype(np.int8),
            mutual=np.concatenate([mutual, np.zeros(direct.size, dtype=mutual.dtype)]),
            source=(keys >> 32).astype(np.int32),
            middle=np.concatenate([middle, np.full(direct.size, -1, dtype=middle.dtype)]),
        )
        candidates = candidates.best_per_expert()
        candidates = candidates[~_contains(self.excluded, candidates.expert)]
        return candidates[candidates.hops <= max_hops]

    def _beyond_two_hops(self, max_hops: int, wanted: int):
        """Breadth-first levels; the experts at hop h are unvisited experts linked to level h-1."""
        visit, base = self.stamps.generation(self.adjacency.n, max_hops)
        self.visit, self.base = visit, base
        visit[self.sources] = base
        frontier = _unique(self.near)
        frontier = frontier[visit[frontier] != base]
        visit[frontier] = base + 1
        for hop in range(3, max_hops + 1):
            fresh = self.adjacency.neighbour_mask(frontier) & (visit[: self.adjacency.n] < base)
            frontier = np.flatnonzero(fresh).astype(np.int32)
            visit[frontier] = base + hop - 1
            members, experts = self._links_of_level(frontier, fresh)
            unvisited = visit[experts] < base
            members, experts = members[unvisited], experts[unvisited]
            experts, first, _ = _distinct(experts)
            members = members[first]
            keep = ~_contains(self.excluded, experts)
            level = _Candidates(
                expert=experts[keep],
                hops=np.full(np.count_nonzero(keep), hop, dtype=np.int8),
                mutual=np.zeros(np.count_nonzero(keep), dtype=np.int64),
                source=np.full(np.count_nonzero(keep), -1, dtype=np.int32),
                middle=members[keep],
            )
            yield level
            wanted -= level.size
            if wanted <= 0 or not frontier.size:
                return

    def _links_of_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(entries, experts)``: the experts linked to ``rows[entries[i]]``, any skill, once."""
        entry_parts: list[np.ndarray] = []
        expert_parts: list[np.ndarray] = []
        for keys in self.links:
            starts = np.searchsorted(keys, rows.astype(np.int64) << 32)
            stops = np.searchsorted(keys, (rows.astype(np.int64) + 1) << 32)
            counts = stops - starts
            entry_parts.append(np.repeat(np.arange(rows.size), counts))
            expert_parts.append(keys[_ranges(starts, counts)] & _LOW32)
        entries, experts = np.concatenate(entry_parts), np.concatenate(expert_parts)
        if len(self.links) > 1:
            _, first, _ = _distinct(_link_keys(entries, experts))
            entries, experts = entries[first], experts[first]
        return entries, experts.astype(np.int32)

    def _links_of_level(self, level: np.ndarray, in_level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(members, experts)`` linked to members of a level, looked up per row when the level
        is small and by one pass over the keys when it is large."""
        if level.size * 16 < sum(keys.size for keys in self.links):
            entries, experts = self._links_of_rows(level)
            return level[entries], experts
        member_parts: list[np.ndarray] = []
        expert_parts: list[np.ndarray] = []
        for keys in self.links:
            owner = (keys >> 32).astype(np.int32)
            hit = in_level[owner]
            member_parts.append(owner[hit])
            expert_parts.append((keys[hit] & _LOW32).astype(np.int32))
        return np.concatenate(member_parts), np.concatenate(expert_parts)

    def _paths(self, best: _Candidates) -> list[tuple[int, ...]]:
        paths: list[tuple[int, ...]] = []
        for expert, hops, source, middle in zip(
            best.expert.tolist(),
            best.hops.tolist(),
            best.source.tolist(),
            best.middle.tolist(),
            strict=True,
        ):
            if hops == 1:
                paths.append((source, expert))
            elif hops == 2:
                paths.append((source, middle, expert))
            else:
                paths.append((*self._walk_back(middle, hops - 1), expert))
        return paths

    def _walk_back(self, member: int, level: int) -> list[int]:
        """A shortest path from a source to ``member``, found through the BFS level stamps."""
        path = [member]
        for previous in range(level - 1, -1, -1):
            neighbours = self.adjacency.neighbours(path[-1])
            path.append(int(neighbours[self.visit[neighbours] == self.base + previous][0]))
        return path[::-1]


@dataclass(frozen=True)
class _Candidates:
    """Parallel arrays describing candidate experts (dense indices)."""

    expert: np.ndarray
    hops: np.ndarray
    mutual: np.ndarray
    source: np.ndarray  # the source the path starts at; -1 until known (hop >= 3)
    middle: np.ndarray  # the member before the expert on the path; -1 for hop 1

    @property
    def size(self) -> int:
        return self.expert.size

    def __getitem__(self, selection) -> _Candidates:
        return _Candidates(*(getattr(self, f.name)[selection] for f in dataclasses.fields(self)))

    @staticmethod
    def concatenate(parts: list[_Candidates]) -> _Candidates:
        return _Candidates(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(_Candidates))
        )

    def best_per_expert(self) -> _Candidates:
        """For each expert, the candidate with the fewest hops, then the most mutual connections."""
        ordered = self[np.lexsort((-self.mutual, self.hops, self.expert))]
        return ordered[_run_starts(ordered.expert)]

    def ranked(self, snapshot: _Snapshot) -> _Candidates:
        ids = snapshot.members.ids[self.expert]
        track = snapshot.track_record[self.expert]
        return self[np.lexsort((ids, -track, -self.mutual, self.hops))]

    def to_reaches(self, snapshot: _Snapshot, paths: list[tuple[int, ...]]) -> list[Reach]:
        """The results as members' ids: every index looked up in one gather, not one by one."""
        ids = snapshot.members.ids
        bounds = list(accumulate((len(path) for path in paths), initial=0))
        on_paths = ids[np.fromiter((i for path in paths for i in path), dtype=np.intp, count=bounds[-1])].tolist()
        return [
            Reach(
                user_id=user_id,
                hops=hops,
                path=tuple(on_paths[bounds[k] : bounds[k + 1]]),
                mutual=mutual,
                track_record=record,
            )
            for k, (user_id, hops, mutual, record) in enumerate(
                zip(
                    ids[self.expert].tolist(),
                    self.hops.tolist(),
                    self.mutual.tolist(),
                    snapshot.track_record[self.expert].tolist(),
                    strict=True,
                )
            )
        ]


class _Stamps(threading.local):
    """Per-thread BFS scratch: one byte per member, ``base + level`` marks a visit this query.

    Each query takes a fresh range of stamp values, so the array is cleared only when the byte
    range runs out rather than before every query.
    """

    def __init__(self) -> None:
        self.visit = np.zeros(0, dtype=np.uint8)
        self.next_base = 1

    def generation(self, n: int, levels: int) -> tuple[np.ndarray, int]:
        if self.visit.size < n:
            self.visit = np.zeros(n, dtype=np.uint8)
            self.next_base = 1
        if self.next_base + levels > 256:
            self.visit.fill(0)
            self.next_base = 1
        base = self.next_base
        self.next_base += levels
        return self.visit, base


def _as_ids(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).ravel()


def _link_keys(members: np.ndarray, experts: np.ndarray) -> np.ndarray:
    return (np.asarray(members, dtype=np.int64) << 32) | np.asarray(experts, dtype=np.int64)


def _insert_keys(keys: np.ndarray, new: np.ndarray) -> np.ndarray:
    new = np.sort(new)
    return np.insert(keys, np.searchsorted(keys, new), new)


def _delete_keys(keys: np.ndarray, old: np.ndarray) -> np.ndarray:
    return np.delete(keys, np.searchsorted(keys, old))


def _contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    if not sorted_values.size:
        return np.zeros(np.shape(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_values, values), sorted_values.size - 1)
    return sorted_values[pos] == values


def _run_starts(ordered: np.ndarray) -> np.ndarray:
    """Mask of the positions where a run of equal values starts in a sorted array."""
    starts = np.ones(ordered.size, dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    return starts


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct values, the position of each one's first occurrence, and its count."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(_run_starts(ordered))
    return ordered[starts], order[starts], np.diff(np.append(starts, values.size))


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(starts[i], starts[i] + counts[i])`` without a Python loop."""
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()))


def _is_compact(low: int, high: int, count: int) -> bool:
    """Whether a table over the id range costs about as much as the ids themselves."""
    return high - low <= 4 * count + 1024


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values; a bitmap when the range is compact (numpy's unique hashes, slowly)."""
    if not values.size:
        return values
    low, high = int(values.min()), int(values.max())
    if _is_compact(low, high, values.size):
        present = np.zeros(high - low + 1, dtype=bool)
        present[values - low] = True
        return (np.flatnonzero(present) + low).astype(values.dtype)
    ordered = np.sort(values)
    return ordered[_run_starts(ordered)]


def _indexer(sorted_ids: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Maps ids (all present in ``sorted_ids``) to positions; a lookup table when ids are compact."""
    if not sorted_ids.size:
        return lambda values: np.zeros(0, dtype=np.int32)
    low, high = int(sorted_ids[0]), int(sorted_ids[-1])
    if not _is_compact(low, high, sorted_ids.size):
        return lambda values: np.searchsorted(sorted_ids, values).astype(np.int32)
    table = np.zeros(high - low + 1, dtype=np.int32)
    table[sorted_ids - low] = np.arange(sorted_ids.size, dtype=np.int32)
    return lambda values: table[values - low]


def _fetch_grouped(connection, table: str, key: str, value: str, where: str = ""):
    """``(keys, counts, values)`` of ``table`` grouped by ``key``, values concatenated by key."""
    if connection.dialect.name == "sqlite":
        aggregate = f"group_concat({value}, ',')"
    else:
        aggregate = f"string_agg(CAST({value} AS TEXT), ',')"
    result = connection.execute(text(f"SELECT {key}, count(*), {aggregate} FROM {table} {where} GROUP BY {key}"))
    keys, counts, values = [], [], []
    for rows in result.partitions(20_000):
        batch_keys, batch_counts, batch_values = zip(*rows, strict=True)
        keys.append(np.array(batch_keys, dtype=np.int64))
        counts.append(np.array(batch_counts, dtype=np.int64))
        values.append(np.fromstring(",".join(batch_values), dtype=np.int64, sep=","))
    if not keys:
        return (np.zeros(0, dtype=np.int64),) * 3
    return np.concatenate(keys), np.concatenate(counts), np.concatenate(values)
