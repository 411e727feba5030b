"""Idempotency keys for calls to Stripe: unique to this installation, the same on every retry.

Stripe scopes keys to the Stripe account, not to our database: a key built only from our row
ids (``payout:share:7:1``) is reused by a second installation on the same Stripe account (a
reset, staging beside development on one test key, a restore), and Stripe then answers with the
earlier request's result or an idempotency error. So each attempt gets a random token when it is
recorded (on its row, or in its job's payload) and every retry of that attempt sends exactly the
key made from it; a new attempt records a new one.
"""

import secrets

STRIPE_KEY_LENGTH = 255


def new_token() -> str:
    return secrets.token_hex(16)


def idempotency_key(*parts: object, token: str | None = None) -> str:
    """``parts`` (what the call is for, readable in Stripe's logs) and the attempt's token: the
    one recorded with it, or a new one to record with the key."""
    key = ":".join(str(part) for part in (*parts, token or new_token()))
    if len(key) > STRIPE_KEY_LENGTH:
        raise ValueError(f"An idempotency key is at most {STRIPE_KEY_LENGTH} characters: {key!r}")
    return key
