"""``/webhooks/stripe``: verified, stored once, queued for the worker, answered at once.

Only event types with a handler (``payments.events.HANDLERS``) are kept. The handler runs in a
``stripe.event`` job, never in the request: Stripe waits only seconds for an answer, and the work
may itself call Stripe. Handlers read the current state from Stripe or make guarded transitions,
so events arriving twice or out of order leave the same state behind.
"""

import stripe
from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from marketplace.db import db
from marketplace.errors import MarketplaceError
from marketplace.extensions import csrf
from marketplace.jobs.service import enqueue
from marketplace.payments.events import HANDLERS, event_job_payload
from marketplace.payments.models import StripeEvent

bp = Blueprint("stripe_webhooks", __name__)
csrf.exempt(bp)


def _verified_event(payload: bytes, signature: str) -> stripe.Event:
    """Try each configured signing secret (the platform endpoint's and the Connect endpoint's)."""
    secrets = [s.strip() for s in current_app.config.get("STRIPE_WEBHOOK_SECRET", "").split(",") if s.strip()]
    for secret in secrets:
        try:
            return stripe.Webhook.construct_event(payload, signature, secret)
        except stripe.SignatureVerificationError:
            continue
    raise MarketplaceError("The Stripe signature does not verify.", code="bad_signature")


@bp.post("/webhooks/stripe")
def receive():
    try:
        event = _verified_event(request.get_data(), request.headers.get("Stripe-Signature", ""))
    except ValueError:
        raise MarketplaceError("The body is not a Stripe event.", code="bad_payload") from None
    if event.type not in HANDLERS:
        return jsonify(received=True, outcome="ignored"), 200
    data = event.data.object.to_dict()
    record = StripeEvent(
        id=event.id,
        type=event.type,
        account=getattr(event, "account", None),
        object_id=data.get("id"),
        outcome="queued",
    )
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return jsonify(received=True, outcome="duplicate"), 200
    enqueue(db.session, "stripe.event", f"stripe:event:{event.id}", event_job_payload(event.id, event.type, data))
    return jsonify(received=True, outcome="queued"), 200
