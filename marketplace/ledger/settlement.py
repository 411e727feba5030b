"""A problem's money from funding to the end: fund, settle, release, refund (docs/ledger.md).

Each function posts the ledger transactions of one step, in the caller's database transaction;
the state changes that go with them (the problem's, the introduction's) are the caller's, a
workflow in ``marketplace.workflows``, so that the problem's state and its money are written
together. What each state means for the problem's escrow is in ``docs/ledger.md``; ``verify.py``
checks it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from marketplace import signals
from marketplace.accounts.models import User
from marketplace.db import connection_of, insert_of
from marketplace.errors import NotFound, ValidationError
from marketplace.ledger.accounts import PLATFORM_FEES, STRIPE_BALANCE, company_account, escrow_account, member_account
from marketplace.ledger.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Share,
    ShareRole,
    ShareStatus,
    TransactionKind,
)
from marketplace.ledger.posting import Entry, Posted, balance, post, transaction_by_key
from marketplace.problems import splits
from marketplace.problems.models import Problem
from marketplace.referrals.models import Introduction


class FundingError(ValidationError):
    code = "funding_mismatch"


def fund_key(problem_id: int) -> str:
    return f"fund:problem:{problem_id}"


def settle_key(problem_id: int) -> str:
    return f"settle:problem:{problem_id}"


def refund_key(problem_id: int) -> str:
    """The refund of what a problem's escrow still holds when it closes without a lasting match."""
    return f"refund:problem:{problem_id}"


def remainder_key(problem_id: int) -> str:
    """The refund of the part of the bounty a settlement does not pay out."""
    return f"refund:problem:{problem_id}:remainder"


def guarantee_ends(problem: Problem) -> datetime | None:
    if problem.closed_at is None:
        return None
    return problem.closed_at + timedelta(days=problem.guarantee_days)


# Funding ---------------------------------------------------------------------------------------


def record_funding(session: Session, problem: Problem, *, amount: int, currency: str, reference: str) -> Posted:
    """The bounty was paid: ``stripe:balance`` → the problem's escrow.

    Only the exact bounty is accepted; a payment of another amount is the payment provider's
    business to refund, never something to settle.
    """
    if amount != problem.bounty_amount or currency != problem.currency:
        raise FundingError(
            f"Problem {problem.id} needs {problem.bounty_amount} {problem.currency}; {amount!r} {currency!r} was paid."
        )
    return post(
        session,
        TransactionKind.FUND,
        fund_key(problem.id),
        [Entry(STRIPE_BALANCE, -amount, currency), Entry(escrow_account(problem.id), amount, currency)],
        problem_id=problem.id,
        reference=reference,
        memo="bounty paid",
    )


# Settlement ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareLine:
    user_id: int
    position: int | None
    amount: int


@dataclass(frozen=True)
class SettlementSummary:
    """Where an accepted introduction's bounty went, as posted to the ledger."""

    currency: str
    shares: tuple[ShareLine, ...]
    platform_fee: int
    candidate_share: int
    remainder: int
    # The head of the problem's attribution records that the settlement paid (None before them).
    chain_head: str | None = None

    def as_dict(self) -> dict:
        return {
            "chain_head": self.chain_head,
            "currency": self.currency,
            "shares": [{"user_id": s.user_id, "position": s.position, "amount": s.amount} for s in self.shares],
            "platform_fee": self.platform_fee,
            "candidate_share": self.candidate_share,
            "remainder": self.remainder,
        }


def split_for(problem: Problem, links: int) -> splits.Settlement:
    """The problem's split rule applied to a chain of ``links``; with none (a company member
    introduced the candidate directly) the whole pool returns to the company."""
    if links == 0:
        fee = problem.bounty_amount * problem.platform_fee_bps // splits.BPS_SCALE
        candidate = problem.bounty_amount * problem.candidate_share_bps // splits.BPS_SCALE
        return splits.Settlement(problem.bounty_amount, fee, candidate, (), problem.bounty_amount - fee - candidate)
    return splits.settle_amounts(
        problem.bounty_amount,
        links,
        rule=problem.split_rule,
        params=problem.split_params,
        platform_fee_bps=problem.platform_fee_bps,
        candidate_share_bps=problem.candidate_share_bps,
    )


def chain_reference(chain_head: str) -> str:
    """A settle transaction's reference: the attribution head it paid, fingerprinted and
    append-only with the transaction itself."""
    return f"chain:{chain_head}"


def chain_head_of(reference: str) -> str | None:
    return reference.removeprefix("chain:") if reference.startswith("chain:") else None


