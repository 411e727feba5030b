"""Idempotency keys for Stripe that no other installation can produce.

A key made from our own ids (``problem:7``) repeats as soon as a second database shares the
Stripe account (a reset, staging beside development, a restore), and Stripe then refuses the
request or, worse, replays another installation's answer. A key is therefore a purpose and a
random token stored with the row it protects, made once when the row is written.
"""

import uuid


def new_token() -> str:
    return str(uuid.uuid4())


def idempotency_key(purpose: str, token: str) -> str:
    """The key of one request: the same on every retry of the row's attempt, unique elsewhere."""
    return f"{purpose}:{token}"
