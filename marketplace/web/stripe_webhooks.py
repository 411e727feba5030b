"""``/webhooks/stripe``: verified, stored once, acted on idempotently, answered quickly.

Only an allow-list of event types changes anything. Every state change an event causes is a
guarded transition, so events arriving twice or out of order leave the same state behind.
"""

import stripe
from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from marketplace.db import db
from marketplace.errors import MarketplaceError
from marketplace.extensions import csrf
from marketplace.payments import service
from marketplace.payments.models import StripeEvent

bp = Blueprint("stripe_webhooks", __name__)
csrf.exempt(bp)


HANDLERS = {
    "checkout.session.completed": lambda session, data: service.checkout_completed(session, data),
    "checkout.session.async_payment_succeeded": lambda session, data: service.checkout_completed(session, data),
    "checkout.session.async_payment_failed": lambda session, data: service.payment_failed(session, data),
    "checkout.session.expired": lambda session, data: service.checkout_expired(session, data),
    "payment_intent.payment_failed": lambda session, data: service.payment_failed(session, data),
    "account.updated": lambda session, data: service.account_updated(session, data),
    "transfer.reversed": lambda session, data: service.transfer_reversed(session, data),
    "charge.refunded": lambda session, data: service.charge_refunded(session, data),
    "charge.dispute.created": lambda session, data: service.charge_disputed(session, data),
}


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
    handle = HANDLERS.get(event.type)
    if handle is None:
        return jsonify(received=True, outcome="ignored"), 200
    data = event.data.object.to_dict()
    record = StripeEvent(
        id=event.id, type=event.type, account=getattr(event, "account", None), object_id=data.get("id")
    )
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return jsonify(received=True, outcome="duplicate"), 200
    record.outcome = handle(db.session, data)[:200]
    return jsonify(received=True, outcome=record.outcome), 200
