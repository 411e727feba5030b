"""A company's webhook endpoints, the messages for them, and their delivery by the worker
(docs/webhooks.md).

Only a company's owner and admins see or change its endpoints (``require_manager``); an endpoint
or delivery of another company is a 404. Messages are written by the receivers in the
transaction of their event, each with a ``webhook.deliver`` outbox job; the job reads what to
send, ends its transaction, sends, and records the attempt in a new one: nothing is sent while
a transaction is open. A success is recorded in the same commit that marks the job done, so a
delivered message is never sent again by its job; a worker killed between the receiver's answer
and that commit leaves the job to be taken over, which sends the same ``webhook-id`` again (the
receiver de-duplicates on it: at least once, with idempotent ids).
"""

import json
import secrets
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session, selectinload

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.accounts.service import require_manager
from marketplace.config import current_settings
from marketplace.db import utcnow
from marketplace.errors import Conflict, NotFound, ValidationError
from marketplace.jobs.models import Job
from marketplace.jobs.service import RetryLater, enqueue
from marketplace.webhooks import signing, transport
from marketplace.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENT_TYPES: dict[str, str] = {
    "problem.funded": "A problem's bounty was paid and the problem is open",
    "referral.claimed": "Someone took a place in a chain for one of your problems",
    "introduction.proposed": "A candidate agreed to be introduced: the introduction awaits your review",
    "introduction.accepted": "An introduction was accepted and the bounty settled along its chain",
    "shares.released": "The guarantee period held: the chain's shares were released",
    "problem.cancelled": "One of your managers cancelled a problem; a paid bounty goes back to you",
    "problem.expired": "A problem expired without a match; its escrow goes back to you",
    "problem.refunded": "A refund for a problem reached your card",
    "dispute.opened": "An accepted introduction was reported as failed, or its payment charged back",
}
PING = "webhook.ping"
DELIVER_JOB = "webhook.deliver"

MAX_ENDPOINTS = 10
# After a rotation the previous secret signs too, for this long.
ROTATION_GRACE = timedelta(hours=24)
# Retries of one message stop this long after its first attempt; an endpoint failing every
# attempt for as long is disabled.
GIVE_UP_AFTER = timedelta(days=3)
DISABLE_AFTER = timedelta(days=3)
FIRST_RETRY = timedelta(seconds=30)
RETRY_GROWTH = 4
LONGEST_WAIT = timedelta(hours=12)
# The delivery log keeps this many of an endpoint's newest messages on its page.
LOG_LENGTH = 50
KEPT_FOR = timedelta(days=30)


def retry_delay(failed_attempts: int) -> timedelta:
    """The wait after the ``failed_attempts``-th failure in a row: 30 s, 2 min, 8 min, 32 min,
    about 2 h, 8.5 h, then every 12 h until ``GIVE_UP_AFTER``."""
    return min(FIRST_RETRY * RETRY_GROWTH ** max(failed_attempts - 1, 0), LONGEST_WAIT)


# Endpoints -------------------------------------------------------------------------------------


def _checked_url(url: str) -> str:
    url = url.strip()
    transport.target_of(url, production=current_settings().production)
    return url