def settle(
    session: Session, introduction: Introduction, chain: list[int], now: datetime, *, chain_head: str
) -> SettlementSummary:
    """Divide the bounty of an accepted introduction along ``chain`` (the paid links' user ids,
    top first), in the caller's transaction. ``chain_head`` is the head of the problem's
    attribution records that says so; the settle transaction keeps it as its reference.

    Shares go to each link's ``held`` account (and the candidate's thank-you to theirs, if the
    candidate has an account; otherwise there is nobody to pay and it returns to the company
    with the remainder). An open problem's escrow holds its bounty: ``fund`` writes both in one
    transaction and ``flask ledger verify`` checks it, so it is not read again here (settlement
    is the hot path). With no guarantee period the shares are released at once.
    """
    problem = introduction.problem
    if problem.funded_at is None:
        raise FundingError(f"Problem {problem.id} was never funded; it cannot be settled.")
    split = split_for(problem, len(chain))
    currency = problem.currency
    candidate_id = introduction.candidate_user_id if split.candidate_share else None
    if candidate_id in chain:
        candidate_id = None  # One share per person: a link who put themselves forward keeps the link's.
    candidate_share = split.candidate_share if candidate_id is not None else 0
    remainder = problem.bounty_amount - split.platform_fee - candidate_share - sum(split.shares)
    lines = tuple(
        ShareLine(member_id, position, amount)
        for position, (member_id, amount) in enumerate(zip(chain, split.shares, strict=True), start=1)
    )
    # A share is money owed to a member: links a rule pays nothing get none.
    shares: list[tuple[ShareRole, int | None, int, int]]
    shares = [(ShareRole.LINK, line.position, line.user_id, line.amount) for line in lines if line.amount]
    if candidate_share and candidate_id is not None:
        shares.append((ShareRole.CANDIDATE, None, candidate_id, candidate_share))
    entries = [Entry(member_account(member_id, "held"), amount, currency) for _, _, member_id, amount in shares]
    if split.platform_fee:
        entries.append(Entry(PLATFORM_FEES, split.platform_fee, currency))
    if entries:
        entries.append(Entry(escrow_account(problem.id), -sum(entry.amount for entry in entries), currency))
        posted = post(
            session,
            TransactionKind.SETTLE,
            settle_key(problem.id),
            entries,
            problem_id=problem.id,
            introduction_id=introduction.id,
            reference=chain_reference(chain_head),
            memo="introduction accepted",
        )
        _insert_shares(session, problem, posted.transaction_id, shares, now)
    if remainder:
        refund(session, problem, remainder, remainder_key(problem.id))
    if problem.guarantee_days == 0:
        release_shares(session, problem)
    return SettlementSummary(currency, lines, split.platform_fee, candidate_share, remainder, chain_head)


INSERT_SHARES = insert_of(
    cast(Table, Share.__table__),
    *("problem_id", "member_id", "role", "position", "amount", "given", "currency", "status", "transaction_id"),
    *("payout_attempts", "transfer_reference", "created_at"),
)


def _insert_shares(
    session: Session, problem: Problem, transaction_id: int, shares: list[tuple[Any, ...]], now: datetime
) -> None:
    INSERT_SHARES.executemany(
        connection_of(session),
        [
            {
                "problem_id": problem.id,
                "member_id": member_id,
                "role": role,
                "position": position,
                "amount": amount,
                "given": 0,
                "currency": problem.currency,
                "status": ShareStatus.HELD,
                "transaction_id": transaction_id,
                "payout_attempts": 0,
                "transfer_reference": "",
                "created_at": now,
            }
            for role, position, member_id, amount in shares
        ],
    )


def paid_chain_head(session: Session, problem_id: int) -> str | None:
    """The attribution head the problem's settlement paid (None before acceptance, or for a
    settlement posted before the records existed)."""
    reference = session.scalar(
        select(LedgerTransaction.reference).where(LedgerTransaction.idempotency_key == settle_key(problem_id))
    )
    return chain_head_of(reference) if reference else None


@dataclass(frozen=True)
class ProblemBooks:
    """What the ledger says about one problem's money after it was funded: its settlement (None
    before acceptance), its refunds to the company, and the members its shares pay, loaded."""

    settlement: "SettlementSummary | None"
    refunds: list["RefundLine"]
    members: dict[int, User]


