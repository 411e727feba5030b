"""``flask stripe reconcile``: our records against Stripe's, from both sides.

From ours: every funded problem's charge, Stripe's fee, its refunds and its paid shares' transfers,
and what each member's account received. From Stripe's: every charge, refund and transfer that
carries our metadata or a problem's transfer group must match a row here; one that matches none
is money moved that the app never recorded (a lost webhook, a crash, another installation on the
same Stripe account). Every difference is reported in words with what to do about it, and what
Stripe says that we do not understand is reported too, never raised.
"""

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.ledger.models import LedgerTransaction, Share, ShareStatus, TransactionKind
from marketplace.ledger.posting import transaction_by_key
from marketplace.ledger.settlement import fund_key
from marketplace.money import format_money
from marketplace.payments.client import stripe_client
from marketplace.payments.models import CheckoutSession, PayoutAccount
from marketplace.payments.service import LIVE
from marketplace.problems.models import Problem

SWEEP = "run `flask stripe sweep`: it funds the problem, or refunds the payment if the problem has closed"


def _all(listing: Any) -> list[Any]:
    """Every item of a Stripe list, following ``has_more``."""
    return list(listing.auto_paging_iter())


def _money(amount: Any, currency: Any) -> str:
    if isinstance(amount, int) and isinstance(currency, str):
        return format_money(amount, currency=currency)
    return f"{amount} {currency}"


def _ours(obj: Any) -> bool:
    """Made by this app: it carries our metadata or a problem's transfer group."""
    metadata = obj.get("metadata") or {}
    group = obj.get("transfer_group") or ""
    return bool({"problem_id", "checkout", "share_id", "key"} & set(metadata)) or group.startswith("problem_")


