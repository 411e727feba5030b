"""Stripe Connect, "separate charges and transfers": Checkout funds a problem, Express accounts
receive members' shares as transfers, refunds go back to the company's card.

Calls that must happen exactly once go through the outbox (``marketplace.jobs``) with an
idempotency key derived from our own rows. A job handler reads what it needs, ends its database
transaction, makes the call, and records the outcome in a new transaction: no database lock is
held while Stripe answers, and a crash anywhere is repaired by running the job again with the
same key (Stripe replays the first answer).
"""

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import Subquery, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.accounts.service import require_manager, require_verified_email
from marketplace.db import guarded_update, utcnow
from marketplace.errors import Conflict, MarketplaceError, NotFound
from marketplace.jobs.models import Job
from marketplace.jobs.service import OutcomeUnknown, PermanentFailure, RetryLater, enqueue, needs_lookup
from marketplace.keyset import Window, seek
from marketplace.ledger import payouts as ledger
from marketplace.ledger.disputes import require_platform_admin
from marketplace.ledger.models import Share, ShareStatus
from marketplace.payments.client import stripe_client
from marketplace.payments.idempotency import idempotency_key, new_token
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
    unknown. Server errors and rate limits are worth retrying, and so is a key whose first request
    is still running. A key reused with other parameters can never succeed: it is logged and
    permanent. Anything else is a refusal.
    """
    try:
        return action(*args, **kwargs)
    except stripe.IdempotencyError as error:
        if error.http_status == 409:  # The first request under this key is still running.
            raise RetryLater(f"Stripe is still working on this request: {error.user_message or error}") from error
        log.error("Stripe refused an idempotency key reused with other parameters: %s", error.user_message or error)
        raise PermanentFailure(
            f"idempotency key reused with other parameters: {error.user_message or error}"
        ) from error
    except stripe.APIConnectionError as error:
        raise OutcomeUnknown(f"no answer from Stripe: {error.user_message or error}") from error
    except stripe.RateLimitError as error:
        raise RetryLater(f"Stripe rate limit: {error.user_message or error}") from error
    except stripe.APIError as error:
        raise RetryLater(f"Stripe error {error.http_status}: {error.user_message or error}") from error


# A refusal of the request itself: it would be refused again, whatever the number of retries.
REFUSALS = (stripe.InvalidRequestError, stripe.PermissionError, stripe.CardError)
# Refusals that say "not now" rather than "no": the platform's balance will cover it later.
TRANSIENT_CODES = {"balance_insufficient"}


def refusal_reason(error: stripe.StripeError) -> str:
    """Sort an error ``call_stripe`` let through, in a job: a refusal of the request (an invalid
    request, a destination account not capable of transfers or closed, no permission) is
    returned in words for the caller to record; a "not now" is retried later; anything else
    (authentication, an idempotency conflict: our configuration, not the request) parks the job
    for an admin."""
    message = error.user_message or str(error)
    if error.code in TRANSIENT_CODES:
        raise RetryLater(f"Stripe: {message}") from error
    if isinstance(error, stripe.IdempotencyError) or not isinstance(error, REFUSALS):
        raise PermanentFailure(f"Stripe: {message}") from error
    return message


# Funding through Checkout -----------------------------------------------------------------------

# An attempt in one of these states may still take the company's money.
LIVE = ("creating", "open", "processing")
# The sweep asks Stripe about a live attempt this long after it began, and again as often.
SWEEP_AFTER = timedelta(minutes=5)
SWEEP_BATCH = 50
# Stripe keeps an idempotency key for 24 hours: after that a replay could make a second session.
REPLAYABLE_FOR = timedelta(hours=23)


def live_checkout(session: Session, problem_id: int) -> CheckoutSession | None:
    return session.scalar(
        select(CheckoutSession)
        .where(CheckoutSession.problem_id == problem_id, CheckoutSession.status.in_(LIVE))
        .order_by(CheckoutSession.attempt.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )


def start_checkout(
    session: Session, actor: User, problem: Problem, *, success_url: str, cancel_url: str
) -> CheckoutSession:
    """The payment page for the problem's bounty: the live attempt's, or a new attempt's.

    No database transaction is open while Stripe answers. A new attempt is recorded and
    committed first, then Stripe creates its session under the attempt's key, then the session
    is recorded in a new short transaction; an attempt left ``creating`` by a timeout or a crash
    is completed by the next click (or the sweep) with the same parameters and key, and Stripe
    answers with the same session. An open session is offered only after Stripe confirms that
    it is still open; one that was paid meanwhile funds the problem instead.
    """
    require_manager(session, actor, problem.company_id)
    checkout = _attempt_to_continue(session, problem)
    if checkout is not None and checkout.status == "open":
        checkout = refresh_checkout(session, checkout)
        if checkout.status == "open":
            return checkout
        checkout = _attempt_to_continue(session, problem)
    if checkout is None:
        checkout = _record_attempt(session, problem, actor, success_url=success_url, cancel_url=cancel_url)
    return _create_at_stripe(session, checkout)


def _attempt_to_continue(session: Session, problem: Problem) -> CheckoutSession | None:
    """The problem's live attempt, if any; the problem row is locked first, so two clicks at once
    make one attempt (SQLite's ``BEGIN IMMEDIATE`` already serialises them)."""
    # FOR UPDATE OF the problem alone: the page loaded it with its company and skills joined,
    # and PostgreSQL cannot lock the nullable side of those outer joins.
    session.refresh(problem, with_for_update={"of": Problem})
    if problem.status != ProblemStatus.AWAITING_PAYMENT:
        raise Conflict(f"This problem is {problem.status.value.replace('_', ' ')}; there is nothing to pay.")
    checkout = live_checkout(session, problem.id)
    if checkout is not None and checkout.status == "processing":
        raise Conflict(
            "A bank payment for this bounty is under way; the problem opens when it clears. "
            "If it fails you can pay again."
        )
    return checkout


def _record_attempt(
    session: Session, problem: Problem, actor: User, *, success_url: str, cancel_url: str
) -> CheckoutSession:
    """A new attempt, with the parameters every retry of it will send."""
    attempt = 1 + (session.scalar(select(func.count()).where(CheckoutSession.problem_id == problem.id)) or 0)
    checkout = CheckoutSession(
        problem_id=problem.id, attempt=attempt, request_token=new_token(),
        amount=problem.bounty_amount, currency=problem.currency,
    )  # fmt: skip
    metadata = {"problem_id": str(problem.id), "checkout": checkout.request_token}
    checkout.request = {
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
        "payment_intent_data": {"transfer_group": transfer_group(problem.id), "metadata": metadata},
        "metadata": {**metadata, "attempt": str(attempt)},
        "client_reference_id": str(problem.id),
        "customer_email": actor.email,
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    session.add(checkout)
    session.flush()
    return checkout


def _create_at_stripe(session: Session, checkout: CheckoutSession) -> CheckoutSession:
    """Send the attempt's request (committed first) and record the session Stripe made."""
    checkout_id, request, key = checkout.id, checkout.request, idempotency_key("checkout", token=checkout.request_token)
    session.commit()
    try:
        created = call_stripe(
            stripe_client().v1.checkout.sessions.create, params=request, options={"idempotency_key": key}
        )
    except RetryLater as error:
        raise PaymentError("Stripe is not answering right now; nothing was charged. Please try again.") from error
    except (PermanentFailure, stripe.StripeError) as error:
        checkout = session.get_one(CheckoutSession, checkout_id, populate_existing=True)
        guarded_update(session, checkout, ["creating"], status="failed", last_error=str(error)[:500])
        session.commit()
        raise PaymentError(f"Stripe refused the payment page: {_message(error)}") from error
    checkout = session.get_one(CheckoutSession, checkout_id, populate_existing=True)
    guarded_update(session, checkout, ["creating"], status="open", stripe_id=created.id, url=created.url)
    session.commit()
    return checkout


def _message(error: Exception) -> str:
    return (error.user_message if isinstance(error, stripe.StripeError) else None) or str(error)


def refresh_checkout(session: Session, checkout: CheckoutSession) -> CheckoutSession:
    """Ask Stripe how the attempt's session stands and record it (paid funds the problem), in a
    transaction of its own that begins after Stripe answered."""
    checkout_id, stripe_id = checkout.id, checkout.stripe_id
    session.commit()
    try:
        found = call_stripe(
            stripe_client().v1.checkout.sessions.retrieve, stripe_id, params={"expand": ["payment_intent"]}
        )
    except (RetryLater, PermanentFailure, stripe.StripeError) as error:
        raise PaymentError("Stripe is not answering right now; please try again in a minute.") from error
    checkout_changed(session, found.to_dict())
    checkout = session.get_one(CheckoutSession, checkout_id, populate_existing=True)
    session.commit()
    return checkout


def confirm_checkout(session: Session, problem: Problem, stripe_id: str) -> CheckoutSession | None:
    """The success page: Stripe sent the company back with its session's id, so look the session
    up instead of waiting for the webhook, which may never come (the same recording, once)."""
    checkout = session.scalar(
        select(CheckoutSession).where(CheckoutSession.problem_id == problem.id, CheckoutSession.stripe_id == stripe_id)
    )
    if checkout is None or checkout.status not in LIVE:
        return checkout
    try:
        return refresh_checkout(session, checkout)
    except PaymentError as error:  # The webhook or the sweep will record it.
        log.warning("checkout %s: Stripe could not be asked on the success page: %s", stripe_id, error.message)
        return checkout


def checkout_changed(session: Session, data: dict) -> str:
    """What a retrieved session says, recorded as its webhook would be."""
    if data.get("status") == "complete":
        return checkout_completed(session, data)
    if data.get("status") == "expired":
        return checkout_expired(session, data)
    checkout = _checkout_of_session(session, data)
    return "open" if checkout is not None else "unknown checkout session"


def _checkout_of_session(session: Session, data: dict) -> CheckoutSession | None:
    """Our attempt for a Stripe session: by its id, or by the token in its metadata (an attempt
    whose session was made but never recorded), which then records the id."""
    checkout = session.scalar(
        select(CheckoutSession)
        .where(CheckoutSession.stripe_id == data.get("id"))
        .execution_options(populate_existing=True)
    )
    if checkout is None:
        checkout = _checkout_of_metadata(session, data)
        if checkout is not None and checkout.stripe_id is None:
            checkout.stripe_id, checkout.url = data.get("id"), data.get("url")
    return checkout


def _checkout_of_metadata(session: Session, data: dict) -> CheckoutSession | None:
    token = (data.get("metadata") or {}).get("checkout")
    if not token:
        return None
    return session.scalar(
        select(CheckoutSession).where(CheckoutSession.request_token == token).execution_options(populate_existing=True)
    )


def checkout_completed(session: Session, data: dict) -> str:
    """``checkout.session.completed`` or ``…async_payment_succeeded``: a paid session funds and
    opens its problem, once, whichever of the webhook, the success page and the sweep sees it
    first; a session paid by a method that settles later waits for it (``processing``)."""
    checkout = _checkout_of_session(session, data)
    if checkout is None:
        return "unknown checkout session"
    intent = data.get("payment_intent")
    checkout.payment_intent_id = checkout.payment_intent_id or _id_of(intent)
    if data.get("payment_status") not in ("paid", "no_payment_required"):
        if isinstance(intent, dict) and intent.get("status") in ("requires_payment_method", "canceled"):
            return payment_failed(session, data)
        if guarded_update(session, checkout, ["creating", "open"], status="processing"):
            return "waiting for the payment to clear"
        return f"not paid ({data.get('payment_status')}); attempt is {checkout.status}"
    if not guarded_update(session, checkout, [*LIVE, "expired", "failed"], status="complete", completed_at=utcnow()):
        return "already recorded"
    problem = session.get_one(Problem, checkout.problem_id)
    try:
        funding.fund_problem(
            session, problem.id, amount=data["amount_total"], currency=data["currency"], reference=data["id"]
        )
    except ProblemError:
        # Paid after the problem was cancelled or funded by another session: give it back.
        checkout.status = "refunded"
        enqueue(
            session,
            "stripe.refund_payment",
            f"refund:checkout:{checkout.stripe_id}",
            {"payment_intent": checkout.payment_intent_id, "problem_id": problem.id},
        )
        return f"problem is {problem.status.value}; payment refunded"
    enqueue(session, "stripe.record_charge", f"charge:checkout:{checkout.stripe_id}", {"checkout_id": checkout.id})
    _expire_live_sessions(session, problem.id)
    return "funded"


def _expire_live_sessions(session: Session, problem_id: int) -> None:
    """Close the problem's other sessions at Stripe, so that nobody pays twice or too late."""
    for other in session.scalars(
        select(CheckoutSession).where(
            CheckoutSession.problem_id == problem_id,
            CheckoutSession.status.in_(["creating", "open"]),
            CheckoutSession.stripe_id.is_not(None),
        )
    ):
        enqueue(session, "stripe.expire_checkout", f"expire:checkout:{other.stripe_id}", {"stripe_id": other.stripe_id})


def problem_closed(problem: Problem, *, session: Session, **_: Any) -> None:
    """Receiver of ``problem_closed``: its open payment pages are closed at Stripe."""
    _expire_live_sessions(session, problem.id)


def checkout_expired(session: Session, data: dict) -> str:
    """``checkout.session.expired``: the problem waits, and can be paid again."""
    checkout = _checkout_of_session(session, data)
    if checkout is None:
        return "unknown checkout session"
    if guarded_update(session, checkout, ["creating", "open"], status="expired"):
        return "expired"
    return f"attempt is {checkout.status}"


def payment_failed(session: Session, data: dict) -> str:
    """``payment_intent.payment_failed`` or ``checkout.session.async_payment_failed``.

    A failed bank debit (the session completed unpaid) ends its attempt, and the company may
    start a new one. A declined card leaves its session open: Stripe's page takes another card.
    The payment intent's id is recorded either way (it is first seen here when nothing was paid).
    """
    if data.get("object") == "payment_intent":
        intent: Any = data
        checkout = session.scalar(
            select(CheckoutSession)
            .where(CheckoutSession.payment_intent_id == data.get("id"))
            .execution_options(populate_existing=True)
        ) or _checkout_of_metadata(session, data)
    else:
        intent = data.get("payment_intent")
        checkout = _checkout_of_session(session, data)
    if checkout is None:
        return "unknown checkout session"
    checkout.payment_intent_id = checkout.payment_intent_id or _id_of(intent)
    failure = (intent.get("last_payment_error") or {}) if isinstance(intent, dict) else {}
    if failure.get("message") or not checkout.last_error:  # Keep the intent's reason over none.
        checkout.last_error = (failure.get("message") or "the payment failed")[:500]
    attempt_over = data.get("object") == "checkout.session" or checkout.status == "processing"
    if attempt_over and guarded_update(session, checkout, LIVE, status="failed"):
        return "payment failed; a new checkout may start"
    return "recorded"


def _id_of(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def sweep_checkouts(session: Session, now: datetime | None = None) -> dict[int, str]:
    """Periodic: ask Stripe about every live attempt a few minutes old that no webhook settled.

    A webhook can be lost (the app was down past Stripe's retries, an endpoint was replaced);
    the company's money must still open the problem, or go back if the problem was closed. Each
    attempt is asked about at most every ``SWEEP_AFTER``; each Stripe call is made with no
    transaction open, and what it says is recorded in a transaction of its own.
    """
    now = now or utcnow()
    due = session.scalars(
        select(CheckoutSession.id)
        .where(
            CheckoutSession.status.in_(LIVE),
            CheckoutSession.created_at <= now - SWEEP_AFTER,
            or_(CheckoutSession.checked_at.is_(None), CheckoutSession.checked_at <= now - SWEEP_AFTER),
        )
        .order_by(CheckoutSession.checked_at.nulls_first(), CheckoutSession.id)
        .limit(SWEEP_BATCH)
    ).all()
    outcomes = {}
    for checkout_id in due:
        checkout = session.get_one(CheckoutSession, checkout_id, populate_existing=True)
        checkout.checked_at = now
        try:
            outcomes[checkout_id] = _sweep_one(session, checkout, now)
        except PaymentError as error:
            outcomes[checkout_id] = error.message
            log.warning("checkout %s: Stripe could not be asked: %s", checkout_id, error.message)
        session.commit()
    return outcomes


def _sweep_one(session: Session, checkout: CheckoutSession, now: datetime) -> str:
    if checkout.stripe_id is None:
        if checkout.created_at <= now - REPLAYABLE_FOR:
            # Any session made then has expired; a payment on it still reaches us by its metadata.
            checkout.status = "expired"
            return "never recorded; expired"
        checkout = _create_at_stripe(session, checkout)
    checkout = refresh_checkout(session, checkout)
    problem = session.get_one(Problem, checkout.problem_id)
    if checkout.status == "open" and problem.status != ProblemStatus.AWAITING_PAYMENT:
        _expire_live_sessions(session, problem.id)
        return f"problem is {problem.status.value}; closing its session"
    return checkout.status


def record_charge(session: Session, job: Job) -> dict:
    """The problem's charge (the source of its transfers), its receipt, and Stripe's fee on it,
    borne by the platform."""
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
    checkout.charge_id, checkout.receipt_url = charge.id, charge.receipt_url
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


def funding_receipts() -> Subquery:
    """Each funded problem's receipt (``problem_id``, ``receipt_url``): that of the one attempt
    that paid its bounty, whose charge any refund of the problem goes back to. For reports that
    join it by problem (``ledger.reports.payment_records``)."""
    return (
        select(CheckoutSession.problem_id, CheckoutSession.receipt_url)
        .where(CheckoutSession.status == "complete", CheckoutSession.receipt_url.is_not(None))
        .subquery("funding_receipts")
    )


# Refunds ---------------------------------------------------------------------------------------


def refund_posted(problem: Problem, *, session: Session, key: str, amount: int, currency: str, **_: Any) -> None:
    """Receiver of ``refund_posted``: the ``stripe.refund`` job that sends it back.

    The job is named by the ledger's key; the key Stripe sees is drawn now, once, and sent by
    every retry of this refund (``idempotency_key``).
    """
    enqueue(
        session,
        "stripe.refund",
        key,
        {
            "problem_id": problem.id, "company_id": problem.company_id, "amount": amount, "currency": currency,
            "stripe_key": idempotency_key("refund", key),
        },
    )  # fmt: skip


def send_refund(session: Session, job: Job) -> dict[str, Any]:
    """Give a problem's unspent escrow back to the company's card (``refund_posted`` wrote the job).

    The refund counts as returned only when Stripe says ``succeeded``; a ``pending`` one waits
    for its ``refund.updated`` event, and a refusal or a failure leaves it pending in the ledger
    and alerts the admins (``_record_refund``).
    """
    checkout = funding_checkout(session, job.payload["problem_id"])
    session.commit()
    if checkout is None:  # Funded without Stripe (test payments): nothing to send back.
        funding.complete_refund(session, job.idempotency_key, reference="test-payment")
        return {"refund": None}
    try:
        refund = call_stripe(
            stripe_client().v1.refunds.create,
            params={
                "payment_intent": checkout.payment_intent_id,
                "amount": job.payload["amount"],
                "reason": "requested_by_customer",
                "metadata": {
                    "problem_id": str(job.payload["problem_id"]),
                    "key": job.idempotency_key,
                    "attempt": _stripe_key(job),
                },
            },
            options={"idempotency_key": _stripe_key(job)},
        )
    except stripe.StripeError as error:
        reason = refusal_reason(error)
        _alert_admins(
            session,
            f"refund-refused:{job.idempotency_key}",
            f"Stripe refused refund {job.idempotency_key} of problem {job.payload['problem_id']}: {reason}. "
            "The ledger keeps it as owed to the company (refund pending).",
        )
        return {"refused": reason}
    return {"refund": refund.id, "status": _record_refund(session, job.idempotency_key, refund)}


def _stripe_key(job: Job) -> str:
    """The key this job sends to Stripe. Jobs written before keys were drawn at random sent their
    own name, and keep sending it so that their retries stay retries."""
    return job.payload.get("stripe_key") or job.idempotency_key


def _record_refund(session: Session, ledger_key: str, refund: stripe.Refund) -> str:
    """Act on a refund's status as Stripe reports it: only ``succeeded`` returns it in the ledger.

    ``failed`` or ``canceled``: the company did not get its money back, so the ledger keeps it
    in refund pending (owed to the company) and the admins are alerted once.
    """
    if refund.status == "succeeded":
        funding.complete_refund(session, ledger_key, reference=refund.id)
        return "succeeded"
    if refund.status in ("failed", "canceled"):
        reason = (refund.failure_reason or "no reason given").replace("_", " ")
        _alert_admins(
            session,
            f"refund-failed:{refund.id}",
            f"Refund {refund.id} ({ledger_key}) {refund.status}: {reason}. The company has not got its "
            "money back; the ledger keeps it as owed to them (refund pending).",
        )
    return refund.status or "unknown"


def refund_changed(session: Session, data: dict) -> str:
    """``refund.updated``, ``refund.failed``, ``charge.refund.updated``: a refund settled.

    Only refunds this installation sent count (the job named in its metadata, with the key it
    drew), and what Stripe says now is what is recorded, never the event's snapshot: events may
    arrive out of order.
    """
    metadata = data.get("metadata") or {}
    job = session.scalar(select(Job).where(Job.kind == "stripe.refund", Job.idempotency_key == metadata.get("key")))
    if job is None or _stripe_key(job) != metadata.get("attempt"):
        return "not a refund of ours"
    ledger_key = job.idempotency_key
    session.commit()
    refund = call_stripe(stripe_client().v1.refunds.retrieve, data["id"])
    return _record_refund(session, ledger_key, refund)


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
    a member whose address is proven (the account is made for that address).

    No database transaction is open while Stripe answers: the intent (the row and its random
    creation key) is committed first, the account's id after Stripe created it, and the link is
    asked for with nothing open. A retry after a timeout sends the same key and gets the same
    account. This is why this request commits more than once.
    """
    require_verified_email(user, "set up payouts")
    try:
        stripe_id = _account_at_stripe(session, user)
        session.commit()
        link = call_stripe(
            stripe_client().v1.account_links.create,
            params={"account": stripe_id, "type": "account_onboarding",
                    "return_url": return_url, "refresh_url": refresh_url},
        )  # fmt: skip
    except (RetryLater, stripe.StripeError) as error:
        raise PaymentError("Stripe is not answering right now; please try again in a minute.") from error
    return link.url


def _account_at_stripe(session: Session, user: User) -> str:
    """The member's account id at Stripe, creating the account from a recorded intent if need be."""
    account = payout_account(session, user)
    if account is None:
        session.add(PayoutAccount(user_id=user.id, creation_key=idempotency_key("account", f"user-{user.id}")))
        try:
            session.commit()
        except IntegrityError:  # Another request recorded the intent first: use theirs.
            session.rollback()
        account = session.get_one(PayoutAccount, user.id, populate_existing=True)
    if account.stripe_id is not None:
        return account.stripe_id
    key = account.creation_key
    session.commit()
    created = call_stripe(
        stripe_client().v1.accounts.create,
        params={
            "type": "express",
            "email": user.email,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"user_id": str(user.id)},
        },
        options={"idempotency_key": key},
    )
    session.execute(
        update(PayoutAccount)
        .where(PayoutAccount.user_id == user.id, PayoutAccount.stripe_id.is_(None))
        .values(stripe_id=created.id, requirements=_currently_due(created.to_dict()))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return created.id


def _currently_due(account: dict) -> list[str]:
    requirements = account.get("requirements") or {}
    return list(dict.fromkeys([*(requirements.get("currently_due") or []), *(requirements.get("past_due") or [])]))


def account_updated(session: Session, data: dict) -> str:
    """``account.updated``: record what Stripe says about the account *now*.

    The event only says that something changed; its snapshot may be older than one already
    recorded (events arrive out of order), so the account is read again from Stripe.
    """
    if session.scalar(select(PayoutAccount.user_id).where(PayoutAccount.stripe_id == data["id"])) is None:
        return "unknown account"
    return sync_account(session, data["id"])


def sync_account_job(session: Session, job: Job) -> dict:
    """The ``stripe.sync_account`` job: read a payout account again (after a refused transfer)."""
    return {"outcome": sync_account(session, job.payload["stripe_id"])}


def sync_account(session: Session, stripe_id: str) -> str:
    """Read the account from Stripe with no transaction open, and record it (``_record_account``)."""
    session.commit()
    read_at = utcnow()
    fetched = call_stripe(stripe_client().v1.accounts.retrieve, stripe_id)
    return _record_account(session, fetched.to_dict(), read_at=read_at)


def _record_account(session: Session, data: dict, *, read_at: datetime) -> str:
    """Readiness and what Stripe still needs; the member hears of what is due or failed, and
    an account that became ready sends the member's shares, refused ones included.

    A read that began before the one already recorded is dropped, so two reads racing cannot
    leave the older answer behind.
    """
    query = select(PayoutAccount).where(PayoutAccount.stripe_id == data["id"])
    account = session.scalar(query.with_for_update() if _postgres(session) else query)
    if account is None:
        return "unknown account"
    if account.synced_at is not None and account.synced_at >= read_at:
        return "a newer read is recorded"
    was_ready = account.ready
    requirements = data.get("requirements") or {}
    account.synced_at = read_at
    account.details_submitted = bool(data.get("details_submitted"))
    account.payouts_enabled = bool(data.get("payouts_enabled"))
    account.transfers_active = (data.get("capabilities") or {}).get("transfers") == "active"
    account.requirements = _currently_due(data)
    account.requirement_errors = [
        {"requirement": e.get("requirement", ""), "code": e.get("code", ""), "reason": e.get("reason", "")}
        for e in requirements.get("errors") or []
    ]
    account.disabled_reason = requirements.get("disabled_reason")
    fingerprints = sorted(
        {
            bank["fingerprint"]
            for bank in (data.get("external_accounts") or {}).get("data") or []
            if bank.get("fingerprint")
        }
    )
    added = set(fingerprints) - set(account.bank_fingerprints or [])
    account.bank_fingerprints = fingerprints
    if added:
        signals.payout_bank_account_added.send(
            session.get_one(User, account.user_id), session=session, fingerprints=fingerprints
        )
    status = account.status
    if account.details_submitted and (status.needs or status.failures):
        state = json.dumps([account.requirements, account.requirement_errors, account.disabled_reason])
        signals.payout_account_needs_attention.send(
            session.get_one(User, account.user_id),
            session=session,
            event_key=f"account:{account.stripe_id}:{hashlib.sha256(state.encode()).hexdigest()[:16]}",
            requirements=status.needs,
            summary=status.summary(),
        )
    if account.ready and not was_ready:
        ledger.clear_refusals(session, member_id=account.user_id)
        start_payouts(session, user_ids=[account.user_id])
        return "ready"
    return "updated"


# Payouts ---------------------------------------------------------------------------------------


def start_payouts(session: Session, user_ids: list[int] | None = None, share_ids: list[int] | None = None) -> int:
    """Every available share of a member with a ready account and a proven address becomes a
    transfer job, except shares whose transfer was refused: they wait for a change
    (``clear_refusals``). A member whose address is unproven (after changing it) waits too: their
    shares stay available until they confirm it; a transfer already started goes on."""
    query = (
        select(Share)
        .join(PayoutAccount, PayoutAccount.user_id == Share.member_id)
        .where(
            Share.status == ShareStatus.AVAILABLE,
            Share.amount > Share.given,
            Share.payout_refusal.is_(None),
            PayoutAccount.transfers_active.is_(True),
            PayoutAccount.details_submitted.is_(True),
            exists().where(User.id == Share.member_id, User.email_verified_at.is_not(None)),
        )
    )
    if user_ids is not None:
        query = query.where(Share.member_id.in_(user_ids))
    if share_ids is not None:
        query = query.where(Share.id.in_(share_ids))
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
    """After a day of unknown outcomes, look for the transfer before sending one again: every
    transfer of the problem's group, page after page."""
    listed = call_stripe(
        stripe_client().v1.transfers.list, params={"transfer_group": job.payload["transfer_group"], "limit": 100}
    )
    key = _stripe_key(job)
    return next(
        (t for t in listed.auto_paging_iter() if t.metadata and t.metadata.to_dict().get("attempt") == key), None
    )


def payout_started(share: Share, *, session: Session, key: str, **_: Any) -> None:
    """Receiver of ``payout_started``: the ``stripe.transfer`` job of this attempt, named by the
    ledger's key, with the key Stripe sees drawn now for this attempt and every retry of it."""
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
            "stripe_key": idempotency_key("transfer", f"share-{share.id}", f"attempt-{share.payout_attempts}"),
        },
    )


def send_transfer(session: Session, job: Job) -> dict:
    """One transfer per share and attempt, from the problem's charge to the member's account.

    A refusal (``refusal_reason``) parks the share (``_refuse_payout``); anything worth retrying
    is left to the outbox's backoff, with the same key.
    """
    payload = job.payload
    share = session.get_one(Share, payload["share_id"])
    account = session.get(PayoutAccount, payload["member_id"])
    checkout = funding_checkout(session, payload["problem_id"])
    session.commit()
    if share.status != ShareStatus.PAYING:
        return {"skipped": f"share is {share.status.value}"}
    if account is None or account.stripe_id is None or not account.ready:
        _refuse_payout(session, share, "your payout account is not ready")
        return {"refused": "account not ready"}
    if checkout is not None and checkout.charge_id is None:
        raise RetryLater("the problem's charge is not recorded yet")
    transfer = _existing_transfer(job) if needs_lookup(job) else None
    if transfer is None:
        params = {
            "amount": payload["amount"],
            "currency": payload["currency"],
            "destination": account.stripe_id,
            "transfer_group": payload["transfer_group"],
            "metadata": {"share_id": str(share.id), "problem_id": str(share.problem_id), "attempt": _stripe_key(job)},
        }
        if checkout is not None:
            params["source_transaction"] = checkout.charge_id
        try:
            transfer = call_stripe(
                stripe_client().v1.transfers.create, params=params, options={"idempotency_key": _stripe_key(job)}
            )
        except stripe.StripeError as error:
            reason = refusal_reason(error)
            _refuse_payout(session, share, reason, stripe_account=account.stripe_id)
            return {"refused": reason}
    ledger.complete_payout(session, share, transfer_id=transfer.id)
    signals.payout_sent.send(share, session=session, transfer_id=transfer.id, amount=payload["amount"])
    return {"transfer": transfer.id}


def _refuse_payout(session: Session, share: Share, reason: str, *, stripe_account: str | None = None) -> None:
    """The share goes back to available, marked refused, and waits for a change: the member is
    told once and the admins are alerted once (both keyed by the attempt). After a refusal by
    Stripe the account is read again, so that a destination Stripe no longer pays shows as not
    ready, and becoming ready again sends the share."""
    ledger.fail_payout(session, share, reason=reason)
    signals.payout_failed.send(share, session=session, reason=reason, amount=share.payable)
    _alert_admins(
        session,
        f"payout-refused:share:{share.id}:{share.payout_attempts}",
        f"The payout of share {share.id} (member {share.member_id}) was refused: {reason}. It waits for the "
        "member's payout account to become ready again, or for your retry under Admin → Payouts.",
        link="/admin/payouts",
    )
    if stripe_account is not None:
        enqueue(
            session,
            "stripe.sync_account",
            f"sync-account:share:{share.id}:{share.payout_attempts}",
            {"stripe_id": stripe_account},
        )


def refused_payouts(session: Session, actor: User) -> list[Share]:
    """Shares whose transfer was refused, for the admins' page."""
    require_platform_admin(actor)
    return list(session.scalars(ledger.refused_shares()))


def refused_payouts_of(session: Session, user: User) -> list[Share]:
    """The member's own refused shares, for their earnings page."""
    return list(session.scalars(ledger.refused_shares().where(Share.member_id == user.id)))


def retry_refused_payout(session: Session, actor: User, share_id: int) -> bool:
    """An admin sends a refused share again (after the cause was fixed at Stripe): a new attempt
    with a new key, at once if the member's account is ready. Returns whether it was started."""
    require_platform_admin(actor)
    share = session.get(Share, share_id)
    if share is None or not ledger.clear_refusals(session, member_id=share.member_id, share_id=share.id):
        raise NotFound("No refused payout has that number.")
    return start_payouts(session, share_ids=[share.id]) == 1


def payouts_of(session: Session, user: User, window: Window | None = None) -> list[Share]:
    """The member's payouts started or paid, newest first; with a ``window``, that page."""
    query = select(Share).where(Share.member_id == user.id, Share.status.in_([ShareStatus.PAYING, ShareStatus.PAID]))
    if window is not None:
        return list(session.scalars(seek(query, Share.created_at, Share.id, window, descending=True)))
    return list(session.scalars(query.order_by(Share.created_at.desc())))


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
    """``charge.refunded`` only confirms: a refund is recorded by its own status (``_record_refund``)."""
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


def _alert_admins(session: Session, key: str, text: str, link: str = "/admin/disputes") -> None:
    signals.payment_alert.send(None, session=session, key=key, text=text, link=link)
