"""The one configured ``StripeClient``: Stripe in production, the local emulator in development.

Only the key and the base address differ between the two; the SDK is the official one.
"""

import stripe
from flask import current_app


def test_mode() -> bool:
    """True when no real money can move: no key, or a test key."""
    key = current_app.config.get("STRIPE_SECRET_KEY") or ""
    return not key.startswith("sk_live_")


def stripe_client() -> stripe.StripeClient:
    client = current_app.extensions.get("stripe_client")
    if client is None:
        key = current_app.config.get("STRIPE_SECRET_KEY") or "sk_test_local_emulator"
        base = current_app.config.get("STRIPE_API_BASE") or ""
        client = stripe.StripeClient(
            key,
            base_addresses={"api": base, "connect": base, "files": base} if base else None,
            # Retries reuse the request's idempotency key, so they can never double a payment.
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=current_app.config["STRIPE_TIMEOUT_SECONDS"]),
        )
        current_app.extensions["stripe_client"] = client
    return client
