"""Payment intents, the charges they create, and the test payment methods behind them."""

import hashlib
import secrets
import time
from dataclasses import dataclass

from ..errors import StripeError, invalid
from ..params import Bool, Currency, Enum, Int, ListOf, Metadata, Obj, Str
from ..routing import Router
from ..state import random_token
from . import ledger
from .common import add_list, add_retrieve, add_update, list_object

routes = Router()

MINIMUM_AMOUNT = 50
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")


@dataclass(frozen=True)
class TestCard:
    number: str
    decline_code: str | None = None
    decline_message: str = "Your card was declined."
    bypass_pending: bool = False  # funds land in the available balance at once

    @property
    def fingerprint(self):
        return hashlib.sha256(self.number.encode()).hexdigest()[:16]


# Stripe's test payment methods, by the token the API accepts.
TEST_CARDS = {
    "pm_card_visa": TestCard("4242424242424242"),
    "pm_card_bypassPending": TestCard("4000000000000077", bypass_pending=True),
    "pm_card_chargeDeclined": TestCard("4000000000000002", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard(
        "4000000000009995", "insufficient_funds", "Your card has insufficient funds."
    ),
}
TOKENS_BY_NUMBER = {card.number: token for token, card in TEST_CARDS.items()}


def check_amount(amount, param="amount"):
    if amount < MINIMUM_AMOUNT:
        raise invalid(
            f"Amount must be at least {MINIMUM_AMOUNT} minor units",
            param=param,
            code="amount_too_small",
        )


def billing_details(email=None):
    address = dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))
    return {"address": address, "email": email, "name": None, "phone": None, "tax_id": None}


def payment_method_for(ctx, ref, email=None):
    """A ``pm_`` object for a test token (a fresh one each time, as Stripe does) or an id."""
    if ref not in TEST_CARDS:
        return ctx.get(ref, "payment_method", param="payment_method", status=400)
    card = TEST_CARDS[ref]
    return ctx.insert(
        {
            "id": ctx.new_id("pm_"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": billing_details(email),
            "card": {
                "brand": "visa",
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "display_brand": "visa",
                "exp_month": 12,
                "exp_year": time.gmtime(ctx.now).tm_year + 2,
                "fingerprint": card.fingerprint,
                "funding": "credit",
                "generated_from": None,
                "last4": card.number[-4:],
                "networks": {"available": ["visa"], "preferred": None},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": ctx.now,
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        },
        card=ref,
    )


def new_charge(ctx, *, amount, currency, **fields):
    """A charge with Stripe's full field set; callers fill in what their flow knows."""
    charge = {
        "id": ctx.new_id("ch_"),
        "object": "charge",
        "amount": amount,
        "amount_captured": 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": billing_details(),
        "calculated_statement_descriptor": "STRIPE EMULATOR",
        "captured": False,
        "created": ctx.now,
        "currency": currency,
        "customer": None,
        "description": None,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": None,
        "paid": True,
        "payment_intent": None,
        "payment_method": None,
        "payment_method_details": None,
        "radar_options": {},
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer": None,
        "transfer_data": None,
        "transfer_group": None,
    }
    charge.update(fields)
    return ctx.insert(charge)


def give_receipt(ctx, charge):
    """Give a paid charge its ``receipt_url``: a hosted page (``pages.py``) at an address nobody
    can guess, as Stripe's ``pay.stripe.com/receipts/…`` is, showing the charge as it stands."""
    secret = random_token(32)
    ctx.private(charge)["receipt_secret"] = secret
    charge["receipt_url"] = f"{ctx.base_url}/pages/receipts/{charge['id']}/{secret}"


def charge_of_receipt(store, charge_id, secret):
    """The charge a receipt address shows, or None when the address is not one we gave."""
    charge = store.find(charge_id, "charge")
    given = charge and store.meta[charge_id].get("receipt_secret")
    return charge if given and secrets.compare_digest(given, secret) else None


def _outcome(card):
    declined = card.decline_code is not None
    return {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network" if declined else "approved_by_network",
        "reason": card.decline_code,
        "risk_level": "normal",
        "risk_score": 20,
        "seller_message": (
            "The bank did not return any further details with this decline." if declined else "Payment complete."
        ),
        "type": "issuer_declined" if declined else "authorized",
    }


def new_intent(ctx, params):
    """Create a payment intent (shared by the API and by Checkout's hosted page)."""
    check_amount(params["amount"])
    if params.get("customer"):
        ctx.get(params["customer"], "customer", param="customer", status=400)
    intent_id = ctx.new_id("pi_")
    intent = ctx.insert(
        {
            "id": intent_id,
            "object": "payment_intent",
            "amount": params["amount"],
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": params.get("automatic_payment_methods"),
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": params.get("capture_method") or "automatic_async",
            "client_secret": f"{intent_id}_secret_{ctx.new_id('')[:24]}",
            "confirmation_method": "automatic",
            "created": ctx.now,
            "currency": params["currency"],
            "customer": params.get("customer"),
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_options": {},
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "processing": None,
            "receipt_email": params.get("receipt_email"),
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "source": None,
            "statement_descriptor": params.get("statement_descriptor"),
            "statement_descriptor_suffix": None,
            "status": "requires_payment_method",
            "transfer_data": None,
            "payment_record": None,
            "transfer_group": params.get("transfer_group"),
        }
    )
    ctx.emit("payment_intent.created", intent)
    return intent


def confirm_intent(ctx, intent, payment_method=None, email=None):
    """Charge the intent's payment method; a decline raises Stripe's 402 card error."""
    if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise invalid(
            f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}.",
            code="payment_intent_unexpected_state",
        )
    ref = payment_method or intent["payment_method"]
    if ref is None:
        raise invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            param="payment_method",
            code="payment_intent_unexpected_state",
        )
    method = payment_method_for(ctx, ref, email)
    card = TEST_CARDS[ctx.private(method)["card"]]
    declined = card.decline_code is not None
    charge = new_charge(
        ctx,
        amount=intent["amount"],
        currency=intent["currency"],
        billing_details=method["billing_details"],
        customer=intent["customer"],
        description=intent["description"],
        failure_code="card_declined" if declined else None,
        failure_message=card.decline_message if declined else None,
        metadata=dict(intent["metadata"]),
        outcome=_outcome(card),
        paid=not declined,
        payment_intent=intent["id"],
        payment_method=method["id"],
        payment_method_details={
            "card": {
                key: method["card"][key]
                for key in ("brand", "country", "exp_month", "exp_year", "fingerprint", "last4")
            }
            | {"mandate": None},
            "type": "card",
        },
        receipt_email=intent["receipt_email"],
        status="failed" if declined else "succeeded",
        transfer_group=intent["transfer_group"],
    )
    intent["latest_charge"] = charge["id"]
    if declined:
        _decline(ctx, intent, charge, method, card)
    give_receipt(ctx, charge)
    intent["payment_method"] = method["id"]
    intent["last_payment_error"] = None
    if intent["capture_method"] == "manual":
        intent.update(status="requires_capture", amount_capturable=intent["amount"])
        follow_up = "payment_intent.amount_capturable_updated"
    else:
        capture_charge(ctx, intent, charge, intent["amount"])
        follow_up = "payment_intent.succeeded"
    ctx.emit("charge.succeeded", charge)
    ctx.emit(follow_up, intent)
    return intent


