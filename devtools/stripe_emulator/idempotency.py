"""Stripe's idempotency layer: one saved response per (account, Idempotency-Key).

A key is claimed before the request runs, so a retry that arrives while the first attempt
is still running (e.g. delayed past the client's timeout) gets a 409 instead of running
twice. Requests rejected before execution (bad parameters, bad key, injected 500s) release
the key; anything that ran, error or not, is replayed for 24 hours of emulator time.
"""

import hashlib
import json

from .errors import StripeError

TTL = 24 * 3600
MAX_KEY_LENGTH = 255


def fingerprint(method, path, params):
    return hashlib.sha256(json.dumps([method, path, params], sort_keys=True).encode()).hexdigest()


def _slot(account, key):
    return f"{account} {key}"


def claim(store, account, key, digest):
    """None when the caller should run the request; the saved record when it should replay."""
    record = store.idempotency.get(_slot(account, key))
    if record is None:
        store.idempotency[_slot(account, key)] = {
            "fingerprint": digest,
            "created": store.now(),
            "state": "running",
        }
        return None
    if record["fingerprint"] != digest:
        raise StripeError(
            400,
            "idempotency_error",
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request.",
        )
    if record["state"] == "running":
        raise StripeError(
            409,
            "idempotency_error",
            "There is currently another in-progress request using this Idempotent Key (that "
            "probably means you submitted twice, and the other request is still going "
            f"through): {key}. Please try again later.",
            code="idempotency_key_in_use",
        )
    return record


def save(store, account, key, status, body, request_id):
    store.idempotency[_slot(account, key)].update(state="done", status=status, body=body, request_id=request_id)


def release(store, account, key):
    store.idempotency.pop(_slot(account, key), None)


def purge(store):
    """Forget keys older than the TTL. Records are kept in the order they were made and the
    clock only moves forward, so the expired ones are the first few."""
    cutoff = store.now() - TTL
    while store.idempotency:
        slot, record = next(iter(store.idempotency.items()))
        if record["created"] > cutoff:
            break
        del store.idempotency[slot]


def forget_unfinished(store):
    """Drop keys whose request was cut short by a restart, so that its retry can run."""
    for slot, record in list(store.idempotency.items()):
        if record["state"] == "running":
            del store.idempotency[slot]
