"""JSON control endpoints for tests, ``/_emulator/<operation>``: each one calls the
``Emulator`` method of the same meaning with the JSON body as keyword arguments."""

import inspect
import json

from .errors import StripeError, invalid
from .web import Response

OPERATIONS = {
    ("POST", "fail_next"): "fail_next",
    ("POST", "delay_next"): "delay_next",
    ("POST", "drop_next"): "drop_next",
    ("POST", "disputes"): "trigger_dispute",
    ("POST", "advance_time"): "advance_time",
    ("GET", "time"): "now",
    ("POST", "reset"): "reset",
    ("POST", "settings"): "configure",
    ("POST", "refunds/settle"): "settle_refund",
    ("POST", "checkout/settle"): "settle_checkout",
    ("GET", "webhooks"): "pending_webhooks",
    ("POST", "webhooks/deliver"): "deliver_pending",
}


def handle(emulator, request):
    try:
        name = OPERATIONS.get((request.method, request.path.removeprefix("/_emulator/")))
        if name is None:
            raise invalid(f"Unknown control: {request.method} {request.path}", status=404)
        try:
            arguments = json.loads(request.body or b"{}")
            method = getattr(emulator, name)
            inspect.signature(method).bind(**arguments)
        except (TypeError, ValueError) as error:
            raise invalid(f"Bad arguments for {name}: {error}") from None
        return Response.json(200, {"result": method(**arguments)})
    except StripeError as error:
        return Response.json(error.status, error.body())