def books_of(session: Session, problem: Problem) -> ProblemBooks:
    """The problem's settlement and refunds in two statements, however long its chain: its
    settlement, remainder and refund transactions with their sums (one grouped read over their
    entries), then its shares with their members."""
    keys = {settle_key(problem.id): "settled", remainder_key(problem.id): "remainder"}
    rows = session.execute(
        select(
            LedgerTransaction.idempotency_key,
            LedgerTransaction.reference,
            LedgerTransaction.kind,
            LedgerEntry.currency,
            func.sum(case((LedgerAccount.code == PLATFORM_FEES, LedgerEntry.amount), else_=0)),
            func.sum(case((LedgerEntry.amount > 0, LedgerEntry.amount), else_=0)),
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.problem_id == problem.id,
            or_(LedgerTransaction.idempotency_key.in_(keys), LedgerTransaction.kind == TransactionKind.REFUND),
        )
        .group_by(
            LedgerTransaction.id,
            LedgerTransaction.idempotency_key,
            LedgerTransaction.reference,
            LedgerTransaction.kind,
            LedgerEntry.currency,
        )
        .order_by(LedgerTransaction.id)
    ).all()
    found = {
        keys[key]: (reference, int(fee), int(incoming)) for key, reference, _, _, fee, incoming in rows if key in keys
    }
    refund_keys = {key for key, _, kind, *_ in rows if kind == TransactionKind.REFUND}
    refunds = [
        RefundLine(key, int(incoming), currency, key + ":done" in refund_keys)
        for key, _, kind, currency, _, incoming in rows
        if kind == TransactionKind.REFUND and not key.endswith(":done") and incoming
    ]
    if not found:
        return ProblemBooks(None, refunds, {})
    shares = session.scalars(
        select(Share)
        .where(Share.problem_id == problem.id, Share.role != ShareRole.GIFT)
        .order_by(Share.role.desc(), Share.position)
        .options(joinedload(Share.member))
    ).all()
    settled, remainder = found.get("settled"), found.get("remainder")
    summary = SettlementSummary(
        problem.currency,
        tuple(ShareLine(s.member_id, s.position, s.amount) for s in shares if s.role == ShareRole.LINK),
        settled[1] if settled else 0,
        sum(s.amount for s in shares if s.role == ShareRole.CANDIDATE),
        remainder[2] if remainder else 0,
        chain_head_of(settled[0]) if settled else None,
    )
    return ProblemBooks(summary, refunds, {s.member_id: s.member for s in shares})


def settlement_of(session: Session, problem: Problem) -> SettlementSummary | None:
    """The settlement of an accepted problem, read back from the ledger (None before acceptance)."""
    return books_of(session, problem).settlement


# The guarantee period --------------------------------------------------------------------------


def release_shares(session: Session, problem: Problem) -> list[Share]:
    """The guarantee held: the problem's held shares become available (the caller settles the
    problem). Returns the shares released with an amount."""
    held = session.scalars(select(Share).where(Share.problem_id == problem.id, Share.status == ShareStatus.HELD)).all()
    entries = []
    for share in held:
        if share.amount:
            entries.append(Entry(member_account(share.member_id, "held"), -share.amount, share.currency))
            entries.append(Entry(member_account(share.member_id, "available"), share.amount, share.currency))
    released = [share for share in held if share.amount]
    if entries:
        post(session, TransactionKind.RELEASE, f"release:problem:{problem.id}", entries, problem_id=problem.id)
    session.execute(
        update(Share)
        .where(Share.problem_id == problem.id, Share.status == ShareStatus.HELD)
        .values(status=ShareStatus.AVAILABLE)
        .execution_options(synchronize_session=False)
    )
    if released:
        signals.shares_released.send(problem, session=session, shares=released)
    return released


# Refunds ---------------------------------------------------------------------------------------


def refund(session: Session, problem: Problem, amount: int, key: str) -> Posted:
    """Escrow → the company's refund pending, announced as ``refund_posted`` so that the payment
    work sends it back under the same key; ``record_refund_returned`` takes it back.
    """
    posted = post(
        session,
        TransactionKind.REFUND,
        key,
        [
            Entry(escrow_account(problem.id), -amount, problem.currency),
            Entry(company_account(problem.company_id, "refund_pending"), amount, problem.currency),
        ],
        problem_id=problem.id,
    )
    signals.refund_posted.send(problem, session=session, key=key, amount=amount, currency=problem.currency)
    return posted


def refund_unspent(session: Session, problem: Problem) -> None:
    """A problem closed unmatched (cancelled or expired): whatever its escrow holds goes back."""
    amount = balance(session, escrow_account(problem.id), problem.currency)
    if amount:
        refund(session, problem, amount, refund_key(problem.id))


def record_refund_returned(session: Session, key: str, *, reference: str) -> tuple[Problem, Posted]:
    """The payment provider returned a refund: refund pending → refunded (posted once, however
    often it is reported). Whether the problem is now refunded in full is the caller's to decide
    (``refunds_of``)."""
    pending = transaction_by_key(session, key)
    if pending is None or pending.kind != TransactionKind.REFUND or key.endswith(":done"):
        raise NotFound(f"No refund {key!r} is waiting.")
    problem = session.get_one(Problem, pending.problem_id)
    (owed,) = [e for e in pending.entries if e.amount > 0]
    posted = post(
        session,
        TransactionKind.REFUND,
        key + ":done",
        [
            Entry(company_account(problem.company_id, "refund_pending"), -owed.amount, owed.currency),
            Entry(company_account(problem.company_id, "refunded"), owed.amount, owed.currency),
        ],
        problem_id=problem.id,
        reference=reference,
    )
    return problem, posted


@dataclass(frozen=True)
class RefundLine:
    key: str
    amount: int
    currency: str
    done: bool


def refunds_of(session: Session, problem: Problem) -> list[RefundLine]:
    """Every refund of the problem to its company, and whether the payment provider returned it."""
    return books_of(session, problem).refunds
