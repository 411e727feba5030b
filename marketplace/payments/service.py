"""Stripe Connect, "separate charges and transfers": Checkout funds a problem, Express accounts
receive members' shares as transfers, refunds go back to the company's card.

Calls that must happen exactly once go through the outbox (``marketplace.jobs``) with an
idempotency key derived from our own rows. A job handler reads what it needs, ends its database
transaction, makes the call, and records the outcome in a new transaction: no database lock is
held while Stripe answers, and a crash anywhere is repaired by running the job again with the
same key (Stripe replays the first answer).
"""

import logging
from collections.abc import Callable
from typing import Any

import stripe
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.accounts.service import require_manager, require_verified_email
from marketplace.db import utcnow
from marketplace.errors import Conflict, MarketplaceError
from marketplace.jobs.models import Job
from marketplace.jobs.service import OutcomeUnknown, RetryLater, enqueue, needs_lookup
from marketplace.ledger import payouts as ledger
from marketplace.ledger.models import Share, ShareStatus
from marketplace.payments.client import stripe_client
from marketplace.payments.models import CheckoutSession, PayoutAccount
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.problems.service import ProblemError
from marketplace.workflows import disputes, funding

log = logging.getLogger(__name__)


class PaymentError(MarketplaceError):
    status = 502
    code = "payment_provider"


def transfer_group(problem_id: int) -> str:
    return f"problem_{problem_id}"


