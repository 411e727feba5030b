"""A share's way to the member's bank: available → payout pending → paid (or back to available,
marked refused, when a transfer is refused for good; or reversed when it comes back), and
Stripe's fee on each charge.

The payment work (``marketplace.payments``) calls these with what Stripe answered; starting a
payout announces ``payout_started``, which is how the transfer job gets written.
"""

from typing import Any, cast

from sqlalchemy import CursorResult, Select, select, update
from sqlalchemy.orm import Session

from marketplace import signals
from marketplace.errors import Conflict
from marketplace.ledger.accounts import PLATFORM_FEES, PROCESSOR_FEES, member_account
from marketplace.ledger.models import Share, ShareStatus, TransactionKind
from marketplace.ledger.posting import Entry, LedgerError, Posted, post


class ShareError(Conflict):
    code = "share_state"


def _move_share(session: Session, share: Share, expected: ShareStatus, new: ShareStatus, **values: Any) -> None:
    """A guarded status change, like a problem's: of two racing callers only one wins."""
    result = session.execute(
        update(Share)
        .where(Share.id == share.id, Share.status == expected)
        .values(status=new, **values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(share)
    if cast(CursorResult, result).rowcount != 1:
        raise ShareError(f"Share {share.id} is {share.status.value.replace('_', ' ')}; it cannot become {new.value}.")


def _payout_key(share: Share) -> str:
    return f"payout:share:{share.id}:{share.payout_attempts}"


def start_payout(session: Session, share: Share) -> Share:
    """Available → payout pending, with the ``stripe.transfer`` job that sends it.

    The job's key names the attempt, so a transfer that failed is sent again under a new key
    while a retried attempt reuses its own.
    """
    if share.payable <= 0:
        raise ShareError(f"Share {share.id} has nothing left to pay out.")
    if share.payout_refusal is not None:
        raise ShareError(f"Share {share.id}'s last transfer was refused; it waits for a change (clear_refusals).")
    _move_share(session, share, ShareStatus.AVAILABLE, ShareStatus.PAYING, payout_attempts=Share.payout_attempts + 1)
    key = _payout_key(share)
    post(
        session,
        TransactionKind.PAYOUT,
        key,
        [
            Entry(member_account(share.member_id, "available"), -share.payable, share.currency),
            Entry(member_account(share.member_id, "payout_pending"), share.payable, share.currency),
        ],
        problem_id=share.problem_id,
    )
    signals.payout_started.send(share, session=session, key=key)
    return share


def complete_payout(session: Session, share: Share, *, transfer_id: str) -> Share:
    """The transfer succeeded: payout pending → paid. Repeating it with the same transfer is a no-op."""
    if share.status == ShareStatus.PAID and share.transfer_reference == transfer_id:
        return share
    _move_share(session, share, ShareStatus.PAYING, ShareStatus.PAID, transfer_reference=transfer_id)
    post(
        session,
        TransactionKind.PAYOUT,
        _payout_key(share) + ":paid",
        [
            Entry(member_account(share.member_id, "payout_pending"), -share.payable, share.currency),
            Entry(member_account(share.member_id, "paid"), share.payable, share.currency),
        ],
        problem_id=share.problem_id,
        reference=transfer_id,
    )
    return share


def fail_payout(session: Session, share: Share, *, reason: str) -> Share:
    """The transfer was refused for good: the money goes back to available, marked refused.

    A refused share is not paid out again until something changes (``clear_refusals``): the
    same request would only be refused again.
    """
    _move_share(session, share, ShareStatus.PAYING, ShareStatus.AVAILABLE, payout_refusal=reason[:500])
    post(
        session,
        TransactionKind.PAYOUT,
        _payout_key(share) + ":failed",
        [
            Entry(member_account(share.member_id, "payout_pending"), -share.payable, share.currency),
            Entry(member_account(share.member_id, "available"), share.payable, share.currency),
        ],
        problem_id=share.problem_id,
        memo=reason,
    )
    return share


def refused_shares() -> Select[Share]:
    """Available shares whose last transfer was refused, oldest first."""
    return (
        select(Share).where(Share.status == ShareStatus.AVAILABLE, Share.payout_refusal.is_not(None)).order_by(Share.id)
    )


def clear_refusals(session: Session, *, member_id: int, share_id: int | None = None) -> int:
    """Something changed (the member's payout account became ready, an admin retries): the
    member's refused shares (or one of them) may be paid out again. Returns how many."""
    query = update(Share).where(
        Share.member_id == member_id, Share.status == ShareStatus.AVAILABLE, Share.payout_refusal.is_not(None)
    )
    if share_id is not None:
        query = query.where(Share.id == share_id)
    result = session.execute(query.values(payout_refusal=None))
    return cast(CursorResult, result).rowcount


def record_reversal(session: Session, share: Share, *, amount: int, reference: str) -> Share:
    """A paid transfer was reversed: paid → reversed, where it waits for an admin's decision.

    Only a whole reversal is modelled; the share keeps its one payout and is never sent again.
    """
    if share.status == ShareStatus.REVERSED:
        return share
    if amount != share.payable:
        raise ShareError(f"Share {share.id}: a partial reversal ({amount} of {share.payable}) needs an admin.")
    _move_share(session, share, ShareStatus.PAID, ShareStatus.REVERSED)
    post(
        session,
        TransactionKind.PAYOUT,
        f"reversal:share:{share.id}:{reference}",
        [
            Entry(member_account(share.member_id, "paid"), -amount, share.currency),
            Entry(member_account(share.member_id, "reversed"), amount, share.currency),
        ],
        problem_id=share.problem_id,
        reference=reference,
    )
    return share


def record_processor_fee(
    session: Session, *, amount: int, currency: str, reference: str, problem_id: int | None = None
) -> Posted:
    """Stripe's fee on a charge, borne by the platform: ``platform:fees`` → ``processor:fees``."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise LedgerError("A processor fee is a positive whole amount.")
    return post(
        session,
        TransactionKind.PROCESSOR_FEE,
        f"processor_fee:{reference}",
        [Entry(PLATFORM_FEES, -amount, currency), Entry(PROCESSOR_FEES, amount, currency)],
        problem_id=problem_id,
        reference=reference,
    )