class Reconciliation:
    """One run: what Stripe lists, read once, and the differences found so far."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.client = stripe_client()
        self.differences: list[str] = []
        self.checkouts = list(session.scalars(select(CheckoutSession)))
        self.by_intent = {c.payment_intent_id: c for c in self.checkouts if c.payment_intent_id}
        self.by_token = {c.request_token: c for c in self.checkouts}
        self.charges = [c.to_dict() for c in _all(self.client.v1.charges.list(params={"limit": 100}))]
        self.refunds = [r.to_dict() for r in _all(self.client.v1.refunds.list(params={"limit": 100}))]
        self.transfers = {t.id: t.to_dict() for t in _all(self.client.v1.transfers.list(params={"limit": 100}))}

    def differ(self, what: str, to_do: str) -> None:
        self.differences.append(f"{what} What to do: {to_do}.")

    def run(self) -> list[str]:
        paid_out: dict[str, int] = defaultdict(int)
        for checkout in self.checkouts:
            if checkout.status == "complete":
                self.funded_problem(checkout, paid_out)
        self.members(paid_out)
        self.stripe_charges()
        self.stripe_refunds()
        self.stripe_transfers()
        return self.differences

    # From our side ------------------------------------------------------------------------------

    def funded_problem(self, checkout: CheckoutSession, paid_out: dict[str, int]) -> None:
        session = self.session
        problem = session.get_one(Problem, checkout.problem_id)
        label = f"Problem {problem.id} (“{problem.title}”):"
        currency = problem.currency
        if checkout.payment_intent_id is None:
            self.differ(
                f"{label} checkout {checkout.stripe_id} is complete but has no payment intent.",
                f"look the session up in Stripe's dashboard and compare it with the ledger's funding ({SWEEP})",
            )
            return
        try:
            intent = self.client.v1.payment_intents.retrieve(
                checkout.payment_intent_id, params={"expand": ["latest_charge.balance_transaction"]}
            ).to_dict()
        except stripe.StripeError as error:
            self.differ(
                f"{label} Stripe cannot show its payment {checkout.payment_intent_id}: {error.user_message or error}",
                "check that STRIPE_SECRET_KEY is the account that took the payment, then look the payment up "
                "in Stripe's dashboard",
            )
            return
        charge = intent.get("latest_charge")
        if not isinstance(charge, dict):
            self.differ(
                f"{label} Stripe's payment {checkout.payment_intent_id} has no charge ({intent.get('status')}).",
                "look the payment up in Stripe's dashboard; the ledger says the bounty was paid",
            )
            return
        funded = transaction_by_key(session, fund_key(problem.id))
        if funded is None:
            self.differ(
                f"{label} Stripe charged {_money(charge.get('amount'), currency)} but the ledger has no funding.",
                SWEEP,
            )
        elif charge.get("amount") != problem.bounty_amount:
            self.differ(
                f"{label} Stripe charged {_money(charge.get('amount'), currency)}, "
                f"the bounty is {_money(problem.bounty_amount, currency)}.",
                "refund or collect the difference in Stripe's dashboard and record it with an admin",
            )

        balance = charge.get("balance_transaction")
        fee = balance.get("fee", 0) if isinstance(balance, dict) else 0
        fee_recorded = _sum_kind(session, problem.id, TransactionKind.PROCESSOR_FEE, "processor:fees")
        if fee != fee_recorded:
            self.differ(
                f"{label} Stripe's fee is {_money(fee, currency)}, "
                f"the ledger recorded {_money(fee_recorded, currency)}.",
                "check the `stripe.record_charge` job of this problem on the admin jobs page and retry it",
            )

        refunded_at_stripe = charge.get("amount_refunded", 0)
        refunded_in_ledger = _sum_kind(
            session, problem.id, TransactionKind.REFUND, f"company:{problem.company_id}:refunded"
        )
        if refunded_at_stripe != refunded_in_ledger:
            self.differ(
                f"{label} Stripe refunded {_money(refunded_at_stripe, currency)}, "
                f"the ledger says {_money(refunded_in_ledger, currency)}.",
                "check the problem's `stripe.refund` jobs on the admin jobs page (a parked one needs a retry)",
            )

        shares = session.scalars(
            select(Share).where(
                Share.problem_id == problem.id, Share.status.in_([ShareStatus.PAID, ShareStatus.REVERSED])
            )
        )
        for share in shares:
            transfer = self.transfers.get(share.transfer_reference)
            owed = share.amount - share.given if share.status == ShareStatus.PAID else 0
            if transfer is None:
                self.differ(
                    f"{label} share {share.id} is paid by {share.transfer_reference}, which Stripe does not have.",
                    "look the transfer up in Stripe's dashboard; if it was never made, move the share back to "
                    "available with an admin so that it is sent again",
                )
                continue
            moved = transfer.get("amount", 0) - transfer.get("amount_reversed", 0)
            if moved != owed:
                self.differ(
                    f"{label} share {share.id} paid {_money(owed, currency)}, transfer {transfer['id']} moved "
                    f"{_money(moved, currency)}.",
                    "compare the transfer and its reversals in Stripe's dashboard with the share",
                )
            else:
                paid_out[transfer.get("destination") or ""] += owed

    def members(self, paid_out: dict[str, int]) -> None:
        received: dict[str, int] = defaultdict(int)
        for transfer in self.transfers.values():
            moved = transfer.get("amount", 0) - transfer.get("amount_reversed", 0)
            received[transfer.get("destination") or ""] += moved
        for account in self.session.scalars(select(PayoutAccount)):
            if account.stripe_id is None:  # Still being created at Stripe: nothing can have moved to it.
                continue
            if received[account.stripe_id] != paid_out[account.stripe_id]:
                self.differ(
                    f"Member {account.user_id}: Stripe moved {received[account.stripe_id]} (minor units) to "
                    f"{account.stripe_id}, the ledger paid {paid_out[account.stripe_id]}.",
                    "compare the account's transfers in Stripe's dashboard with the member's paid shares",
                )

    # From Stripe's side -------------------------------------------------------------------------

    def checkout_of(self, obj: dict) -> CheckoutSession | None:
        token = (obj.get("metadata") or {}).get("checkout")
        return self.by_intent.get(obj.get("payment_intent") or "") or self.by_token.get(token or "")

    def stripe_charges(self) -> None:
        for charge in self.charges:
            if not _ours(charge) or charge.get("status") != "succeeded":
                continue
            amount = _money(charge.get("amount"), charge.get("currency"))
            problem = (charge.get("metadata") or {}).get("problem_id", "?")
            what = f"Stripe charge {charge.get('id')} of {amount} (payment {charge.get('payment_intent')}, "
            what += f"problem {problem})"
            checkout = self.checkout_of(charge)
            kept = charge.get("amount", 0) - charge.get("amount_refunded", 0)
            if checkout is None:
                self.differ(
                    f"{what} matches no checkout in this database.",
                    "if another installation (staging, an old database) shares this Stripe account, reconcile it "
                    "there; otherwise refund the charge in Stripe's dashboard",
                )
            elif checkout.status in LIVE:
                self.differ(f"{what} was never recorded: the attempt is still {checkout.status}.", SWEEP)
            elif checkout.status == "refunded" and kept:
                self.differ(
                    f"{what} arrived after its problem closed; "
                    f"{_money(kept, charge.get('currency'))} is not refunded yet.",
                    "check the `stripe.refund_payment` job on the admin jobs page (a parked one needs a retry)",
                )
            elif checkout.status in ("expired", "failed") and kept:
                self.differ(
                    f"{what} was taken on an attempt recorded as {checkout.status}.",
                    "refund the charge in Stripe's dashboard, or fund the problem with an admin if it still waits",
                )

    def stripe_refunds(self) -> None:
        recorded = set(
            self.session.scalars(
                select(LedgerTransaction.reference).where(LedgerTransaction.kind == TransactionKind.REFUND)
            )
        )
        for refund in self.refunds:
            checkout = self.checkout_of(refund)
            if checkout is None and not _ours(refund):
                continue
            what = (
                f"Stripe refund {refund.get('id')} of {_money(refund.get('amount'), refund.get('currency'))} "
                f"(payment {refund.get('payment_intent')}, {refund.get('status')})"
            )
            in_ledger = refund.get("id") in recorded
            returned_stray = checkout is not None and checkout.status == "refunded"
            if refund.get("status") in ("failed", "canceled"):
                if in_ledger:
                    self.differ(
                        f"{what} did not go through, but the ledger records it as returned.",
                        "refund the company again in Stripe's dashboard and tell an admin",
                    )
            elif refund.get("status") == "pending":
                continue  # Still the company's in the ledger's refund_pending until Stripe settles it.
            elif not in_ledger and not returned_stray:
                self.differ(
                    f"{what} matches no refund in the ledger.",
                    "if it was made by hand in Stripe's dashboard, record it with an admin; if another "
                    "installation shares this Stripe account, reconcile it there",
                )

    def stripe_transfers(self) -> None:
        recorded = set(self.session.scalars(select(Share.transfer_reference).where(Share.transfer_reference != "")))
        for transfer in self.transfers.values():
            if _ours(transfer) and transfer.get("id") not in recorded:
                self.differ(
                    f"Stripe transfer {transfer.get('id')} of "
                    f"{_money(transfer.get('amount'), transfer.get('currency'))} to {transfer.get('destination')} "
                    f"({transfer.get('transfer_group')}) matches no share.",
                    "check the `stripe.transfer` jobs on the admin jobs page; if the member was paid twice, "
                    "reverse this transfer in Stripe's dashboard",
                )


def reconcile(session: Session) -> list[str]:
    """Every difference between the ledger and Stripe, each with what to do about it."""
    return Reconciliation(session).run()


def _sum_kind(session: Session, problem_id: int, kind: TransactionKind, account_code: str) -> int:
    """What transactions of ``kind`` on a problem put into one account."""
    transactions: Iterable[LedgerTransaction] = session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.problem_id == problem_id, LedgerTransaction.kind == kind)
    )
    return sum(e.amount for t in transactions for e in t.entries if e.account.code == account_code)