def _decline(ctx, intent, charge, method, card):
    error = {
        "charge": charge["id"],
        "code": "card_declined",
        "decline_code": card.decline_code,
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
        "message": card.decline_message,
        "payment_method": ctx.store.snapshot(method),
        "setup_intent": None,
        "source": None,
        "type": "card_error",
    }
    intent.update(status="requires_payment_method", payment_method=None, last_payment_error=error)
    ctx.emit("charge.failed", charge)
    ctx.emit("payment_intent.payment_failed", intent)
    details = {key: error[key] for key in ("charge", "decline_code", "doc_url", "payment_method")}
    raise StripeError(
        402,
        "card_error",
        card.decline_message,
        code="card_declined",
        payment_intent=ctx.store.snapshot(intent),
        **details,
    )


def capture_charge(ctx, intent, charge, amount):
    """Book captured funds: the charge's balance transaction carries Stripe's fee."""
    now = ctx.now
    bypass_pending = TEST_CARDS[ctx.store.meta[charge["payment_method"]]["card"]].bypass_pending
    txn = ledger.record(
        ctx,
        amount=amount,
        currency=charge["currency"],
        txn_type="charge",
        source=charge["id"],
        category="charge",
        fee=ledger.stripe_fee(amount),
        available_on=now if bypass_pending else ledger.settlement_date(now),
        description=charge["description"],
    )
    charge.update(captured=True, amount_captured=amount, balance_transaction=txn["id"])
    intent.update(status="succeeded", amount_received=amount, amount_capturable=0)


