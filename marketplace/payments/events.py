"""Stripe's webhook events, acted on by the worker.

``/webhooks/stripe`` verifies an event, stores it once and enqueues one ``stripe.event`` job
named by the event's id, then answers at once: Stripe waits only a few seconds for an answer,
and the work an event causes (reading the account again, starting payouts, recording a refund)
may itself call Stripe. ``HANDLERS`` is the allow-list: an event type without a handler is
acknowledged and ignored.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from marketplace.jobs.models import Job
from marketplace.payments import service
from marketplace.payments.models import StripeEvent

EventHandler = Callable[[Session, dict[str, Any]], str]

HANDLERS: dict[str, EventHandler] = {
    "checkout.session.completed": service.checkout_completed,
    "checkout.session.async_payment_succeeded": service.checkout_completed,
    "checkout.session.async_payment_failed": service.payment_failed,
    "checkout.session.expired": service.checkout_expired,
    "payment_intent.payment_failed": service.payment_failed,
    "account.updated": service.account_updated,
    "transfer.reversed": service.transfer_reversed,
    "charge.refunded": service.charge_refunded,
    "refund.updated": service.refund_changed,
    "refund.failed": service.refund_changed,
    "charge.refund.updated": service.refund_changed,
    "charge.dispute.created": service.charge_disputed,
}


def event_job_payload(event_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the ``stripe.event`` job needs: the event's id, type and object as delivered."""
    return {"event_id": event_id, "type": event_type, "data": data}


def handle_event(session: Session, job: Job) -> dict[str, str]:
    """The ``stripe.event`` job: run the event's handler and note its outcome on the stored event.

    A handler may end the transaction to call Stripe; its failures are the outbox's to retry.
    """
    outcome = HANDLERS[job.payload["type"]](session, job.payload["data"])[:200]
    session.get_one(StripeEvent, job.payload["event_id"]).outcome = outcome
    return {"outcome": outcome}
