"""Checkout Sessions in ``payment`` mode, paid through the emulator's hosted page."""

from ..errors import StripeError, invalid, missing_param, not_found
from ..params import Currency, Enum, Int, ListOf, Metadata, Obj, Str
from ..routing import Router
from . import customers
from .common import Context, add_list, add_retrieve, list_object, paginate
from .payments import CAPTURE_METHODS, TOKENS_BY_NUMBER, check_amount, confirm_intent, new_intent

routes = Router()

MIN_LIFETIME, MAX_LIFETIME = 30 * 60, 24 * 3600

PRICE_DATA = Obj(
    {
        "currency": Currency(),
        "unit_amount": Int(),
        "product": Str(),
        "product_data": Obj(
            {"name": Str(), "description": Str(), "metadata": Metadata(), "images": ListOf(Str())},
            required=("name",),
        ),
    },
    required=("currency",),
)
SESSION_FIELDS = {
    "mode": Enum("payment", "setup", "subscription"),
    "line_items": ListOf(Obj({"price": Str(), "price_data": PRICE_DATA, "quantity": Int(True)})),
    "success_url": Str(),
    "cancel_url": Str(),
    "customer": Str(),
    "customer_email": Str(),
    "customer_creation": Enum("always", "if_required"),
    "client_reference_id": Str(),
    "expires_at": Int(),
    "metadata": Metadata(),
    "locale": Str(),
    "payment_method_types": ListOf(Str()),
    "submit_type": Enum("auto", "book", "donate", "pay"),
    "ui_mode": Enum("hosted_page"),
    "payment_intent_data": Obj(
        {
            "capture_method": Enum(*CAPTURE_METHODS),
            "description": Str(),
            "metadata": Metadata(),
            "receipt_email": Str(),
            "statement_descriptor": Str(),
            "transfer_group": Str(),
        }
    ),
}


def _line_item(ctx, item, path):
    """Checkout's ``item`` for one ``line_items[i]`` (only ad-hoc ``price_data`` exists here)."""
    if item.get("price"):
        raise not_found("price", item["price"], param=f"{path}[price]", status=400)
    data = item.get("price_data")
    if data is None:
        raise missing_param(f"{path}[price_data]")
    if data.get("product"):
        raise not_found("product", data["product"], param=f"{path}[price_data][product]", status=400)
    required = {
        f"{path}[price_data][unit_amount]": data.get("unit_amount"),
        f"{path}[price_data][product_data]": data.get("product_data"),
        f"{path}[quantity]": item.get("quantity"),
    }
    for param, value in required.items():
        if value is None:
            raise missing_param(param)
    amount = data["unit_amount"] * item["quantity"]
    price = {
        "id": ctx.new_id("price_"),
        "object": "price",
        "active": False,
        "billing_scheme": "per_unit",
        "created": ctx.now,
        "currency": data["currency"],
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": ctx.new_id("prod_"),
        "recurring": None,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": data["unit_amount"],
        "unit_amount_decimal": str(data["unit_amount"]),
    }
    return {
        "id": ctx.new_id("li_"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": data["currency"],
        "description": data["product_data"]["name"],
        "metadata": {},
        "price": price,
        "quantity": item["quantity"],
    }


def _check_session_params(ctx, params):
    if params["mode"] != "payment":
        raise invalid("The emulator supports Checkout only in mode=payment.", param="mode")
    if not params.get("line_items"):
        raise missing_param("line_items")
    if params.get("customer") and params.get("customer_email"):
        raise invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
            code="parameters_exclusive",
        )
    if params.get("customer"):
        ctx.get(params["customer"], "customer", param="customer", status=400)
    expires_at = params.get("expires_at")
    if expires_at is not None and not (ctx.now + MIN_LIFETIME <= expires_at <= ctx.now + MAX_LIFETIME):
        raise invalid(
            "The `expires_at` timestamp must be at least 30 minutes and at most 24 hours "
            "after the Checkout Session is created.",
            param="expires_at",
        )


@routes.post("/v1/checkout/sessions", SESSION_FIELDS, required=("mode",))
def create_session(ctx, params):
    _check_session_params(ctx, params)
    lines = [_line_item(ctx, item, f"line_items[{i}]") for i, item in enumerate(params["line_items"])]
    if len({line["currency"] for line in lines}) > 1:
        raise invalid("All line items must use the same currency.", param="line_items")
    total = sum(line["amount_total"] for line in lines)
    check_amount(total, "line_items")
    session_id = ctx.new_id("cs_test_")
    session = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": total,
        "amount_total": total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": ctx.now,
        "currency": lines[0]["currency"],
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": params.get("customer"),
        "customer_creation": None if params.get("customer") else "if_required",
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "expires_at": params.get("expires_at") or ctx.now + MAX_LIFETIME,
        "invoice": None,
        "livemode": False,
        "locale": params.get("locale"),
        "metadata": params.get("metadata") or {},
        "mode": "payment",
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_options": {},
        "payment_method_types": params.get("payment_method_types") or ["card"],
        "payment_status": "unpaid",
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": params.get("submit_type"),
        "subscription": None,
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": f"{ctx.base_url}/pages/checkout/{session_id}",
    }
    if params.get("customer_creation"):
        session["customer_creation"] = params["customer_creation"]
    return ctx.insert(session, line_items=lines, payment_intent_data=params.get("payment_intent_data") or {})


add_retrieve(routes, "/v1/checkout/sessions/{session}", "checkout.session")
add_list(
    routes,
    "/v1/checkout/sessions",
    "checkout.session",
    filters={"customer": Str(), "payment_intent": Str(), "status": Enum("open", "complete", "expired")},
)


