"""``flask stripe reconcile``: our ledger against what Stripe says happened, problem by problem
and member by member. Every difference is reported in words."""

from collections import defaultdict
from functools import partial

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.ledger.models import LedgerTransaction, Share, ShareStatus, TransactionKind
from marketplace.ledger.posting import transaction_by_key
from marketplace.money import format_money
from marketplace.payments.client import stripe_client
from marketplace.payments.models import CheckoutSession, PayoutAccount
from marketplace.problems.models import Problem


def _all(listing):
    """Every item of a Stripe list, following ``has_more``."""
    return list(listing.auto_paging_iter())


def reconcile(session: Session) -> list[str]:
    client = stripe_client()
    differences: list[str] = []
    paid_out: dict[str, int] = defaultdict(int)
    for checkout in session.scalars(select(CheckoutSession).where(CheckoutSession.status == "complete")):
        problem = session.get_one(Problem, checkout.problem_id)
        label = f"problem {problem.id} (“{problem.title}”)"
        money = partial(format_money, currency=problem.currency)
        if checkout.payment_intent_id is None:
            raise RuntimeError(f"{label}: checkout {checkout.stripe_id} is complete but has no payment intent.")
        intent = client.v1.payment_intents.retrieve(
            checkout.payment_intent_id, params={"expand": ["latest_charge.balance_transaction"]}
        )
        charge = intent.latest_charge
        if not isinstance(charge, stripe.Charge) or isinstance(charge.balance_transaction, str):
            raise RuntimeError(f"{label}: Stripe did not return the payment's charge with its balance transaction.")
        funded = transaction_by_key(session, f"fund:problem:{problem.id}")
        if funded is None:
            differences.append(f"{label}: Stripe charged {money(charge.amount)} but the ledger has no funding.")
        elif charge.amount != problem.bounty_amount:
            differences.append(
                f"{label}: Stripe charged {money(charge.amount)}, the bounty is {money(problem.bounty_amount)}."
            )

        fee_recorded = _sum_kind(session, problem.id, TransactionKind.PROCESSOR_FEE, "processor:fees")
        fee = charge.balance_transaction.fee if charge.balance_transaction else 0
        if fee != fee_recorded:
            differences.append(f"{label}: Stripe's fee is {money(fee)}, the ledger recorded {money(fee_recorded)}.")

        refunded_at_stripe = charge.amount_refunded
        refunded_in_ledger = _sum_kind(
            session, problem.id, TransactionKind.REFUND, f"company:{problem.company_id}:refunded"
        )
        if refunded_at_stripe != refunded_in_ledger:
            differences.append(
                f"{label}: Stripe refunded {money(refunded_at_stripe)}, the ledger says {money(refunded_in_ledger)}."
            )

        transfers = _all(client.v1.transfers.list(params={"transfer_group": f"problem_{problem.id}", "limit": 100}))
        by_id = {t.id: t for t in transfers}
        shares = session.scalars(
            select(Share).where(
                Share.problem_id == problem.id, Share.status.in_([ShareStatus.PAID, ShareStatus.REVERSED])
            )
        )
        for share in shares:
            transfer = by_id.pop(share.transfer_reference, None)
            owed = share.amount - share.given if share.status == ShareStatus.PAID else 0
            if transfer is None:
                differences.append(
                    f"{label}: share {share.id} is paid by {share.transfer_reference}, which Stripe does not have."
                )
            elif transfer.amount - transfer.amount_reversed != owed:
                differences.append(
                    f"{label}: share {share.id} paid {money(owed)}, transfer {transfer.id} moved "
                    f"{money(transfer.amount - transfer.amount_reversed)}."
                )
            else:
                paid_out[transfer.destination] += owed
        for transfer in by_id.values():
            differences.append(
                f"{label}: Stripe has transfer {transfer.id} of {money(transfer.amount)} that no share records."
            )

    for account in session.scalars(select(PayoutAccount)):
        if account.stripe_id is None:  # Still being created at Stripe: nothing can have moved to it.
            continue
        transfers = _all(client.v1.transfers.list(params={"destination": account.stripe_id, "limit": 100}))
        received = sum(t.amount - t.amount_reversed for t in transfers)
        if received != paid_out[account.stripe_id]:
            differences.append(
                f"member {account.user_id}: Stripe moved {received} (minor units) to {account.stripe_id}, "
                f"the ledger paid {paid_out[account.stripe_id]}."
            )
    return differences


def _sum_kind(session: Session, problem_id: int, kind: TransactionKind, account_code: str) -> int:
    """What transactions of ``kind`` on a problem put into one account."""
    transactions = session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.problem_id == problem_id, LedgerTransaction.kind == kind)
    )
    return sum(e.amount for t in transactions for e in t.entries if e.account.code == account_code)
