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
from datetime import datetime
from typing import Any

import stripe
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.accounts.service import require_manager
from marketplace.db import utcnow
from marketplace.errors import Conflict, MarketplaceError, NotFound
from marketplace.jobs.models import Job
from marketplace.jobs.service import OutcomeUnknown, PermanentFailure, RetryLater, enqueue, needs_lookup
from marketplace.ledger import payouts as ledger
from marketplace.ledger.disputes import require_platform_admin
from marketplace.ledger.models import Share, ShareStatus
from marketplace.payments.client import stripe_client
from marketplace.payments.idempotency import idempotency_key
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
    """Create the member's Express account once, and a fresh onboarding link each time.

    No database transaction is open while Stripe answers: the intent (the row and its random
    creation key) is committed first, the account's id after Stripe created it, and the link is
    asked for with nothing open. A retry after a timeout sends the same key and gets the same
    account. This is why this request commits more than once.
    """
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
    """Every available share of a member with a ready account becomes a transfer job, except
    shares whose transfer was refused: they wait for a change (``clear_refusals``)."""
    query = (
        select(Share)
        .join(PayoutAccount, PayoutAccount.user_id == Share.member_id)
        .where(
            Share.status == ShareStatus.AVAILABLE,
            Share.amount > Share.given,
            Share.payout_refusal.is_(None),
            PayoutAccount.transfers_active.is_(True),
            PayoutAccount.details_submitted.is_(True),
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
