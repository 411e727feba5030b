"""Disputes: opened only by the test control (``trigger``), then readable through the API."""

from ..errors import not_found
from ..routing import Router
from . import ledger
from .common import Context, add_list, add_retrieve

routes = Router()

DISPUTE_FEE = 1500
RESPONSE_WINDOW = 7 * 86400
EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)


def trigger(store, charge_id, reason="fraudulent"):
    """Open a dispute on a charge as the card network would: funds and a fee are withdrawn."""
    charge = store.find(charge_id, "charge")
    if charge is None:
        raise not_found("charge", charge_id, param="charge")
    ctx = Context(store, store.owner(charge_id))
    dispute_id = ctx.new_id("dp_")
    txn = ledger.record(
        ctx,
        amount=-charge["amount"],
        currency=charge["currency"],
        txn_type="adjustment",
        source=dispute_id,
        category="dispute",
        fee=DISPUTE_FEE,
        description=f"Chargeback withdrawal for {charge['id']}",
    )
    dispute = ctx.insert(
        {
            "id": dispute_id,
            "object": "dispute",
            "amount": charge["amount"],
            "balance_transactions": [store.snapshot(txn)],
            "charge": charge["id"],
            "created": ctx.now,
            "currency": charge["currency"],
            "enhanced_eligibility_types": [],
            "evidence": {**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}},
            "evidence_details": {
                "due_by": ctx.now + RESPONSE_WINDOW,
                "enhanced_eligibility": {},
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
                "submission_method": "not_submitted",
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "status": "needs_response",
        }
    )
    charge["disputed"] = True
    ctx.emit("charge.dispute.created", dispute)
    return dispute


add_retrieve(routes, "/v1/disputes/{dispute}", "dispute")
add_list(routes, "/v1/disputes", "dispute", filters=("charge", "payment_intent"))
