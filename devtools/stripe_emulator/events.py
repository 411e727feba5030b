"""Event creation and fan-out to webhook endpoints.

Events belong to the account the change happened on: a connected account's own changes
(``account.updated``, its balance) are Connect events, carry ``account`` and go only to
endpoints created with ``connect=true``, as on Stripe; everything else goes to the
platform's ordinary endpoints.
"""

from .state import API_VERSION

NO_REQUEST = {"id": None, "idempotency_key": None}


def changes(before, after):
    """Stripe's ``previous_attributes``: the old value of every changed (nested) key."""
    diff = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        both_dicts = isinstance(old, dict) and isinstance(new, dict)
        diff[key] = changes(old, new) if both_dicts else old
    return diff


def emit(store, event_type, obj, *, request=None, previous=None):
    owner = obj["id"] if obj["object"] == "account" else store.owner(obj["id"])
    event = {
        "id": store.new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": store.now(),
        "data": {"object": store.snapshot(obj)},
        "livemode": False,
        "pending_webhooks": 0,
        "request": dict(request or NO_REQUEST),
        "type": event_type,
    }
    if previous is not None:
        event["data"]["previous_attributes"] = previous
    if owner != store.platform_id:
        event["account"] = owner
    store.insert(event, owner)
    endpoints = [
        endpoint
        for endpoint in store.query(store.platform_id, "webhook_endpoint")
        if endpoint["status"] == "enabled"
        and store.meta[endpoint["id"]]["connect"] == ("account" in event)
        and ("*" in endpoint["enabled_events"] or event_type in endpoint["enabled_events"])
    ]
    for endpoint in endpoints:
        store.deliveries.append(
            {
                "event": event["id"],
                "endpoint": endpoint["id"],
                "object": obj["id"],
                "attempts": 0,
                "next_attempt": 0.0,
                "last_status": None,
                "last_error": None,
            }
        )
    event["pending_webhooks"] = len(endpoints)
    if endpoints and store.on_event:
        store.on_event()
    return event
