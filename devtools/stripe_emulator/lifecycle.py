"""Transitions driven by the clock rather than by a request."""

from . import idempotency
from .resources import checkout, ledger


def tick(store):
    """Bring time-dependent state up to date; call with the store's lock held."""
    checkout.expire_due(store)
    ledger.settle(store)
    idempotency.purge(store)
