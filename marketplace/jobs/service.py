"""Enqueueing, claiming and running outbox jobs with retries, backoff and parking.

A job runs in three steps, each its own transaction: claim (lease the row), perform (the handler
makes the external call with the job's idempotency key, then records the outcome together with
marking the job done), or fail (schedule a retry with exponential backoff, or park it for admins
after ``max_attempts``). A worker that dies mid-job leaves a lease that expires; the next worker
runs the job again with the same idempotency key, so the external effect happens once.
"""

import functools
import logging
import os
import socket
import traceback
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from marketplace.db import Prepared, connection_of, utcnow
from marketplace.jobs.models import Job, JobStatus

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 3600
UNKNOWN_LOOKUP_AFTER = timedelta(hours=24)


class RetryLater(Exception):
    """The attempt failed in a way worth retrying (a 5xx, a rate limit, a refused connection).

    ``after``: when the handler keeps its own schedule (outbound webhooks), the wait before the
    next attempt; otherwise the outbox's exponential ``backoff``."""

    def __init__(self, message: str = "", *, after: timedelta | None = None):
        super().__init__(message)
        self.after = after


class OutcomeUnknown(RetryLater):
    """The call may or may not have happened (a timeout, a dropped response): retry with the same key."""


class PermanentFailure(Exception):
    """Retrying cannot help (a rejected request): park the job for an admin at once."""


Handler = Callable[[Session, Job], dict | None]
HANDLERS: dict[str, Handler] = {}


def register_handler(kind: str, function: Handler) -> None:
    """Name the function that performs jobs of ``kind``; it returns the result to store.

    Each package that owns job kinds registers them in its ``init_app`` (docs/architecture.md).
    """
    HANDLERS[kind] = function


_JOB_COLUMNS: tuple[str, ...]
_JOB_COLUMNS = ("kind", "idempotency_key", "payload", "status", "attempts", "max_attempts", "run_after")
_JOB_COLUMNS += ("last_error", "created_at")


@functools.cache
def _insert_job(dialect: str) -> Prepared:
    """``INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING id``: one statement, on the
    hot paths that enqueue (every accept, every notification)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return Prepared(
        insert(cast(Table, Job.__table__))
        .values({name: bindparam(name) for name in _JOB_COLUMNS})
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Job.__table__.c.id)
    )


def enqueue(
    session: Session,
    kind: str,
    idempotency_key: str,
    payload: dict[str, Any] | None = None,
    *,
    run_after: datetime | None = None,
    max_attempts: int = 8,
) -> int:
    """Add a job in the caller's transaction; returns its id. The same key is the same job: a
    second enqueue returns the first one's id and changes nothing."""
    connection = connection_of(session)
    now = utcnow()
    inserted = _insert_job(connection.dialect.name).fetchall(
        connection,
        {
            "kind": kind,
            "idempotency_key": idempotency_key,
            "payload": payload or {},
            "status": JobStatus.PENDING,
            "attempts": 0,
            "max_attempts": max_attempts,
            "run_after": run_after or now,
            "last_error": "",
            "created_at": now,
        },
    )
    if inserted:
        return int(inserted[0][0])
    return session.execute(select(Job.id).where(Job.idempotency_key == idempotency_key)).scalar_one()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_queries(now: datetime, kinds: Collection[str] | None = None, *, postgres: bool = False) -> list[Select]:
    """What ``claim_next`` asks, in order: a job whose lease expired, then the pending job due first."""
    queries = []
    for due in (
        (Job.status == JobStatus.RUNNING) & (Job.locked_until < now),
        (Job.status == JobStatus.PENDING) & (Job.run_after <= now),
    ):
        query = select(Job).where(due).order_by(Job.run_after, Job.id).limit(1)
        if kinds is not None:
            query = query.where(Job.kind.in_(kinds))
        queries.append(query.with_for_update(skip_locked=True) if postgres else query)
    return queries


def claim_next(
    session: Session,
    worker: str,
    now: datetime | None = None,
    kinds: Collection[str] | None = None,
    lease: timedelta = LEASE,
) -> Job | None:
    """Lease the next due job, committing the lease at once: first one whose lease expired (its
    worker died), else the pending job due first.

    Each is its own query on ``ix_jobs_due`` (status, run_after): one query with both conditions
    joined by OR cannot read that index in order, so it scanned and sorted the whole backlog on
    every claim (docs/deployment.md, "Workers"). PostgreSQL skips rows other workers hold
    (``FOR UPDATE SKIP LOCKED``); SQLite serialises writers, so its ``BEGIN IMMEDIATE`` already
    makes claiming one-at-a-time.
    """
    now = now or utcnow()
    job = None
    for query in claim_queries(now, kinds, postgres=session.get_bind().dialect.name == "postgresql"):
        job = session.scalar(query)
        if job is not None:
            break
    if job is None:
        session.rollback()
        return None
    job.status, job.locked_by, job.locked_until = JobStatus.RUNNING, worker, now + lease
    job.attempts += 1
    session.commit()
    return job


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS))


