"""Transfers to connected accounts and their reversals (separate charges and transfers).

A transfer debits the platform and credits the destination, booking a balance transaction
on each side; the destination sees the money as a ``py_`` payment, as on Stripe.
"""

from ..errors import invalid, not_found
from ..params import Currency, Enum, Int, Metadata, Str
from ..routing import Router
from . import ledger
from .common import add_list, add_retrieve, add_update, list_object, list_objects
from .payments import new_charge

routes = Router()


def _destination(ctx, account_id):
    account = ctx.store.find(account_id, "account")
    if account is None or ctx.store.owner(account_id) != ctx.account:
        raise invalid(f"No such destination: '{account_id}'", param="destination", code="resource_missing")
    if account["capabilities"].get("transfers") != "active":
        raise invalid(
            "Your destination account needs to have at least one of the following "
            "capabilities enabled: transfers, crypto_transfers, legacy_payments",
            param="destination",
            code="insufficient_capabilities_for_transfer",
        )
    return account


def source_remaining(ctx, charge):
    """What a charge can still fund: its captured amount less earlier transfers from it
    (net of their reversals). Stripe's fee is not deducted: the platform's balance pays it."""
    transfers = ctx.store.query(ctx.account, "transfer", lambda t: t["source_transaction"] == charge["id"])
    transferred = sum(t["amount"] - t["amount_reversed"] for t in transfers)
    return charge["amount_captured"] - transferred


def _funding_date(ctx, params):
    """When the transferred funds become available, after checking there are enough."""
    amount, currency = params["amount"], params["currency"]
    if not params.get("source_transaction"):
        available = ledger.totals(ctx).get(currency, {}).get("available", 0)
        if amount > available:
            raise invalid(
                "You have insufficient available funds in your Stripe account. Try adding "
                "funds directly to your available balance by creating Charges using the "
                "4000000000000077 test card.",
                param="amount",
                code="balance_insufficient",
            )
        return ctx.now
    charge = ctx.get(params["source_transaction"], "charge", param="source_transaction", status=400)
    if charge["currency"] != currency:
        raise invalid(
            f"The currency of source_transaction ({charge['currency']}) must match the transfer currency ({currency}).",
            param="currency",
        )
    remaining = source_remaining(ctx, charge)
    if amount > remaining:
        raise invalid(
            f"Insufficient funds on source_transaction {charge['id']}: the transfer amount "
            f"({amount} {currency}) exceeds the charge amount less earlier transfers from it "
            f"({max(remaining, 0)} {currency}).",
            param="amount",
            code="balance_insufficient",
        )
    return ctx.store.find(charge["balance_transaction"])["available_on"]


def _book_both_sides(ctx, account_id, amount, currency, available_on, *, platform, connected):
    """Book ``amount`` on the platform and its opposite on the connected account; each side
    is (balance transaction type, reporting category, source id). Returns both."""
    sides = ((ctx, amount, platform), (ctx.acting_as(account_id), -amount, connected))
    return [
        ledger.record(
            side,
            amount=signed,
            currency=currency,
            txn_type=txn_type,
            source=source,
            category=category,
            available_on=available_on,
        )
        for side, signed, (txn_type, category, source) in sides
    ]


@routes.post(
    "/v1/transfers",
    {
        "amount": Int(positive=True),
        "currency": Currency(),
        "destination": Str(),
        "transfer_group": Str(),
        "source_transaction": Str(),
        "source_type": Enum("bank_account", "card", "fpx"),
        "metadata": Metadata(),
        "description": Str(),
    },
    required=("amount", "currency", "destination"),
    platform_only=True,
)
def create_transfer(ctx, params):
    destination = _destination(ctx, params["destination"])
    available_on = _funding_date(ctx, params)
    transfer_group = params.get("transfer_group")
    if transfer_group is None and params.get("source_transaction"):
        # as on Stripe, a transfer funded by a charge joins the charge's transfer group
        transfer_group = ctx.get(params["source_transaction"], "charge")["transfer_group"]
    amount, currency = params["amount"], params["currency"]
    transfer_id, payment_id = ctx.new_id("tr_"), ctx.new_id("py_")
    debit, credit = _book_both_sides(
        ctx,
        destination["id"],
        -amount,
        currency,
        available_on,
        platform=("transfer", "transfer", transfer_id),
        connected=("payment", "charge", payment_id),
    )
    receiver = ctx.acting_as(destination["id"])
    new_charge(
        receiver,
        amount=amount,
        currency=currency,
        id=payment_id,
        amount_captured=amount,
        balance_transaction=credit["id"],
        captured=True,
        source_transfer=transfer_id,
    )
    transfer = ctx.insert(
        {
            "id": transfer_id,
            "object": "transfer",
            "amount": amount,
            "amount_reversed": 0,
            "balance_transaction": debit["id"],
            "created": ctx.now,
            "currency": currency,
            "description": params.get("description"),
            "destination": destination["id"],
            "destination_payment": payment_id,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "reversals": list_object([], f"/v1/transfers/{transfer_id}/reversals", total_count=0),
            "reversed": False,
            "source_transaction": params.get("source_transaction"),
            "source_type": params.get("source_type") or "card",
            "transfer_group": transfer_group,
        }
    )
    ctx.emit("transfer.created", transfer)
    return transfer