def _checked_event_types(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(f"Unknown event type(s): {', '.join(unknown)}.", code="unknown_event_type")
    if not event_types:
        raise ValidationError("Choose at least one event type.", code="no_event_types")
    return [name for name in EVENT_TYPES if name in event_types]


def endpoints_of(session: Session, actor: User, company_id: int) -> list[WebhookEndpoint]:
    require_manager(session, actor, company_id)
    return list(
        session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.company_id == company_id).order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(session: Session, actor: User, company_id: int, endpoint_id: int) -> WebhookEndpoint:
    require_manager(session, actor, company_id)
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.company_id != company_id:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def create_endpoint(
    session: Session, actor: User, company_id: int, *, url: str, event_types: list[str], description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret, which is shown this once."""
    require_manager(session, actor, company_id)
    existing = session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.company_id == company_id)).all()
    if len(existing) >= MAX_ENDPOINTS:
        raise Conflict(f"A company has at most {MAX_ENDPOINTS} webhook endpoints.", code="too_many_endpoints")
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        company_id=company_id,
        url=_checked_url(url),
        description=description.strip()[:200],
        event_types=_checked_event_types(event_types),
        secret=secret,
        created_by_id=actor.id,
    )
    session.add(endpoint)
    session.flush()
    signals.webhook_endpoint_changed.send(endpoint, session=session, actor=actor, change="created")
    return endpoint, secret


def update_endpoint(
    session: Session,
    actor: User,
    company_id: int,
    endpoint_id: int,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what is given; enabling a disabled endpoint starts its failure count afresh."""
    endpoint = get_endpoint(session, actor, company_id, endpoint_id)
    if url is not None:
        endpoint.url = _checked_url(url)
    if event_types is not None:
        endpoint.event_types = _checked_event_types(event_types)
    if description is not None:
        endpoint.description = description.strip()[:200]
    if enabled is True and not endpoint.enabled:
        endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
    elif enabled is False and endpoint.enabled:
        endpoint.disabled_at, endpoint.disabled_reason = utcnow(), f"Disabled by {actor.name}."
    session.flush()
    signals.webhook_endpoint_changed.send(endpoint, session=session, actor=actor, change="updated")
    return endpoint


def delete_endpoint(session: Session, actor: User, company_id: int, endpoint_id: int) -> None:
    """Remove the endpoint and its delivery log; its queued messages are dropped when their turn comes."""
    endpoint = get_endpoint(session, actor, company_id, endpoint_id)
    signals.webhook_endpoint_changed.send(endpoint, session=session, actor=actor, change="deleted")
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def rotate_secret(session: Session, actor: User, company_id: int, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new secret, shown this once; the one it replaces keeps signing for ``ROTATION_GRACE``."""
    endpoint = get_endpoint(session, actor, company_id, endpoint_id)
    secret = signing.new_secret()
    endpoint.previous_secret, endpoint.secret = endpoint.secret, secret
    endpoint.previous_secret_expires_at = utcnow() + ROTATION_GRACE
    session.flush()
    signals.webhook_endpoint_changed.send(endpoint, session=session, actor=actor, change="secret_rotated")
    return endpoint, secret


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, and the previous one while its grace period lasts."""
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and now < endpoint.previous_secret_expires_at:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


# Messages -------------------------------------------------------------------------------------


def _queue(session: Session, delivery: WebhookDelivery) -> None:
    enqueue(
        session,
        DELIVER_JOB,
        f"webhook:{delivery.webhook_id}:{delivery.sends}",
        {"delivery_id": delivery.id},
        max_attempts=100,  # It gives up by time (``GIVE_UP_AFTER``), long before.
    )


def _message(session: Session, endpoint: WebhookEndpoint, event_type: str, data: dict[str, Any]) -> WebhookDelivery:
    now = utcnow()
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        webhook_id="msg_" + secrets.token_hex(16),
        event_type=event_type,
        payload={"type": event_type, "timestamp": now.isoformat(), "data": data},
        retrying_since=now,
        created_at=now,
    )
    session.add(delivery)
    session.flush()
    _queue(session, delivery)
    return delivery


def publish(session: Session, company_id: int, event_type: str, data: dict[str, Any]) -> int:
    """Queue ``data`` for each enabled endpoint of the company that wants ``event_type``, in the
    caller's transaction; returns how many. One statement when the company has no endpoint."""
    endpoints = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.company_id == company_id, WebhookEndpoint.disabled_at.is_(None))
    ).all()
    wanted = [endpoint for endpoint in endpoints if event_type in endpoint.event_types]
    for endpoint in wanted:
        _message(session, endpoint, event_type, data)
    return len(wanted)


def ping(session: Session, actor: User, company_id: int, endpoint_id: int) -> WebhookDelivery:
    """A test message to the endpoint, whatever event types it wants (disabled ones too: a ping
    is how one checks the receiver works again)."""
    endpoint = get_endpoint(session, actor, company_id, endpoint_id)
    return _message(session, endpoint, PING, {"endpoint_id": endpoint.id, "company_id": company_id})


