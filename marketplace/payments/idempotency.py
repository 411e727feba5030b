"""Idempotency keys for calls to Stripe: unique to this installation, the same on every retry.

Stripe scopes keys to the Stripe account, not to our database: a key built only from our row
ids (``payout:share:7:1``) is reused by a second installation on the same Stripe account, or
after the database is restored, and Stripe then answers with the earlier request's result or an
idempotency error. So each attempt gets a random identifier when it is recorded (in the job's
payload or on a row) and every retry of that attempt sends exactly that key again; a new attempt
records a new one.
"""

import secrets

STRIPE_KEY_LENGTH = 255


def idempotency_key(*parts: object) -> str:
    """``parts`` (what the call is for, readable in Stripe's logs) and a random identifier."""
    key = ":".join(str(part) for part in (*parts, secrets.token_hex(16)))
    if len(key) > STRIPE_KEY_LENGTH:
        raise ValueError(f"An idempotency key is at most {STRIPE_KEY_LENGTH} characters: {key!r}")
    return key
