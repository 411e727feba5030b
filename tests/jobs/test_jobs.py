"""The outbox: jobs are performed once, retried with backoff, parked after too many failures,
and taken over from a worker that died holding them."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.db import utcnow
from marketplace.jobs import service as jobs
from marketplace.jobs.models import Job, JobStatus


@pytest.fixture
def calls():
    """A fake external system: records what it was asked, keyed by idempotency key."""
    record: list[str] = []
    outcomes: list[Exception | None] = []

    def perform(session, job):
        outcome = outcomes.pop(0) if outcomes else None
        record.append(job.idempotency_key)
        if outcome is not None:
            raise outcome
        return {"sent": job.payload["n"]}

    jobs.register_handler("test.call", perform)
    yield record, outcomes
    jobs.HANDLERS.pop("test.call", None)


def test_enqueue_is_idempotent_on_its_key(app, session):
    first = jobs.enqueue(session, "test.call", "call:1", {"n": 1})
    again = jobs.enqueue(session, "test.call", "call:1", {"n": 1})
    session.commit()
    assert first == again
    assert len(session.scalars(select(Job)).all()) == 1


def test_a_job_is_performed_once_and_its_result_kept(app, session, calls):
    record, _ = calls
    jobs.enqueue(session, "test.call", "call:1", {"n": 7})
    session.commit()
    report = jobs.work_once(session, "w1")
    assert (report.performed, report.failed) == (1, 0)
    assert jobs.work_once(session, "w1").performed == 0
    job = session.scalars(select(Job)).one()
    assert (job.status, job.result, job.attempts, record) == (JobStatus.DONE, {"sent": 7}, 1, ["call:1"])


def test_failures_back_off_exponentially_then_park_with_the_error(app, session, calls):
    _, outcomes = calls
    outcomes.extend([jobs.RetryLater("503 from the provider")] * 3)
    jobs.enqueue(session, "test.call", "call:1", {"n": 1}, max_attempts=3)
    session.commit()
    # Each retry's wait is counted from the moment the failure was recorded, somewhere between
    # the call's start and its end: the wait lies between the two, however long the call took.
    waits = []
    for _ in range(3):
        before = utcnow()
        jobs.work_once(session, "w1")
        after = utcnow()
        job = session.scalars(select(Job)).one()
        if job.status == JobStatus.PENDING:
            waits.append((job.run_after - after, job.run_after - before))
            job.run_after = utcnow()  # Let time pass.
            session.commit()
    assert len(waits) == 2
    for (shortest, longest), expected in zip(waits, [10, 20], strict=True):
        assert shortest <= timedelta(seconds=expected) <= longest
    job = session.scalars(select(Job)).one()
    assert job.status == JobStatus.PARKED and "503 from the provider" in job.last_error
    assert jobs.parked_jobs(session) == [job]

    jobs.retry_parked(session, job.id)
    session.commit()
    assert jobs.work_once(session, "w1").performed == 1


def test_a_permanent_failure_parks_at_once(app, session, calls):
    _, outcomes = calls
    outcomes.append(jobs.PermanentFailure("the provider rejected the request"))
    jobs.enqueue(session, "test.call", "call:1", {"n": 1})
    session.commit()
    jobs.work_once(session, "w1")
    assert session.scalars(select(Job)).one().status == JobStatus.PARKED


def test_an_unknown_outcome_is_retried_with_the_same_key_and_looked_up_after_a_day(app, session, calls):
    record, outcomes = calls
    outcomes.append(jobs.OutcomeUnknown("timed out"))
    jobs.enqueue(session, "test.call", "call:1", {"n": 1})
    session.commit()
    jobs.work_once(session, "w1")
    job = session.scalars(select(Job)).one()
    assert job.status == JobStatus.PENDING and job.first_unknown_at is not None
    assert not jobs.needs_lookup(job)
    assert jobs.needs_lookup(job, now=job.first_unknown_at + timedelta(hours=24))
    job.run_after = utcnow()
    session.commit()
    jobs.work_once(session, "w1")
    assert record == ["call:1", "call:1"]
    assert session.scalars(select(Job)).one().status == JobStatus.DONE


def test_a_job_whose_worker_died_is_taken_over_when_its_lease_expires(app, session, calls):
    record, _ = calls
    jobs.enqueue(session, "test.call", "call:1", {"n": 1})
    session.commit()
    claimed = jobs.claim_next(session, "dead-worker")
    assert claimed is not None and claimed.status == JobStatus.RUNNING
    assert jobs.claim_next(session, "w2") is None  # Still leased.
    later = utcnow() + jobs.LEASE + timedelta(seconds=1)
    taken = jobs.claim_next(session, "w2", now=later)
    assert taken.id == claimed.id and taken.attempts == 2 and taken.locked_by == "w2"
    jobs.run_job(session, taken)
    assert record == ["call:1"]


def test_a_periodic_job_failing_does_not_stop_the_others(app, session):
    ran = []

    def broken(session):
        raise RuntimeError("boom")

    def fine(session):
        ran.append(True)
        return 1

    jobs.register_periodic("test.broken", broken)
    jobs.register_periodic("test.fine", fine)

    try:
        outcomes = jobs.run_periodic(session)
    finally:
        jobs.PERIODIC.pop("test.broken")
        jobs.PERIODIC.pop("test.fine")
    assert isinstance(outcomes["test.broken"], RuntimeError) and outcomes["test.fine"] == 1 and ran == [True]


def test_a_handler_may_name_its_own_wait_before_the_retry(app, session, calls):
    """``RetryLater(after=...)`` (outbound webhooks keep their own schedule) replaces the backoff."""
    _, outcomes = calls
    outcomes.append(jobs.RetryLater("receiver down", after=timedelta(minutes=32)))
    jobs.enqueue(session, "test.call", "call:1", {"n": 1})
    session.commit()
    before = utcnow()
    jobs.work_once(session, "w1")
    job = session.scalars(select(Job)).one()
    assert job.status == JobStatus.PENDING
    assert round((job.run_after - before).total_seconds() / 60) == 32
