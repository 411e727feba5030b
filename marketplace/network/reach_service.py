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

from sqlalchemy import Integer, and_, bindparam, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User, user_skills
from marketplace.db import Prepared, Read, connection_of, in_ids
from marketplace.network.models import ChangeKind, Connection, NetworkChange
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
_PEOPLE_AS_SEEN = Prepared(
    select(User.id, User.name, User.show_name_on_chains, Connection.peer_id.is_not(None))
    .outerjoin(
        Connection,
        and_(Connection.user_id == bindparam("viewer_id", type_=Integer), Connection.peer_id == User.id),
    )
    .where(in_ids(User.id, "user_ids"))
)


class AcceptedCount(Protocol):
    @property
    def accepted(self) -> int: ...


# Each introducer's record (the index ranks by introductions accepted); all of them for None.
# The referrals domain keeps the records; whoever builds the graph passes its function in.
TrackRecords = Callable[[Session, list[int] | None], Mapping[int, AcceptedCount]]


def _changes_from(last: tuple | None) -> Read:
    """The log's rows from the last one applied (``last``) on, or all of it before any."""
    return _CHANGES_FROM.read(from_id=last[0] if last else 0)


class ReachGraph:
    """One process's reach index over one database.

    Built from the tables on first use; before every query it applies the ``network_changes``
    rows newer than the last one it applied (one indexed range read, usually empty). The log's
    ids follow commit order (see ``changes.py``), so after catching up the index answers exactly
    as the database would at that moment, whichever process made the changes. When the log no
    longer holds the last applied row (pruned, or the database was restored) it rebuilds.
    """

    def __init__(self, track_records: TrackRecords, **options: float) -> None:
        self._track_records = track_records
        self._options = options
        self._lock = threading.Lock()
        self._index: ReachIndex | None = None
        self._last_change: tuple | None = None  # the whole row: ids alone may be reused after a restore

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


@dataclass(frozen=True)
class Person:
    """A member as the viewer may see them: no id and no name when they keep their name private."""

    user_id: int | None
    name: str


def people_as_seen(session: Session, viewer: User, found: list[Reach], always_named: set[int]) -> dict[int, Person]:
    """Names along the paths: the viewer's own connections are named, others as they allow."""
    ids = {user_id for reach in found for user_id in reach.path}
    if not ids:
        return {}
    rows = _PEOPLE_AS_SEEN.fetchall(connection_of(session), {"viewer_id": viewer.id, "user_ids": sorted(ids)})
    close = always_named | {viewer.id}
    people = {user_id: Person(None, ANONYMOUS) for user_id in ids}
    for user_id, name, shown, connected in rows:
        if shown or connected or user_id in close:
            people[user_id] = Person(user_id, name)
    return people


def degree_counts(session: Session, graph: ReachGraph, user: User) -> tuple[int, ...]:
    """How many members are exactly 1, 2 and 3 hops away along confirmed connections."""
    return graph.index(session).degree_counts(user.id, MAX_HOPS)