def redeliver(session: Session, actor: User, company_id: int, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """Send a delivered or given-up message again, with its ``webhook-id`` and body as they were."""
    endpoint = get_endpoint(session, actor, company_id, endpoint_id)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("No such delivery.")
    if delivery.status == DeliveryStatus.PENDING:
        raise Conflict("This message is being sent already.", code="delivery_pending")
    if not endpoint.enabled and delivery.event_type != PING:
        raise Conflict("The endpoint is disabled: enable it to send again.", code="endpoint_disabled")
    delivery.status, delivery.sends, delivery.retrying_since = DeliveryStatus.PENDING, delivery.sends + 1, utcnow()
    session.flush()
    _queue(session, delivery)
    return delivery


def deliveries_of(
    session: Session, actor: User, company_id: int, endpoint_id: int, limit: int = LOG_LENGTH
) -> list[WebhookDelivery]:
    """The endpoint's newest messages with their attempts (two statements)."""
    endpoint = get_endpoint(session, actor, company_id, endpoint_id)
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
            .options(selectinload(WebhookDelivery.attempts))
        )
    )


# Delivery (the worker) --------------------------------------------------------------------------


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


def deliver(session: Session, job: Job) -> dict[str, Any]:
    """The ``webhook.deliver`` job: one attempt at one message."""
    delivery = session.get(WebhookDelivery, job.payload["delivery_id"])
    if delivery is None:
        return {"skipped": "the endpoint was deleted"}
    endpoint = delivery.endpoint
    if not endpoint.enabled and delivery.event_type != PING:
        delivery.status = DeliveryStatus.FAILED
        return {"skipped": "the endpoint is disabled"}
    started = utcnow()
    body = body_of(delivery)
    headers = signing.headers(signing_secrets(endpoint, started), delivery.webhook_id, int(started.timestamp()), body)
    url, production = endpoint.url, current_settings().production
    session.commit()  # Nothing is sent inside a transaction.

    answer = transport.post(url, headers, body, production=production)

    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            job_id=job.id,
            request_headers=headers,
            request_body=body.decode(),
            response_status=answer.status,
            response_body=answer.body,
            duration_ms=answer.duration_ms,
            error=answer.error,
            succeeded=answer.ok,
            started_at=started,
        )
    )
    if answer.ok:
        # Committed with the job's "done": this job never sends the message again.
        delivery.status, delivery.delivered_at, endpoint.failing_since = DeliveryStatus.SUCCEEDED, utcnow(), None
        return {"status": answer.status, "webhook_id": delivery.webhook_id}
    failure = answer.error or f"the receiver answered {answer.status}"
    now = utcnow()
    endpoint.failing_since = endpoint.failing_since or started
    if endpoint.enabled and now - endpoint.failing_since >= DISABLE_AFTER:
        _disable(session, endpoint, failure, now)
    wait = retry_delay(job.attempts)
    if not endpoint.enabled or now + wait - delivery.retrying_since > GIVE_UP_AFTER:
        delivery.status = DeliveryStatus.FAILED
        return {"gave_up": failure, "webhook_id": delivery.webhook_id}
    session.commit()  # The attempt stays in the log whatever the job does next.
    raise RetryLater(failure, after=wait)


def _disable(session: Session, endpoint: WebhookEndpoint, failure: str, now: datetime) -> None:
    endpoint.disabled_at = now
    endpoint.disabled_reason = (
        f"Every attempt failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC; the last: {failure}"
    )
    session.flush()
    signals.webhook_endpoint_disabled.send(
        endpoint, session=session, company_id=endpoint.company_id, url=endpoint.url, reason=endpoint.disabled_reason
    )


def prune_log(session: Session) -> int:
    """Forget settled messages older than ``KEPT_FOR`` (the log is for debugging a receiver, not
    an archive); returns how many."""
    old = select(WebhookDelivery.id).where(
        WebhookDelivery.created_at < utcnow() - KEPT_FOR, WebhookDelivery.status != DeliveryStatus.PENDING
    )
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(old)))
    return cast(CursorResult, session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(old)))).rowcount
