"""Connect: connected accounts, account links and what hosted onboarding does to them."""

import hashlib

from .. import events
from ..errors import not_found
from ..params import Bool, Currency, Enum, Metadata, Obj, Str
from ..routing import Router
from ..state import random_token
from .common import add_list, list_object, update_object

routes = Router()

LINK_LIFETIME = 300  # Stripe's account links expire after five minutes
INITIAL_DUE = [
    "business_type",
    "external_account",
    "individual.dob.day",
    "individual.dob.month",
    "individual.dob.year",
    "individual.email",
    "individual.first_name",
    "individual.last_name",
    "individual.phone",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]
DASHBOARDS = {"express": "express", "standard": "full", "custom": "none"}
VERIFICATION_DOCUMENT = "individual.verification.document"


def requirements(due=(), *, disabled_reason=None, errors=(), pending=()):
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": disabled_reason,
        "errors": list(errors),
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": list(pending),
    }


def _new_account(account_id, created, params):
    account_type = params["type"]
    return {
        "id": account_id,
        "object": "account",
        "business_profile": {
            "mcc": None,
            "name": None,
            "product_description": None,
            "support_email": None,
            "support_phone": None,
            "support_url": None,
            "url": None,
            **(params.get("business_profile") or {}),
        },
        "business_type": params.get("business_type"),
        "capabilities": {
            name: "inactive"
            for name, capability in (params.get("capabilities") or {}).items()
            if capability.get("requested")
        },
        "charges_enabled": False,
        "controller": {
            "fees": {"payer": "application"},
            "is_controller": True,
            "losses": {"payments": "application"},
            "requirement_collection": "application" if account_type == "custom" else "stripe",
            "stripe_dashboard": {"type": DASHBOARDS[account_type]},
            "type": "application",
        },
        "country": (params.get("country") or "US").upper(),
        "created": created,
        "default_currency": params.get("default_currency") or "usd",
        "details_submitted": False,
        "email": params.get("email"),
        "external_accounts": list_object([], f"/v1/accounts/{account_id}/external_accounts", total_count=0),
        "future_requirements": requirements(),
        "metadata": params.get("metadata") or {},
        "payouts_enabled": False,
        "requirements": requirements(INITIAL_DUE, disabled_reason="requirements.past_due"),
        "settings": {
            "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": False},
                "statement_descriptor_prefix": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "payments": {
                "statement_descriptor": None,
                "statement_descriptor_kana": None,
                "statement_descriptor_kanji": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 2, "interval": "daily"},
                "statement_descriptor": None,
            },
        },
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": account_type,
    }


def platform_account(store):
    """The platform itself, as ``GET /v1/account`` shows it: fully enabled."""
    account = _new_account(store.platform_id, 0, {"type": "standard"})
    account.update(
        capabilities={"card_payments": "active", "transfers": "active"},
        charges_enabled=True,
        details_submitted=True,
        payouts_enabled=True,
        requirements=requirements(),
    )
    return account


CAPABILITY = Obj({"requested": Bool()})
ACCOUNT_FIELDS = {
    "email": Str(),
    "metadata": Metadata(),
    "business_type": Enum("individual", "company", "non_profit", "government_entity"),
    "business_profile": Obj(
        {
            "name": Str(),
            "url": Str(),
            "mcc": Str(),
            "product_description": Str(),
            "support_email": Str(),
        }
    ),
}


@routes.post(
    "/v1/accounts",
    {
        **ACCOUNT_FIELDS,
        "type": Enum(*DASHBOARDS),
        "country": Str(),
        "default_currency": Currency(),
        "capabilities": Obj({"transfers": CAPABILITY, "card_payments": CAPABILITY}),
    },
    required=("type",),
    platform_only=True,
)
def create_account(ctx, params):
    return ctx.insert(_new_account(ctx.new_id("acct_")[:21], ctx.now, params))


@routes.get("/v1/account")
def retrieve_own_account(ctx, params):
    return platform_account(ctx.store) if ctx.is_platform else ctx.store.find(ctx.account)


