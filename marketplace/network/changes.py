"""The network change log: how every process's in-memory reach index follows the database.

SQL is the source of truth. Each change to connections, skills, track records or how a member
appears (their name, or whether they show it) appends a ``network_changes`` row in the same
transaction as the change, and each process applies the rows newer than the last one it applied
before it answers a query (``reach_service.ReachGraph``).

That works only if a process never sees a change before an older one that commits later. Writers
therefore serialise on one lock for the rest of their transaction: on SQLite every writer already
holds the database's write lock (``BEGIN IMMEDIATE``); on PostgreSQL they take a transaction-level
advisory lock before reading what they will change. So ids are handed out in commit order, and a
reader that sees id n has seen every committed change below n. Connection and profile changes
are rare human actions, so the serialisation costs nothing noticeable.
"""

from datetime import timedelta
from typing import cast

from sqlalchemy import CursorResult, delete, func, select, text
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.db import utcnow
from marketplace.jobs.models import Job
from marketplace.network.models import ChangeKind, NetworkChange

RETENTION = timedelta(days=2)
TRACK_RECORD_JOB = "network.track_record"
_ADVISORY_LOCK_KEY = 0x6E6574776F726B  # "network"


def lock_network(session: Session) -> None:
    """Serialise this transaction with every other writer of the network (see the module doc)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})


def record_change(session: Session, kind: ChangeKind, a: int, b: int | None = None) -> None:
    """Append a change in the caller's transaction."""
    lock_network(session)
    session.add(NetworkChange(kind=kind, a=a, b=b))
    session.flush()


def skills_changed(user: User, *, session: Session, **_: object) -> None:
    """Receiver of ``member_skills_changed``: the reach index re-reads that member's skills."""
    record_change(session, ChangeKind.SKILLS, user.id)


def appearance_changed(user: User, *, session: Session, **_: object) -> None:
    """Receiver of ``member_appearance_changed``: every process reads that member's name again."""
    record_change(session, ChangeKind.APPEARANCE, user.id)


def track_record_changed(session: Session, job: Job) -> dict[str, int]:
    """The ``network.track_record`` job: an accepted introduction changed its introducer's track
    record, which ranks reach results. A job, not part of the accept, so that settling money
    never waits for the network's lock."""
    record_change(session, ChangeKind.TRACK_RECORD, job.payload["user_id"])
    return {"user_id": job.payload["user_id"]}


def prune_changes(session: Session) -> int:
    """Drop changes older than ``RETENTION``, always keeping the newest.

    A process whose last applied change is gone rebuilds its index instead of catching up.
    """
    newest = session.scalar(select(func.max(NetworkChange.id)))
    if newest is None:
        return 0
    result = session.execute(
        delete(NetworkChange).where(NetworkChange.created_at < utcnow() - RETENTION, NetworkChange.id < newest)
    )
    return cast(CursorResult, result).rowcount
