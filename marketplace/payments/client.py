"""The one configured ``StripeClient``: Stripe in production, the local emulator in development.

Only the key and the base address differ between the two; the SDK is the official one. Without
``STRIPE_SECRET_KEY`` the client talks to the emulator, outside production only (``APP_ENV``): at
``STRIPE_API_BASE`` if set, else on ``STRIPE_EMULATOR_PORT`` where ``make run`` starts it. The web
app, the worker and every ``flask`` command follow this one rule.
"""

import stripe
from flask import current_app

from marketplace.config import current_settings

EMULATOR_KEY = "sk_test_local_emulator"


def stripe_client() -> stripe.StripeClient:
    client = current_app.extensions.get("stripe_client")
    if client is None:
        settings = current_settings()
        key = settings.stripe_secret_key
        if not key:
            if not settings.stripe_emulator_fallback:
                raise stripe.AuthenticationError("STRIPE_SECRET_KEY is not set (APP_ENV=production).")
            key = EMULATOR_KEY
        base = settings.stripe_api_base or ("" if settings.stripe_secret_key else settings.stripe_emulator_url)
        client = stripe.StripeClient(
            key,
            base_addresses={"api": base, "connect": base, "files": base} if base else None,
            # Retries reuse the request's idempotency key, so they can never double a payment.
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_seconds),
        )
        current_app.extensions["stripe_client"] = client
    return client
