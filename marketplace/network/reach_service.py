"""The reach index as the app serves it: a process-local ``ReachIndex`` kept in step with SQL,
the names along its paths with the privacy of docs/network.md applied, and degree counts. The
search for a problem's experts, which reads problems and chains too, is
``marketplace.workflows.reach``.
"""

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User, user_skills
from marketplace.db import Prepared, Read, connection_of, in_ids, request_reads_only
from marketplace.network.models import ChangeKind, NetworkChange
from marketplace.network.reach import Reach, ReachIndex

MAX_HOPS = 3
ANONYMOUS = "a member"
_CHANGES = select(NetworkChange.id, NetworkChange.kind, NetworkChange.a, NetworkChange.b, NetworkChange.created_at)
# Built once: every search catches up first, and a page that shows names along paths reads them
# (building these statements cost more than running them; docs/performance.md). The log is read
# on the driver's cursor, the newest row and the rows after it alike, so that a row read either
# way compares equal.
_NEWEST_CHANGE = Prepared(_CHANGES.order_by(NetworkChange.id.desc()).limit(1))
_CHANGES_FROM = Prepared(
    _CHANGES.where(NetworkChange.id >= bindparam("from_id", type_=Integer)).order_by(NetworkChange.id)
)
_APPEARANCES = Prepared(select(User.id, User.name, User.show_name_on_chains).where(in_ids(User.id, "user_ids")))
# How many members' names a process keeps for the paths it shows (about 200 bytes each): enough
# for the paths its members see, bounded however large the network.
APPEARANCES_KEPT = 20_000


class AcceptedCount(Protocol):
    @property
    def accepted(self) -> int: ...


# Each introducer's record (the index ranks by introductions accepted); all of them for None.
# The referrals domain keeps the records; whoever builds the graph passes its function in.
TrackRecords = Callable[[Session, list[int] | None], Mapping[int, AcceptedCount]]


def _changes_from(last: tuple | None) -> Read:
    """The log's rows from the last one applied (``last``) on, or all of it before any."""
    return _CHANGES_FROM.read(from_id=last[0] if last else 0)


@dataclass(frozen=True)
class Person:
    """A member as the viewer may see them: no id and no name when they keep their name private."""

    user_id: int | None
    name: str


_UNNAMED = Person(None, ANONYMOUS)


class ReachGraph:
    """One process's reach index over one database.

    Built from the tables on first use; before every query it applies the ``network_changes``
    rows newer than the last one it applied (one indexed range read, usually empty). The log's
    ids follow commit order (see ``changes.py``), so after catching up the index answers exactly
    as the database would at that moment, whichever process made the changes. When the log no
    longer holds the last applied row (pruned, or the database was restored) it rebuilds.

    It also keeps the names of the members its paths showed last (``people_as_seen``), which the
    same log keeps current: a member's change of name, or of whether they show it, is an
    ``appearance`` row, and applying it forgets what was kept of them.
    """

    def __init__(self, track_records: TrackRecords, **options: float) -> None:
        self._track_records = track_records
        self._options = options
        self._lock = threading.Lock()
        self._index: ReachIndex | None = None
        self._last_change: tuple | None = None  # the whole row: ids alone may be reused after a restore
        # By member: their name and whether they show it on chains, as of ``_last_change`` or
        # later; emptied when full, as the index's answers are.
        self._appearances: dict[int, tuple[str, bool]] = {}

    def index(self, session: Session) -> ReachIndex:
        """The index, caught up with every change committed before this call."""
        with self._lock:
            if self._index is None or not self._catch_up(session):
                return self._build(session)
            return self._index

    def catch_up_reads(self) -> list[Read]:
        """The statement the next search runs first (none before the index is built), to be
        read ahead with a page's others. Read without the lock: if another thread catches up
        meanwhile, the search asks from where it is then, and what was read ahead goes unused."""
        return [] if self._index is None else [_changes_from(self._last_change)]

    def _build(self, session: Session) -> ReachIndex:
        # The log position first: changes committed while the tables are read are applied again
        # later, which is harmless because every change states a new value rather than a delta.
        self._last_change = _NEWEST_CHANGE.first(connection_of(session), {})
        self._appearances.clear()
        accepted = {user_id: record.accepted for user_id, record in self._track_records(session, None).items()}
        self._index = ReachIndex.from_db(session.connection(), accepted, **self._options)
        return self._index

    def _catch_up(self, session: Session) -> bool:
        """Apply the changes after the last applied one; False when the log does not continue it."""
        if self._index is None:
            return False
        last = self._last_change
        rows = _changes_from(last).all(connection_of(session))
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
            elif change.kind == ChangeKind.APPEARANCE:
                self._appearances.pop(change.a, None)
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
        for user_id, record in self._track_records(session, sorted(records_changed)).items():
            self._index.set_track_record(user_id, record.accepted)
        if rows:
            self._last_change = tuple(rows[-1])
        return True

    def people_as_seen(
        self, session: Session, viewer: User, found: list[Reach], always_named: set[int]
    ) -> dict[int, Person]:
        """Names along the paths of ``found``, which the caller searched in ``index(session)``:
        the viewer's own connections and ``always_named`` are named, others as they allow.

        The names are the ones this process keeps; only those it does not keep are read, in one
        statement. What was read is kept only in a request that only reads (one that writes may
        have read its own rename, which could yet roll back), and only if no change was applied
        meanwhile (a read that started before a rename was applied could otherwise put the old
        name back after the change had made the process forget it).
        """
        ids = {user_id for reach in found for user_id in reach.path}
        if not ids:
            return {}
        viewer_id = viewer.id
        appearances = self._appearances
        with self._lock:
            kept = {user_id: appearances[user_id] for user_id in ids if user_id in appearances}
            read_after = self._last_change
            connected = _connections_on_paths(self._index, viewer_id, found)
        missing = ids - kept.keys()
        if missing:
            rows = _APPEARANCES.fetchall(connection_of(session), {"user_ids": sorted(missing)})
            read = {user_id: (name, shown) for user_id, name, shown in rows}
            if request_reads_only.get():
                with self._lock:
                    if self._last_change == read_after:
                        if len(appearances) + len(read) > APPEARANCES_KEPT:
                            appearances.clear()
                        appearances.update(read)
            kept.update(read)
        close = always_named | connected
        close.add(viewer_id)
        people = dict.fromkeys(ids, _UNNAMED)
        for user_id, (name, shown) in kept.items():
            if shown or user_id in close:
                people[user_id] = Person(user_id, name)
        return people


def _connections_on_paths(index: ReachIndex | None, viewer_id: int, found: list[Reach]) -> set[int]:
    """The viewer's own connections among the members on the paths of ``found``.

    The viewer is one of the search's sources and every path is a shortest one from them, so a
    member one hop from the viewer can only stand right after a path's source: after the viewer
    they are the viewer's connection; after a colleague (a company's search) the index is asked.
    """
    connected = set()
    for reach in found:
        if len(reach.path) > 1:
            source, first = reach.path[0], reach.path[1]
            if source == viewer_id or (index is not None and index.connected(viewer_id, first)):
                connected.add(first)
    return connected


def degree_counts(session: Session, graph: ReachGraph, user: User) -> tuple[int, ...]:
    """How many members are exactly 1, 2 and 3 hops away along confirmed connections."""
    return graph.index(session).degree_counts(user.id, MAX_HOPS)
