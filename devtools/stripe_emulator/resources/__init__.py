"""The emulated Stripe API: every resource module's routes in one router."""

from ..routing import Router
from . import (
    checkout,
    connect,
    customers,
    disputes,
    event_endpoints,
    ledger,
    payments,
    refunds,
    transfers,
)

API = Router.combine(
    customers.routes,
    checkout.routes,
    payments.routes,
    refunds.routes,
    connect.routes,
    transfers.routes,
    ledger.routes,
    disputes.routes,
    event_endpoints.routes,
)
