"""A company's outbound webhooks over the API: endpoints, their secret, the delivery log, "send
again" and a test ping (docs/webhooks.md). Owners and admins only; the secret is in the answer
to creating an endpoint and to rotating its secret, and nowhere else."""

import marshmallow as ma

from marketplace.api.auth import token_required
from marketplace.api.contract import ApiBlueprint, errors
from marketplace.api.idempotency import idempotent
from marketplace.api.inputs import InputSchema
from marketplace.db import db
from marketplace.errors import Conflict, Forbidden
from marketplace.webhooks import service

blp = ApiBlueprint("webhooks_api", __name__, description="A company's outbound webhooks")

EVENT_TYPE = ma.fields.String(validate=ma.validate.OneOf(list(service.EVENT_TYPES)))


class EndpointIn(InputSchema):
    url = ma.fields.String(required=True)
    event_types = ma.fields.List(EVENT_TYPE, required=True)
    description = ma.fields.String(load_default="")


class EndpointChangeIn(InputSchema):
    url = ma.fields.String()
    event_types = ma.fields.List(EVENT_TYPE)
    description = ma.fields.String()
    enabled = ma.fields.Boolean()


class EndpointOut(ma.Schema):
    id = ma.fields.Integer()
    url = ma.fields.String()
    description = ma.fields.String()
    event_types = ma.fields.List(ma.fields.String())
    enabled = ma.fields.Boolean()
    disabled_reason = ma.fields.String()
    failing_since = ma.fields.DateTime(allow_none=True)
    previous_secret_expires_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "until then the previous secret signs too"}
    )
    created_at = ma.fields.DateTime()


class EndpointWithSecretOut(EndpointOut):
    secret = ma.fields.String(metadata={"description": "shown once: keep it where your receiver reads it"})


def with_secret(endpoint, secret: str) -> dict:
    """The endpoint as ``EndpointOut`` reads it, and the secret it was just given."""
    return {**{name: getattr(endpoint, name) for name in EndpointOut().fields}, "secret": secret}


class AttemptOut(ma.Schema):
    started_at = ma.fields.DateTime()
    request_headers = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    request_body = ma.fields.String()
    response_status = ma.fields.Integer(allow_none=True)
    response_body = ma.fields.String(metadata={"description": "the first 2 KiB"})
    duration_ms = ma.fields.Integer()
    error = ma.fields.String()
    succeeded = ma.fields.Boolean()


class DeliveryOut(ma.Schema):
    id = ma.fields.Integer()
    webhook_id = ma.fields.String()
    event_type = ma.fields.String()
    status = ma.fields.Function(lambda delivery: delivery.status.value)
    payload = ma.fields.Dict()
    created_at = ma.fields.DateTime()
    delivered_at = ma.fields.DateTime(allow_none=True)
    attempts = ma.fields.List(ma.fields.Nested(AttemptOut))


ENDPOINTS = "/companies/<int:company_id>/webhooks"
ENDPOINT = ENDPOINTS + "/<int:endpoint_id>"


@blp.get(ENDPOINTS)
@errors(Forbidden)
@token_required
@blp.response(200, EndpointOut(many=True))
def list_endpoints(user, company_id):
    return service.endpoints_of(db.session, user, company_id)


@blp.post(ENDPOINTS)
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(
    EndpointIn,
    example={
        "url": "https://hooks.acme.example.com/marketplace",
        "event_types": ["problem.funded", "introduction.proposed"],
        "description": "Our hiring tracker",
    },
)
@blp.response(201, EndpointWithSecretOut)
def create_endpoint(user, data, company_id):
    """Register an endpoint: https only in production, to a public address (docs/webhooks.md)."""
    endpoint, secret = service.create_endpoint(db.session, user, company_id, **data)
    return with_secret(endpoint, secret)


@blp.patch(ENDPOINT)
@errors(Forbidden)
@token_required
@blp.arguments(EndpointChangeIn, example={"enabled": False})
@blp.response(200, EndpointOut)
def update_endpoint(user, data, company_id, endpoint_id):
    """Change the URL, the event types, the description, or enable and disable the endpoint."""
    return service.update_endpoint(db.session, user, company_id, endpoint_id, **data)


@blp.delete(ENDPOINT)
@errors(Forbidden)
@token_required
@blp.response(204)
def delete_endpoint(user, company_id, endpoint_id):
    service.delete_endpoint(db.session, user, company_id, endpoint_id)


@blp.post(ENDPOINT + "/secret")
@errors(Forbidden)
@idempotent
@token_required
@blp.response(200, EndpointWithSecretOut)
def rotate_secret(user, company_id, endpoint_id):
    """A new secret; the previous one signs too until ``previous_secret_expires_at`` (24 hours)."""
    endpoint, secret = service.rotate_secret(db.session, user, company_id, endpoint_id)
    return with_secret(endpoint, secret)


@blp.get(ENDPOINT + "/deliveries")
@errors(Forbidden)
@token_required
@blp.response(200, DeliveryOut(many=True))
def list_deliveries(user, company_id, endpoint_id):
    """The endpoint's 50 newest messages, newest first, each with every attempt."""
    return service.deliveries_of(db.session, user, company_id, endpoint_id)


@blp.post(ENDPOINT + "/deliveries/<int:delivery_id>/redeliver")
@errors(Forbidden, (409, "delivery_pending"), (409, "endpoint_disabled"))
@idempotent
@token_required
@blp.response(202, DeliveryOut)
def redeliver(user, company_id, endpoint_id, delivery_id):
    """Send a delivered or given-up message again, with the same ``webhook-id``; 409 while it is
    still being sent or while the endpoint is disabled."""
    return service.redeliver(db.session, user, company_id, endpoint_id, delivery_id)


@blp.post(ENDPOINT + "/ping")
@errors(Forbidden)
@idempotent
@token_required
@blp.response(202, DeliveryOut)
def ping(user, company_id, endpoint_id):
    """Queue a ``webhook.ping`` message to the endpoint."""
    return service.ping(db.session, user, company_id, endpoint_id)
