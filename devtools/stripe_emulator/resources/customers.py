"""Customers: create, retrieve, update, list."""

from ..params import Metadata, Str
from ..routing import Router
from .common import add_list, add_retrieve, add_update

routes = Router()

FIELDS = {
    "email": Str(),
    "name": Str(),
    "description": Str(),
    "phone": Str(),
    "metadata": Metadata(),
}


def create(ctx, params):
    customer = ctx.insert(
        {
            "id": ctx.new_id("cus_"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": ctx.now,
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description"),
            "discount": None,
            "email": params.get("email"),
            "invoice_prefix": ctx.new_id("")[:8].upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "name": params.get("name"),
            "next_invoice_sequence": 1,
            "phone": params.get("phone"),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
    )
    ctx.emit("customer.created", customer)
    return customer


routes.post("/v1/customers", FIELDS)(create)
add_retrieve(routes, "/v1/customers/{customer}", "customer")
add_update(routes, "/v1/customers/{customer}", "customer", FIELDS, "customer.updated")
add_list(routes, "/v1/customers", "customer", filters=("email",))
