"""Events (read-only) and the webhook endpoints they are delivered to."""

import fnmatch
import re

from ..errors import invalid
from ..params import Bool, ListOf, Metadata, Str
from ..routing import Router
from ..state import random_token
from .common import add_list, add_retrieve, list_objects, update_object

routes = Router()

EVENT_TYPE = re.compile(r"^\*$|^[a-z_]+(\.[a-z_]+)+$")
ENDPOINT_FIELDS = {
    "url": Str(),
    "enabled_events": ListOf(Str()),
    "description": Str(),
    "metadata": Metadata(),
}


def _check(params):
    url = params.get("url")
    if url is not None and not re.match(r"^https?://[^/\s]+", url):
        raise invalid(f"Invalid URL: {url}", param="url")
    for i, event_type in enumerate(params.get("enabled_events") or ()):
        if not EVENT_TYPE.match(event_type or ""):
            raise invalid(f"Invalid event type: {event_type}", param=f"enabled_events[{i}]")


def create_endpoint(ctx, params):
    """Register an endpoint; only this response ever shows its signing secret."""
    _check(params)
    secret = "whsec_" + random_token(32)
    endpoint = ctx.insert(
        {
            "id": ctx.new_id("we_"),
            "object": "webhook_endpoint",
            "api_version": params.get("api_version"),
            "application": None,
            "created": ctx.now,
            "description": params.get("description"),
            "enabled_events": params["enabled_events"],
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "status": "enabled",
            "url": params["url"],
        },
        secret=secret,
        connect=bool(params.get("connect")),
    )
    return {**endpoint, "secret": secret}


routes.post(
    "/v1/webhook_endpoints",
    {**ENDPOINT_FIELDS, "api_version": Str(), "connect": Bool()},
    required=("url", "enabled_events"),
    platform_only=True,
)(create_endpoint)


add_retrieve(routes, "/v1/webhook_endpoints/{endpoint}", "webhook_endpoint", platform_only=True)
add_list(routes, "/v1/webhook_endpoints", "webhook_endpoint", platform_only=True)


@routes.post(
    "/v1/webhook_endpoints/{endpoint}",
    {**ENDPOINT_FIELDS, "disabled": Bool()},
    platform_only=True,
)
def update_endpoint(ctx, params, endpoint):
    obj = ctx.get(endpoint, "webhook_endpoint")
    _check(params)
    if "disabled" in params:
        params["status"] = "disabled" if params.pop("disabled") else "enabled"
    return update_object(ctx, obj, params)


@routes.delete("/v1/webhook_endpoints/{endpoint}", platform_only=True)
def delete_endpoint(ctx, params, endpoint):
    obj = ctx.get(endpoint, "webhook_endpoint")
    ctx.store.remove(obj["id"])
    ctx.store.deliveries = [d for d in ctx.store.deliveries if d["endpoint"] != obj["id"]]
    return {"id": obj["id"], "object": "webhook_endpoint", "deleted": True}


@routes.get("/v1/events", {"type": Str(), "types": ListOf(Str()), "delivery_success": Bool()}, listing=True)
def list_events(ctx, params):
    """``delivery_success=false``: events with a webhook not (yet) delivered, still being
    retried or given up on; ``true``: events every endpoint acknowledged."""
    pattern, types = params.get("type"), params.get("types")
    delivered = params.pop("delivery_success", None)
    return list_objects(
        ctx,
        "event",
        params,
        "/v1/events",
        where=lambda event: (
            (pattern is None or fnmatch.fnmatchcase(event["type"], pattern))
            and (not types or event["type"] in types)
            and (delivered is None or (event["pending_webhooks"] == 0) == delivered)
        ),
    )


add_retrieve(routes, "/v1/events/{event}", "event")