@routes.get("/v1/accounts/{account}")
def retrieve_account(ctx, params, account):
    """Any of the platform's accounts; a connected account may only read itself."""
    if ctx.is_platform or account == ctx.account:
        return ctx.store.get(account, ctx.store.platform_id, "account")
    raise not_found("account", account)


@routes.post("/v1/accounts/{account}", ACCOUNT_FIELDS, platform_only=True)
def update_account(ctx, params, account):
    obj = ctx.get(account, "account")
    if params.get("business_profile"):
        params["business_profile"] = {**obj["business_profile"], **params["business_profile"]}
    return update_object(ctx, obj, params, "account.updated")


add_list(routes, "/v1/accounts", "account", platform_only=True)


@routes.post(
    "/v1/account_links",
    {
        "account": Str(),
        "type": Enum("account_onboarding", "account_update"),
        "refresh_url": Str(),
        "return_url": Str(),
        "collect": Enum("currently_due", "eventually_due"),
    },
    required=("account", "type"),
    platform_only=True,
)
def create_account_link(ctx, params):
    account = ctx.get(params["account"], "account", param="account", status=400)
    token = random_token(32)
    expires_at = ctx.now + LINK_LIFETIME
    ctx.store.account_links[token] = {
        "account": account["id"],
        "refresh_url": params.get("refresh_url"),
        "return_url": params.get("return_url"),
        "expires_at": expires_at,
        "used": False,
    }
    return {
        "object": "account_link",
        "created": ctx.now,
        "expires_at": expires_at,
        "url": f"{ctx.base_url}/pages/onboarding/{token}",
    }


def usable_link(store, token):
    """The link record, or None once it was used or has expired (then: go to refresh_url)."""
    link = store.account_links.get(token)
    if link is None or link["used"] or link["expires_at"] <= store.now():
        return None
    return link


def _bank_account(account_id, routing_number, account_number, first):
    fingerprint = hashlib.sha256(f"{routing_number}/{account_number}".encode()).hexdigest()
    return {
        "id": "ba_" + random_token(),
        "object": "bank_account",
        "account": account_id,
        "account_holder_name": None,
        "account_holder_type": None,
        "account_type": None,
        "available_payout_methods": ["standard"],
        "bank_name": "STRIPE TEST BANK",
        "country": "US",
        "currency": "usd",
        "default_for_currency": first,
        "fingerprint": fingerprint[:16],
        "last4": account_number[-4:],
        "metadata": {},
        "routing_number": routing_number,
        "status": "new",
    }


# outcome -> (capability status, charges/payouts enabled, requirements)
OUTCOMES = {
    "complete": ("active", True, requirements()),
    "pending_verification": (
        "pending",
        False,
        requirements(disabled_reason="requirements.pending_verification", pending=[VERIFICATION_DOCUMENT]),
    ),
    "fail_verification": (
        "inactive",
        False,
        requirements(
            [VERIFICATION_DOCUMENT],
            disabled_reason="requirements.past_due",
            errors=[
                {
                    "code": "verification_failed_other",
                    "reason": "The identity document could not be verified.",
                    "requirement": VERIFICATION_DOCUMENT,
                }
            ],
        ),
    ),
}


def onboard(ctx, account, outcome, routing_number, account_number):
    """What submitting the hosted onboarding form does; emits ``account.updated``."""
    capability, enabled, reqs = OUTCOMES[outcome]
    before = ctx.store.snapshot(account)
    external = account["external_accounts"]
    bank = _bank_account(account["id"], routing_number, account_number, not external["data"])
    if all(item["fingerprint"] != bank["fingerprint"] for item in external["data"]):
        external["data"].append(bank)
        external["total_count"] = len(external["data"])
    account.update(
        business_type=account["business_type"] or "individual",
        capabilities=dict.fromkeys(account["capabilities"], capability),
        charges_enabled=enabled,
        details_submitted=True,
        payouts_enabled=enabled,
        requirements=ctx.store.snapshot(reqs),
        tos_acceptance={"date": ctx.now, "ip": "127.0.0.1", "user_agent": "stripe-emulator"},
    )
    diff = events.changes(before, account)
    if diff:
        ctx.emit("account.updated", account, previous=diff)