def call_stripe(action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Make one Stripe call, sorting its failures into the outbox's vocabulary.

    A connection error may have reached Stripe (the dropped-response case): its outcome is
    unknown. Server errors and rate limits are worth retrying. Anything else is a refusal.
    """
    try:
        return action(*args, **kwargs)
    except stripe.APIConnectionError as error:
        raise OutcomeUnknown(f"no answer from Stripe: {error.user_message or error}") from error
    except stripe.RateLimitError as error:
        raise RetryLater(f"Stripe rate limit: {error.user_message or error}") from error
    except stripe.APIError as error:
        raise RetryLater(f"Stripe error {error.http_status}: {error.user_message or error}") from error


# Funding through Checkout -----------------------------------------------------------------------


def open_checkout(session: Session, problem_id: int) -> CheckoutSession | None:
    return session.scalar(
        select(CheckoutSession)
        .where(CheckoutSession.problem_id == problem_id, CheckoutSession.status == "open")
        .order_by(CheckoutSession.attempt.desc())
        .limit(1)
    )


def start_checkout(
    session: Session, actor: User, problem: Problem, *, success_url: str, cancel_url: str
) -> CheckoutSession:
    """A Checkout Session for the problem's bounty; an open one is reused, a failed one replaced.

    The idempotency key names the attempt, so a retried request (a double click, a timeout)
    gets the same session from Stripe instead of a second one.
    """
    require_manager(session, actor, problem.company_id)
    if problem.status != ProblemStatus.AWAITING_PAYMENT:
        raise Conflict(f"This problem is {problem.status.value.replace('_', ' ')}; there is nothing to pay.")
    existing = open_checkout(session, problem.id)
    if existing is not None:
        return existing
    attempt = 1 + (session.scalar(select(func.count()).where(CheckoutSession.problem_id == problem.id)) or 0)
    params = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": problem.currency,
                    "unit_amount": problem.bounty_amount,
                    "product_data": {"name": f"Bounty: {problem.title}"[:250]},
                },
            }
        ],
        "payment_intent_data": {
            "transfer_group": transfer_group(problem.id),
            "metadata": {"problem_id": str(problem.id)},
        },
        "metadata": {"problem_id": str(problem.id), "attempt": str(attempt)},
        "client_reference_id": str(problem.id),
        "customer_email": actor.email,
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    try:
        created = call_stripe(
            stripe_client().v1.checkout.sessions.create,
            params=params,
            options={"idempotency_key": f"checkout:problem:{problem.id}:{attempt}"},
        )
    except RetryLater as error:
        raise PaymentError("Stripe is not answering right now; nothing was charged. Please try again.") from error
    except stripe.StripeError as error:
        raise PaymentError(f"Stripe refused the payment page: {error.user_message or error}") from error
    checkout = CheckoutSession(
        problem_id=problem.id, attempt=attempt, stripe_id=created.id, url=created.url,
        amount=problem.bounty_amount, currency=problem.currency,
    )  # fmt: skip
    session.add(checkout)
    session.flush()
    return checkout


def checkout_completed(session: Session, data: dict) -> str:
    """``checkout.session.completed``: a paid session funds and opens its problem, once."""
    checkout = session.scalar(select(CheckoutSession).where(CheckoutSession.stripe_id == data["id"]))
    if checkout is None:
        return "unknown checkout session"
    if data.get("payment_status") != "paid":
        return f"not paid ({data.get('payment_status')})"
    if checkout.status == "complete":
        return "already recorded"
    checkout.status, checkout.completed_at = "complete", utcnow()
    checkout.payment_intent_id = _id_of(data.get("payment_intent"))
    problem = session.get_one(Problem, checkout.problem_id)
    try:
        funding.fund_problem(
            session, problem.id, amount=data["amount_total"], currency=data["currency"], reference=checkout.stripe_id
        )
    except ProblemError:
        # Paid after the problem was cancelled or funded by another session: give it back.
        enqueue(
            session,
            "stripe.refund_payment",
            f"refund:checkout:{checkout.stripe_id}",
            {"payment_intent": checkout.payment_intent_id, "problem_id": problem.id},
        )
        return f"problem is {problem.status.value}; payment refunded"
    enqueue(session, "stripe.record_charge", f"charge:checkout:{checkout.stripe_id}", {"checkout_id": checkout.id})
    for other in session.scalars(
        select(CheckoutSession).where(CheckoutSession.problem_id == problem.id, CheckoutSession.status == "open")
    ):
        enqueue(session, "stripe.expire_checkout", f"expire:checkout:{other.stripe_id}", {"stripe_id": other.stripe_id})
    return "funded"


def checkout_closed(session: Session, data: dict, *, expired: bool) -> str:
    """An expired session, or a declined card: the problem waits, and can be paid again."""
    key = "id" if expired else "payment_intent"
    column = CheckoutSession.stripe_id if expired else CheckoutSession.payment_intent_id
    checkout = session.scalar(select(CheckoutSession).where(column == data.get(key, data.get("id"))))
    if checkout is None:
        return "unknown checkout session"
    if expired and checkout.status == "open":
        checkout.status = "expired"
    if not expired:
        error = (data.get("last_payment_error") or {}).get("message") or "the payment failed"
        checkout.last_error = error[:500]
    return "recorded"


def _id_of(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def record_charge(session: Session, job: Job) -> dict:
    """The problem's charge (the source of its transfers) and Stripe's fee on it, borne by the platform."""
    checkout = session.get_one(CheckoutSession, job.payload["checkout_id"])
    payment_intent = checkout.payment_intent_id
    session.commit()
    intent = call_stripe(
        stripe_client().v1.payment_intents.retrieve,
        payment_intent,
        params={"expand": ["latest_charge.balance_transaction"]},
    )
    charge = intent.latest_charge
    fee = charge.balance_transaction.fee if charge.balance_transaction else 0
    checkout = session.get_one(CheckoutSession, job.payload["checkout_id"])
    checkout.charge_id = charge.id
    if fee:
        ledger.record_processor_fee(
            session, amount=fee, currency=charge.currency, reference=charge.id, problem_id=checkout.problem_id
        )
    return {"charge": charge.id, "fee": fee}


def expire_checkout(session: Session, job: Job) -> dict:
    try:
        call_stripe(stripe_client().v1.checkout.sessions.expire, job.payload["stripe_id"])
    except stripe.InvalidRequestError as error:  # Already complete or expired: nothing to do.
        return {"skipped": error.user_message or str(error)}
    return {"expired": job.payload["stripe_id"]}


def funding_checkout(session: Session, problem_id: int) -> CheckoutSession | None:
    return session.scalar(
        select(CheckoutSession).where(CheckoutSession.problem_id == problem_id, CheckoutSession.status == "complete")
    )


# Refunds ---------------------------------------------------------------------------------------


def refund_posted(problem: Problem, *, session: Session, key: str, amount: int, currency: str, **_: Any) -> None:
    """Receiver of ``refund_posted``: the ``stripe.refund`` job that sends it back, same key."""
    enqueue(
        session,
        "stripe.refund",
        key,
        {"problem_id": problem.id, "company_id": problem.company_id, "amount": amount, "currency": currency},
    )


def send_refund(session: Session, job: Job) -> dict[str, Any]:
    """Give a problem's unspent escrow back to the company's card (``refund_posted`` wrote the job)."""
    checkout = funding_checkout(session, job.payload["problem_id"])
    session.commit()
    if checkout is None:  # Funded without Stripe (test payments): nothing to send back.
        funding.complete_refund(session, job.idempotency_key, reference="test-payment")
        return {"refund": None}
    refund = call_stripe(
        stripe_client().v1.refunds.create,
        params={
            "payment_intent": checkout.payment_intent_id,
            "amount": job.payload["amount"],
            "reason": "requested_by_customer",
            "metadata": {"problem_id": str(job.payload["problem_id"]), "key": job.idempotency_key},
        },
        options={"idempotency_key": job.idempotency_key},
    )
    funding.complete_refund(session, job.idempotency_key, reference=refund.id)
    return {"refund": refund.id}


def refund_stray_payment(session: Session, job: Job) -> dict:
    """A payment that arrived for a problem that no longer needed it goes straight back."""
    refund = call_stripe(
        stripe_client().v1.refunds.create,
        params={"payment_intent": job.payload["payment_intent"], "reason": "duplicate"},
        options={"idempotency_key": job.idempotency_key},
    )
    return {"refund": refund.id}


# Payout accounts (Connect Express) ------------------------------------------------------------


def payout_account(session: Session, user: User) -> PayoutAccount | None:
    return session.get(PayoutAccount, user.id)


def onboarding_link(session: Session, user: User, *, return_url: str, refresh_url: str) -> str:
    """Create the member's Express account once, and a fresh onboarding link each time; only for
    a member whose address is proven (the account is made for that address)."""
    require_verified_email(user, "set up payouts")
    account = payout_account(session, user)
    client = stripe_client()
    try:
        if account is None:
            created = call_stripe(
                client.v1.accounts.create,
                params={
                    "type": "express",
                    "email": user.email,
                    "capabilities": {"transfers": {"requested": True}},
                    "metadata": {"user_id": str(user.id)},
                },
                options={"idempotency_key": f"account:user:{user.id}"},
            )
            account = PayoutAccount(
                user_id=user.id, stripe_id=created.id, requirements=_currently_due(created.to_dict())
            )
            session.add(account)
            session.flush()
        link = call_stripe(
            client.v1.account_links.create,
            params={"account": account.stripe_id, "type": "account_onboarding",
                    "return_url": return_url, "refresh_url": refresh_url},
        )  # fmt: skip
    except (RetryLater, stripe.StripeError) as error:
        raise PaymentError("Stripe is not answering right now; please try again in a minute.") from error
    return link.url


def _currently_due(account: dict) -> list[str]:
    requirements = account.get("requirements") or {}
    return list(requirements.get("currently_due") or []) + list(requirements.get("past_due") or [])


def account_updated(session: Session, data: dict) -> str:
    """``account.updated``: record readiness; tell the member what Stripe still needs."""
    account = session.scalar(select(PayoutAccount).where(PayoutAccount.stripe_id == data["id"]))
    if account is None:
        return "unknown account"
    was_ready = account.ready
    account.details_submitted = bool(data.get("details_submitted"))
    account.payouts_enabled = bool(data.get("payouts_enabled"))
    account.transfers_active = (data.get("capabilities") or {}).get("transfers") == "active"
    account.requirements = _currently_due(data)
    account.disabled_reason = (data.get("requirements") or {}).get("disabled_reason")
    if account.requirements and account.details_submitted:
        signals.payout_account_needs_attention.send(
            session.get_one(User, account.user_id),
            session=session,
            event_key=f"account:{account.stripe_id}:{','.join(sorted(account.requirements))}",
            requirements=[r.replace("_", " ").replace(".", ": ") for r in account.requirements],
        )
    if account.ready and not was_ready:
        start_payouts(session, user_ids=[account.user_id])
        return "ready"
    return "updated"


# Payouts ---------------------------------------------------------------------------------------


def start_payouts(session: Session, user_ids: list[int] | None = None) -> int:
    """Every available share of a member with a ready account and a proven address becomes a
    transfer job. A member whose address is unproven (after changing it) waits: their shares stay
    available until they confirm it; a transfer already started goes on."""
    query = (
        select(Share)
        .join(PayoutAccount, PayoutAccount.user_id == Share.member_id)
        .where(
            Share.status == ShareStatus.AVAILABLE,
            Share.amount > Share.given,
            PayoutAccount.transfers_active.is_(True),
            PayoutAccount.details_submitted.is_(True),
            exists().where(User.id == Share.member_id, User.email_verified_at.is_not(None)),
        )
    )
    if user_ids is not None:
        query = query.where(Share.member_id.in_(user_ids))
    started = 0
    for share in session.scalars(query.with_for_update(skip_locked=True) if _postgres(session) else query):
        ledger.start_payout(session, share)
        started += 1
    return started


def email_verified(user: User, *, session: Session, **_: Any) -> None:
    """Receiver of ``email_verified``: payouts that waited for the address start now."""
    start_payouts(session, user_ids=[user.id])


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _existing_transfer(job: Job) -> stripe.Transfer | None:
    """After a day of unknown outcomes, look for the transfer before sending one again."""
    listed = call_stripe(
        stripe_client().v1.transfers.list, params={"transfer_group": job.payload["transfer_group"], "limit": 100}
    )
    return next((t for t in listed.data if (t.metadata or {}).get("job") == job.idempotency_key), None)


def payout_started(share: Share, *, session: Session, key: str, **_: Any) -> None:
    """Receiver of ``payout_started``: the ``stripe.transfer`` job of this attempt, same key."""
    enqueue(
        session,
        "stripe.transfer",
        key,
        {
            "share_id": share.id,
            "member_id": share.member_id,
            "amount": share.payable,
            "currency": share.currency,
            "problem_id": share.problem_id,
            "transfer_group": transfer_group(share.problem_id),
        },
    )


def send_transfer(session: Session, job: Job) -> dict:
    """One transfer per share and attempt, from the problem's charge to the member's account."""
    payload = job.payload
    share = session.get_one(Share, payload["share_id"])
    account = session.get(PayoutAccount, payload["member_id"])
    checkout = funding_checkout(session, payload["problem_id"])
    session.commit()
    if share.status != ShareStatus.PAYING:
        return {"skipped": f"share is {share.status.value}"}
    if account is None or not account.ready:
        _payout_failed(session, share, "your payout account is not ready")
        return {"failed": "account not ready"}
    if checkout is not None and checkout.charge_id is None:
        raise RetryLater("the problem's charge is not recorded yet")
    transfer = _existing_transfer(job) if needs_lookup(job) else None
    if transfer is None:
        params = {
            "amount": payload["amount"],
            "currency": payload["currency"],
            "destination": account.stripe_id,
            "transfer_group": payload["transfer_group"],
            "metadata": {"share_id": str(share.id), "problem_id": str(share.problem_id), "job": job.idempotency_key},
        }
        if checkout is not None:
            params["source_transaction"] = checkout.charge_id
        try:
            transfer = call_stripe(
                stripe_client().v1.transfers.create, params=params, options={"idempotency_key": job.idempotency_key}
            )
        except stripe.InvalidRequestError as error:
            _payout_failed(session, share, error.user_message or str(error))
            return {"failed": error.user_message or str(error)}
    ledger.complete_payout(session, share, transfer_id=transfer.id)
    signals.payout_sent.send(share, session=session, transfer_id=transfer.id, amount=payload["amount"])
    return {"transfer": transfer.id}


def _payout_failed(session: Session, share: Share, reason: str) -> None:
    ledger.fail_payout(session, share, reason=reason)
    signals.payout_failed.send(share, session=session, reason=reason, amount=share.amount - share.given)


def payouts_of(session: Session, user: User) -> list[Share]:
    return list(
        session.scalars(
            select(Share)
            .where(Share.member_id == user.id, Share.status.in_([ShareStatus.PAYING, ShareStatus.PAID]))
            .order_by(Share.created_at.desc())
        )
    )


# Refund confirmations, reversals and chargebacks -----------------------------------------------


def _checkout_for_charge(session: Session, data: dict) -> CheckoutSession | None:
    charge_id = data.get("charge") if data.get("object") == "dispute" else data.get("id")
    payment_intent = _id_of(data.get("payment_intent"))
    return session.scalar(
        select(CheckoutSession).where(
            (CheckoutSession.charge_id == charge_id) | (CheckoutSession.payment_intent_id == payment_intent)
        )
    )


def charge_refunded(session: Session, data: dict) -> str:
    """``charge.refunded`` confirms what the refund job already recorded when Stripe answered."""
    checkout = _checkout_for_charge(session, data)
    if checkout is None:
        return "unknown charge"
    return f"confirmed: {data.get('amount_refunded')} of {data.get('amount')} refunded"


def transfer_reversed(session: Session, data: dict) -> str:
    """A transfer came back from the member's account: the share's money is held for an admin."""
    share = session.scalar(select(Share).where(Share.transfer_reference == data["id"]))
    if share is None:
        return "unknown transfer"
    reversed_amount = data.get("amount_reversed") or 0
    try:
        ledger.record_reversal(session, share, amount=reversed_amount, reference=data["id"])
        outcome = "reversal recorded"
    except ledger.ShareError as error:
        outcome = error.message
    _alert_admins(
        session,
        f"transfer:{data['id']}:{reversed_amount}",
        f"Transfer {data['id']} was reversed ({reversed_amount} {data.get('currency')}); review share {share.id}.",
    )
    return outcome


def charge_disputed(session: Session, data: dict[str, Any]) -> str:
    """A chargeback: the problem's money is frozen (no release) and admins are alerted."""
    checkout = _checkout_for_charge(session, data)
    if checkout is None:
        return "unknown charge"
    problem = session.get_one(Problem, checkout.problem_id)
    return disputes.freeze_for_chargeback(
        session, problem, stripe_dispute_id=data["id"], reason=data.get("reason", "no reason given")
    )


def _alert_admins(session: Session, key: str, text: str) -> None:
    signals.payment_alert.send(None, session=session, key=key, text=text)