add_retrieve(routes, "/v1/transfers/{transfer}", "transfer")
add_update(
    routes,
    "/v1/transfers/{transfer}",
    "transfer",
    {"description": Str(), "metadata": Metadata()},
    "transfer.updated",
    platform_only=True,
)
add_list(routes, "/v1/transfers", "transfer", filters=("destination", "transfer_group"))


@routes.post(
    "/v1/transfers/{transfer}/reversals",
    {"amount": Int(positive=True), "metadata": Metadata()},
    platform_only=True,
)
def create_reversal(ctx, params, transfer):
    obj = ctx.get(transfer, "transfer")
    left = obj["amount"] - obj["amount_reversed"]
    amount = params.get("amount") or left
    if amount > left or left == 0:
        raise invalid(
            f"Transfer {obj['id']} has already been fully reversed."
            if left == 0
            else f"The reversal amount ({amount}) exceeds the amount not yet reversed ({left}).",
            param="amount",
            code="amount_too_large",
        )
    reversal_id, currency = ctx.new_id("trr_"), obj["currency"]
    connected = ledger.totals(ctx.acting_as(obj["destination"])).get(currency, {}).get("available", 0)
    if ctx.store.settings["reversals_need_available_balance"] and amount > connected:
        raise invalid(
            f"Insufficient funds in the connected account {obj['destination']}: reversing "
            f"{amount} {currency} needs its available balance ({connected} {currency}).",
            param="amount",
            code="balance_insufficient",
        )
    # money goes back from the balance (pending or available) the transfer went into
    available_on = max(ctx.now, ctx.store.find(obj["balance_transaction"])["available_on"])
    credit, _ = _book_both_sides(
        ctx,
        obj["destination"],
        amount,
        currency,
        available_on,
        platform=("transfer_refund", "transfer_reversal", reversal_id),
        connected=("payment_refund", "refund", reversal_id),
    )
    receiver = ctx.acting_as(obj["destination"])
    payment = receiver.get(obj["destination_payment"], "charge")
    payment["amount_refunded"] += amount
    payment["refunded"] = payment["amount_refunded"] == payment["amount"]
    reversal = ctx.insert(
        {
            "id": reversal_id,
            "object": "transfer_reversal",
            "amount": amount,
            "balance_transaction": credit["id"],
            "created": ctx.now,
            "currency": currency,
            "destination_payment_refund": None,
            "metadata": params.get("metadata") or {},
            "source_refund": None,
            "transfer": obj["id"],
        }
    )
    obj["amount_reversed"] += amount
    obj["reversed"] = obj["amount_reversed"] == obj["amount"]
    obj["reversals"]["data"].insert(0, ctx.store.snapshot(reversal))
    obj["reversals"]["total_count"] += 1
    ctx.emit("transfer.reversed", obj)
    return reversal


@routes.get("/v1/transfers/{transfer}/reversals", listing=True)
def list_reversals(ctx, params, transfer):
    obj = ctx.get(transfer, "transfer")
    return list_objects(
        ctx,
        "transfer_reversal",
        {**params, "transfer": obj["id"]},
        f"/v1/transfers/{obj['id']}/reversals",
        filters=("transfer",),
    )


@routes.get("/v1/transfers/{transfer}/reversals/{reversal}")
def retrieve_reversal(ctx, params, transfer, reversal):
    obj = ctx.get(reversal, "transfer_reversal")
    if obj["transfer"] != ctx.get(transfer, "transfer")["id"]:
        raise not_found("transfer_reversal", reversal)
    return obj
