"""Claim a key, save the answer with the action, replay it, prune old keys.

The flow for one request carrying a key (``marketplace.api.idempotency`` drives it):

1. ``claim``: a new key is inserted and committed at once, so a second request with the same key
   sees it in progress (409 ``idempotency_key_in_use``) instead of acting twice. A known key with
   another request fingerprint is 409 ``idempotency_key_reused``; a known key with an answer
   returns that answer to replay.
2. The action runs in the request's unit of work; ``save`` puts the answer in that same
   transaction, so both commit together or neither does. A crash before the commit leaves the
   key claimed without an answer: once its lease (``LEASE``) has passed, a retry takes it over
   and acts again, which is right, since nothing of the first attempt was kept.
3. An action refused with a business error is rolled back, then ``save_refusal`` records the
   refusal on its own; any other failure ``release``-s the key so the client can retry with it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.db import utcnow
from marketplace.errors import Conflict
from marketplace.idempotency.models import IdempotencyKey

RETENTION = timedelta(hours=24)
# How long a claimed key without an answer counts as in progress; past that its request is taken
# to have died (its transaction rolled back) and a retry may act again.
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Saved:
    """The answer a key already has, to send again."""

    status: int
    body: str


def claim(session: Session, user_id: int, key: str, request: str, now: datetime | None = None) -> int | Saved:
    """The id of the claimed key (committed), or the answer it already has to replay."""
    now = now or utcnow()
    row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
    if row is not None and row.created_at <= now - RETENTION:
        session.delete(row)  # expired: the key is free again
        session.flush()
        row = None
    if row is None:
        row = IdempotencyKey(user_id=user_id, key=key, request=request, created_at=now, locked_until=now + LEASE)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise _in_use() from None
        return row.id
    if row.request != request:
        raise Conflict(
            "This Idempotency-Key was used for another request; use a new key for a new request.",
            code="idempotency_key_reused",
        )
    if row.status is not None and row.body is not None:
        return Saved(row.status, row.body)
    taken_over = session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == row.id, IdempotencyKey.status.is_(None), IdempotencyKey.locked_until <= now)
        .values(locked_until=now + LEASE)
    )
    if cast(CursorResult, taken_over).rowcount != 1:
        session.rollback()
        raise _in_use()
    session.commit()
    return row.id


def _in_use() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still in progress; retry once it has finished.",
        code="idempotency_key_in_use",
    )


def save(session: Session, key_id: int, status: int, body: str) -> None:
    """Keep the answer in the caller's transaction: it commits with the action's effects."""
    session.execute(update(IdempotencyKey).where(IdempotencyKey.id == key_id).values(status=status, body=body))


def save_refusal(session: Session, key_id: int, status: int, body: str) -> None:
    """Keep a refusal after the action was rolled back (there is nothing else to commit with)."""
    save(session, key_id, status, body)
    session.commit()


def release(session: Session, key_id: int) -> None:
    """Forget a claim whose request failed without an answer worth keeping."""
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == key_id, IdempotencyKey.status.is_(None)))
    session.commit()


def prune(session: Session, now: datetime | None = None) -> int:
    """Drop keys older than ``RETENTION`` (a periodic job): after a day a key may be reused."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at <= (now or utcnow()) - RETENTION))
    return cast(CursorResult, result).rowcount
