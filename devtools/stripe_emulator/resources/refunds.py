"""Refunds against a charge or a payment intent's charge, full or partial."""

from ..errors import invalid, not_found
from ..events import changes
from ..params import Enum, Int, Metadata, Str
from ..routing import Router
from . import ledger
from .common import Context, add_list, add_retrieve, add_update

routes = Router()


def _charge_to_refund(ctx, params):
    if params.get("payment_intent"):
        intent = ctx.get(params["payment_intent"], "payment_intent", param="payment_intent", status=400)
        if intent["status"] != "succeeded":
            raise invalid(
                f"PaymentIntent {intent['id']} does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        if params.get("charge") not in (None, intent["latest_charge"]):
            raise invalid("The charge does not belong to this PaymentIntent.", param="charge")
        return ctx.get(intent["latest_charge"], "charge")
    if params.get("charge"):
        return ctx.get(params["charge"], "charge", param="charge", status=400)
    raise invalid(
        "One of the following params should be provided for this request: payment_intent or charge.",
        code="parameter_missing",
    )


def _book(ctx, refund_id, charge, amount):
    return ledger.record(
        ctx,
        amount=-amount,
        currency=charge["currency"],
        txn_type="refund",
        source=refund_id,
        category="refund",
        description=f"REFUND FOR CHARGE ({charge['description'] or charge['id']})",
    )


def settle(store, refund_id, succeed=True):
    """Finish a ``pending`` refund: it succeeds (``refund.updated``) once the platform has
    the funds, or fails (``refund.failed``) and the amount counts as unrefunded again."""
    refund = store.find(refund_id, "refund")
    if refund is None:
        raise not_found("refund", refund_id)
    if refund["status"] != "pending":
        raise invalid(f"Refund {refund_id} is {refund['status']}, not pending.")
    ctx = Context(store, store.owner(refund_id))
    charge = ctx.get(refund["charge"], "charge")
    before = store.snapshot(refund)
    if succeed:
        refund.update(status="succeeded", balance_transaction=_book(ctx, refund_id, charge, refund["amount"])["id"])
        ctx.emit("refund.updated", refund, previous=changes(before, refund))
    else:
        refund.update(status="failed", failure_reason="insufficient_funds")
        charge["amount_refunded"] -= refund["amount"]
        charge["refunded"] = False
        ctx.emit("refund.failed", refund, previous=changes(before, refund))
    return refund


def refundable(charge):
    return charge["amount_captured"] - charge["amount_refunded"]


@routes.post(
    "/v1/refunds",
    {
        "charge": Str(),
        "payment_intent": Str(),
        "amount": Int(positive=True),
        "reason": Enum("duplicate", "fraudulent", "requested_by_customer"),
        "metadata": Metadata(),
    },
)
def create_refund(ctx, params):
    charge = _charge_to_refund(ctx, params)
    if charge.get("disputed"):
        raise invalid(
            f"Charge {charge['id']} has been charged back; it cannot be refunded.",
            param="charge",
            code="charge_disputed",
        )
    left = refundable(charge)
    if not charge["captured"] or left == 0:
        raise invalid(
            f"Charge {charge['id']} has already been refunded."
            if charge["captured"]
            else f"Charge {charge['id']} has not been captured; cancel its PaymentIntent.",
            param="charge",
            code="charge_already_refunded" if charge["captured"] else "charge_not_refundable",
        )
    amount = params.get("amount") or left
    if amount > left:
        raise invalid(
            f"Refund amount ({amount} {charge['currency']}) is greater than unrefunded amount "
            f"on charge ({left} {charge['currency']})",
            param="amount",
            code="amount_too_large",
        )
    refund_id = ctx.new_id("re_")
    available = ledger.totals(ctx).get(charge["currency"], {}).get("available", 0)
    pending = ctx.store.settings["refunds_need_available_balance"] and amount > available
    txn = None if pending else _book(ctx, refund_id, charge, amount)
    refund = ctx.insert(
        {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "balance_transaction": txn and txn["id"],
            "charge": charge["id"],
            "created": ctx.now,
            "currency": charge["currency"],
            "destination_details": {
                "card": {
                    "reference": None,
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            },
            "metadata": params.get("metadata") or {},
            "customer": charge["customer"],
            "failure_balance_transaction": None,
            "payment_intent": charge["payment_intent"],
            "payment_method": charge["payment_method"],
            "reason": params.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "pending" if pending else "succeeded",
            "transfer_reversal": None,
        }
    )
    charge["amount_refunded"] += amount
    charge["refunded"] = refundable(charge) == 0
    ctx.emit("refund.created", refund)
    ctx.emit("charge.refunded", charge)
    return refund


add_retrieve(routes, "/v1/refunds/{refund}", "refund")
add_update(routes, "/v1/refunds/{refund}", "refund", {"metadata": Metadata()}, "refund.updated")
add_list(routes, "/v1/refunds", "refund", filters=("charge", "payment_intent"))