@routes.expander("checkout.session", "line_items")
def session_line_items(store, session):
    lines = store.meta[session["id"]]["line_items"]
    return list_object(lines, f"/v1/checkout/sessions/{session['id']}/line_items")


@routes.get("/v1/checkout/sessions/{session}/line_items", listing=True)
def list_line_items(ctx, params, session):
    obj = ctx.get(session, "checkout.session")
    url = f"/v1/checkout/sessions/{obj['id']}/line_items"
    return paginate(ctx.private(obj)["line_items"], params, url)


def expire(ctx, session):
    """Close an open session; an attempted payment intent is abandoned with it."""
    session.update(status="expired", url=None)
    intent = ctx.store.find(session["payment_intent"] or "")
    if intent and intent["status"] == "requires_payment_method":
        intent.update(status="canceled", canceled_at=ctx.now, cancellation_reason="abandoned")
        ctx.emit("payment_intent.canceled", intent)
    ctx.emit("checkout.session.expired", session)


@routes.post("/v1/checkout/sessions/{session}/expire")
def expire_session(ctx, params, session):
    obj = ctx.get(session, "checkout.session")
    if obj["status"] != "open":
        raise invalid(
            f"This Checkout Session has status {obj['status']}; only open sessions can be expired.",
            code="checkout_session_unexpected_state",
        )
    expire(ctx, obj)
    return obj


def expire_due(store):
    """Expire every open session whose ``expires_at`` has passed (emulator clock)."""
    now = store.now()
    due = [obj for obj in store.of_kind("checkout.session") if obj["status"] == "open" and obj["expires_at"] <= now]
    for session in due:
        expire(Context(store, store.owner(session["id"])), session)


def pay(ctx, session, card_number, email=None):
    """Submit the hosted payment form; returns None when paid, else the message to show."""
    token = TOKENS_BY_NUMBER.get(card_number.replace(" ", ""))
    if token is None:
        return "Your card number is incorrect."
    options = ctx.private(session)["payment_intent_data"]
    intent = ctx.store.find(session["payment_intent"] or "")
    if intent is None:
        intent = new_intent(
            ctx,
            {
                **options,
                "amount": session["amount_total"],
                "currency": session["currency"],
                "customer": session["customer"],
            },
        )
        session["payment_intent"] = intent["id"]
    email = email or session["customer_email"]
    try:
        confirm_intent(ctx, intent, token, email)
    except StripeError as error:
        if error.error["type"] != "card_error":
            raise
        return error.error["message"]
    if session["customer"] is None and session["customer_creation"] == "always":
        session["customer"] = intent["customer"] = customers.create(ctx, {"email": email})["id"]
    session.update(
        status="complete",
        payment_status="unpaid" if intent["status"] == "requires_capture" else "paid",
        url=None,
        customer_details={
            "address": None,
            "email": email,
            "name": None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
    )
    ctx.emit("checkout.session.completed", session)
    return None


def _session_intent(ctx, session):
    intent = ctx.store.find(session["payment_intent"] or "")
    if intent is None:
        options = ctx.private(session)["payment_intent_data"]
        intent = new_intent(
            ctx,
            {
                **options,
                "amount": session["amount_total"],
                "currency": session["currency"],
                "customer": session["customer"],
            },
        )
        session["payment_intent"] = intent["id"]
    return intent


def _customer_details(email):
    return {"address": None, "email": email, "name": None, "phone": None, "tax_exempt": "none", "tax_ids": []}


def pay_later(ctx, session, email=None):
    """Pay with a delayed-notification method (ACH debit): the session completes
    ``unpaid`` and the intent is ``processing`` until ``settle_async`` decides."""
    intent = _session_intent(ctx, session)
    email = email or session["customer_email"]
    intent.update(status="processing", payment_method_types=["us_bank_account"])
    ctx.private(session)["async_email"] = email
    session.update(status="complete", payment_status="unpaid", url=None, customer_details=_customer_details(email))
    ctx.emit("payment_intent.processing", intent)
    ctx.emit("checkout.session.completed", session)
    return None


def settle_async(store, session_id, succeed=True, base_url=""):
    """The delayed payment of a completed session succeeds or fails:
    ``checkout.session.async_payment_succeeded`` or ``..._failed``. ``base_url`` is where the
    emulator is reached (the charge's receipt page is there)."""
    session = store.find(session_id, "checkout.session")
    if session is None:
        raise not_found("checkout.session", session_id)
    ctx = Context(store, store.owner(session_id), base_url)
    intent = store.find(session["payment_intent"] or "", "payment_intent")
    if session["status"] != "complete" or intent is None or intent["status"] != "processing":
        raise invalid(f"Checkout Session {session_id} has no payment in progress.")
    email = ctx.private(session).get("async_email")
    if succeed:
        intent["status"] = "requires_confirmation"
        confirm_intent(ctx, intent, "pm_card_visa", email)
        session["payment_status"] = "paid"
        ctx.emit("checkout.session.async_payment_succeeded", session)
    else:
        intent.update(
            status="requires_payment_method",
            last_payment_error={
                "type": "invalid_request_error",
                "code": "payment_method_not_available",
                "message": "The bank account could not be debited.",
                "payment_method": None,
                "setup_intent": None,
                "source": None,
            },
        )
        ctx.emit("payment_intent.payment_failed", intent)
        ctx.emit("checkout.session.async_payment_failed", session)
    return session


def success_url(session):
    url = session["success_url"]
    return url and url.replace("{CHECKOUT_SESSION_ID}", session["id"])