def run_job(session: Session, job: Job, now: datetime | None = None) -> JobStatus:
    """Perform one claimed job and record its outcome; returns the job's new status."""
    perform = HANDLERS.get(job.kind)
    try:
        if perform is None:
            raise PermanentFailure(f"no handler for job kind {job.kind!r}")
        result = perform(session, job)
    except Exception as error:  # noqa: BLE001 - every failure is recorded on the job
        session.rollback()
        return _record_failure(session, job.id, error, now or utcnow())
    job.status, job.result, job.completed_at = JobStatus.DONE, result, utcnow()
    job.locked_by = job.locked_until = None
    job.last_error = ""
    session.commit()
    return JobStatus.DONE


def _record_failure(session: Session, job_id: int, error: Exception, now: datetime) -> JobStatus:
    """Retry with exponential backoff, or park the job for an admin when retrying cannot help."""
    job = session.get_one(Job, job_id, populate_existing=True)
    if not isinstance(error, RetryLater | PermanentFailure):
        log.error("job %s (%s) failed unexpectedly", job.id, job.kind, exc_info=error)
    if isinstance(error, OutcomeUnknown) and job.first_unknown_at is None:
        job.first_unknown_at = now
    job.last_error = "".join(traceback.format_exception_only(error)).strip()[:4000]
    job.locked_by = job.locked_until = None
    if isinstance(error, PermanentFailure) or job.attempts >= job.max_attempts:
        job.status = JobStatus.PARKED
        log.error("job %s (%s) parked after %s attempt(s): %s", job.id, job.kind, job.attempts, job.last_error)
    else:
        job.status = JobStatus.PENDING
        wait = error.after if isinstance(error, RetryLater) and error.after is not None else None
        job.run_after = now + (wait if wait is not None else backoff(job.attempts))
    session.commit()
    return job.status


def needs_lookup(job: Job, now: datetime | None = None) -> bool:
    """After a day of unknown outcomes, a handler must look the effect up before sending again."""
    return job.first_unknown_at is not None and (now or utcnow()) - job.first_unknown_at >= UNKNOWN_LOOKUP_AFTER


Periodic = Callable[[Session], object]
PERIODIC: dict[str, Periodic] = {}


def register_periodic(name: str, function: Periodic) -> None:
    """Add a time-based job (expire problems, release held shares) to every worker round."""
    PERIODIC[name] = function


def run_periodic(session: Session) -> dict[str, object]:
    """Run each time-based job in its own transaction; one failing does not stop the others."""
    outcomes = {}
    for name, function in PERIODIC.items():
        try:
            outcomes[name] = function(session)
            session.commit()
        except Exception as error:  # noqa: BLE001 - logged, retried next round
            session.rollback()
            log.exception("periodic job %s failed", name)
            outcomes[name] = error
    return outcomes


@dataclass
class RoundReport:
    performed: int = 0
    failed: int = 0


def work_once(
    session: Session,
    worker: str | None = None,
    limit: int = 100,
    kinds: Collection[str] | None = None,
    lease: timedelta = LEASE,
) -> RoundReport:
    """Claim and perform due jobs (of ``kinds``, or all) until none is left or ``limit`` is reached."""
    worker = worker or worker_name()
    report = RoundReport()
    for _ in range(limit):
        job = claim_next(session, worker, kinds=kinds, lease=lease)
        if job is None:
            break
        status = run_job(session, job)
        report.performed += status == JobStatus.DONE
        report.failed += status != JobStatus.DONE
    return report


def retry_parked(session: Session, job_id: int) -> Job | None:
    """An admin sends a parked job round again (after fixing what made it fail); None if there is no such job."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.PARKED)
        .values(status=JobStatus.PENDING, attempts=0, run_after=utcnow(), last_error="")
        .execution_options(synchronize_session=False)
    )
    job = session.get(Job, job_id, populate_existing=True)
    session.flush()
    return job


def parked_jobs(session: Session) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.status == JobStatus.PARKED).order_by(Job.id)))