INTENT_FIELDS = {
    "amount": Int(),
    "currency": Currency(),
    "customer": Str(),
    "description": Str(),
    "metadata": Metadata(),
    "payment_method": Str(),
    "payment_method_types": ListOf(Str()),
    "capture_method": Enum(*CAPTURE_METHODS),
    "confirm": Bool(),
    "transfer_group": Str(),
    "receipt_email": Str(),
    "statement_descriptor": Str(),
    "return_url": Str(),
    "automatic_payment_methods": Obj(
        {"enabled": Bool(), "allow_redirects": Enum("always", "never")}, required=["enabled"]
    ),
}


@routes.post("/v1/payment_intents", INTENT_FIELDS, required=("amount", "currency"))
def create_intent(ctx, params):
    if params.get("payment_method"):  # resolve first so a bad id leaves nothing behind
        params["payment_method"] = payment_method_for(ctx, params["payment_method"])["id"]
    intent = new_intent(ctx, params)
    if params.get("payment_method"):
        intent.update(payment_method=params["payment_method"], status="requires_confirmation")
    if params.get("confirm"):
        confirm_intent(ctx, intent)
    return intent


@routes.post(
    "/v1/payment_intents/{intent}/confirm",
    {"payment_method": Str(), "receipt_email": Str(), "return_url": Str()},
)
def confirm(ctx, params, intent):
    obj = ctx.get(intent, "payment_intent")
    if params.get("receipt_email"):
        obj["receipt_email"] = params["receipt_email"]
    return confirm_intent(ctx, obj, params.get("payment_method"))


@routes.post(
    "/v1/payment_intents/{intent}/capture",
    {"amount_to_capture": Int(positive=True), "metadata": Metadata()},
)
def capture(ctx, params, intent):
    obj = ctx.get(intent, "payment_intent")
    if obj["status"] != "requires_capture":
        raise invalid(
            "This PaymentIntent could not be captured because it has a status of "
            f"{obj['status']}. Only a PaymentIntent with one of the following statuses may "
            "be captured: requires_capture.",
            code="payment_intent_unexpected_state",
        )
    amount = params.get("amount_to_capture") or obj["amount_capturable"]
    if amount > obj["amount_capturable"]:
        raise invalid(
            "The amount to capture must not exceed the amount capturable.",
            param="amount_to_capture",
            code="amount_too_large",
        )
    charge = ctx.get(obj["latest_charge"], "charge")
    if params.get("metadata"):
        obj["metadata"].update(params["metadata"])
    capture_charge(ctx, obj, charge, amount)
    ctx.emit("charge.captured", charge)
    ctx.emit("payment_intent.succeeded", obj)
    return obj


@routes.post(
    "/v1/payment_intents/{intent}/cancel",
    {"cancellation_reason": Enum("duplicate", "fraudulent", "requested_by_customer", "abandoned")},
)
def cancel(ctx, params, intent):
    obj = ctx.get(intent, "payment_intent")
    if obj["status"] in ("succeeded", "canceled", "processing"):
        raise invalid(
            "You cannot cancel this PaymentIntent because it has a status of "
            f"{obj['status']}. Only a PaymentIntent with one of the following statuses may be "
            "canceled: requires_payment_method, requires_capture, requires_confirmation, "
            "requires_action.",
            code="payment_intent_unexpected_state",
        )
    obj.update(
        status="canceled",
        canceled_at=ctx.now,
        cancellation_reason=params.get("cancellation_reason"),
        amount_capturable=0,
    )
    ctx.emit("payment_intent.canceled", obj)
    return obj


@routes.expander("charge", "refunds")
def charge_refunds(store, charge):
    refunds = store.query(store.owner(charge["id"]), "refund", lambda refund: refund["charge"] == charge["id"])
    url = f"/v1/charges/{charge['id']}/refunds"
    return list_object(refunds, url, total_count=len(refunds))


add_retrieve(routes, "/v1/payment_intents/{intent}", "payment_intent")
add_update(
    routes,
    "/v1/payment_intents/{intent}",
    "payment_intent",
    {key: INTENT_FIELDS[key] for key in ("description", "metadata", "receipt_email", "transfer_group")},
    None,  # Stripe has no payment_intent.updated event
)
add_list(routes, "/v1/payment_intents", "payment_intent", filters=("customer",))
add_retrieve(routes, "/v1/charges/{charge}", "charge")
add_update(routes, "/v1/charges/{charge}", "charge", {"description": Str(), "metadata": Metadata()}, "charge.updated")
add_list(routes, "/v1/charges", "charge", filters=("customer", "payment_intent", "transfer_group"))
add_retrieve(routes, "/v1/payment_methods/{payment_method}", "payment_method")
