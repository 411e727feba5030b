"""Balance transactions and balances: the money side of charges, refunds and transfers."""

from ..routing import Router
from .common import add_list, add_retrieve

routes = Router()

DAY = 86400
PENDING_DAYS = 2  # card funds settle two days after the charge, at midnight UTC


def stripe_fee(amount):
    """Stripe's standard card pricing: 2.9% + 30, rounded half up to the minor unit."""
    return (amount * 29 + 500) // 1000 + 30


def settlement_date(now):
    return (now // DAY + PENDING_DAYS) * DAY


def record(
    ctx,
    *,
    amount,
    currency,
    txn_type,
    source,
    category,
    fee=0,
    available_on=None,
    description=None,
):
    """Book one balance transaction on ``ctx.account``; available now unless told otherwise."""
    now = ctx.now
    available_on = now if available_on is None else available_on
    fee_details = [
        {
            "amount": fee,
            "application": None,
            "currency": currency,
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    return ctx.insert(
        {
            "id": ctx.new_id("txn_"),
            "object": "balance_transaction",
            "amount": amount,
            "available_on": available_on,
            "balance_type": "payments",
            "created": now,
            "currency": currency,
            "description": description,
            "exchange_rate": None,
            "fee": fee,
            "fee_details": fee_details if fee else [],
            "net": amount - fee,
            "reporting_category": category,
            "source": source,
            "status": "available" if available_on <= now else "pending",
            "type": txn_type,
        }
    )


def settle(store):
    """Move balance transactions whose ``available_on`` has passed to ``available``."""
    now = store.now()
    for txn_id in list(store.pending_balance):
        txn = store.objects[txn_id]
        if txn["available_on"] <= now:
            store.make_available(txn)


def totals(ctx):
    """{currency: {"available": net, "pending": net}} for the acting account."""
    return {currency: dict(sums) for (owner, currency), sums in ctx.store.balances.items() if owner == ctx.account}


@routes.get("/v1/balance")
def retrieve_balance(ctx, params):
    sums = totals(ctx) or {"usd": {"available": 0, "pending": 0}}

    def funds(status):
        return [
            {"amount": s[status], "currency": c, "source_types": {"card": s[status]}} for c, s in sorted(sums.items())
        ]

    balance = {
        "object": "balance",
        "available": funds("available"),
        "livemode": False,
        "pending": funds("pending"),
    }
    if ctx.is_platform:
        balance["connect_reserved"] = [{"amount": 0, "currency": c} for c in sorted(sums)]
    return balance


add_list(routes, "/v1/balance_transactions", "balance_transaction", filters=("type", "source", "currency"))
add_retrieve(routes, "/v1/balance_transactions/{txn}", "balance_transaction")
