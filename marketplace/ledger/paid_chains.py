"""The money follows the attribution records: ``flask referrals verify`` checks, beside the
records themselves, that every settlement paid the chain head its acceptance recorded and that
every settled share went to the member the records name for its place (docs/audit.md)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.ledger.models import LedgerTransaction, Share, ShareRole, TransactionKind
from marketplace.ledger.settlement import chain_head_of
from marketplace.referrals import attribution
from marketplace.referrals.attribution import Acceptance


def verify_attribution(session: Session) -> list[str]:
    """One line per difference between the records and the referrals, introductions and shares."""
    found, accepted = attribution.verify_records(session)
    return found + _shares_follow(session, {acceptance.problem_id: acceptance for acceptance in accepted})


def _shares_follow(session: Session, accepted: dict[int, Acceptance]) -> list[str]:
    found = []
    settlements = session.execute(
        select(LedgerTransaction.problem_id, LedgerTransaction.reference)
        .where(LedgerTransaction.kind == TransactionKind.SETTLE)
        .order_by(LedgerTransaction.id)
    )
    for problem_id, reference in settlements:
        acceptance = accepted.get(problem_id) if problem_id is not None else None
        paid = chain_head_of(reference)
        if acceptance is None:
            found.append(f"problem {problem_id}: settled, but no acceptance is recorded")
        elif not acceptance.backfilled and paid != acceptance.head:
            found.append(
                f"problem {problem_id}: the settlement paid chain head {attribution.fingerprint(paid)}, "
                f"the recorded acceptance is {attribution.fingerprint(acceptance.head)}"
            )
    shares = session.execute(
        select(Share.id, Share.problem_id, Share.member_id, Share.role, Share.position)
        .where(Share.role != ShareRole.GIFT)
        .order_by(Share.id)
    )
    for share_id, problem_id, member_id, role, position in shares:
        label = f"share {share_id} (problem {problem_id}, {role.value}{f' {position}' if position else ''})"
        acceptance = accepted.get(problem_id)
        if acceptance is None:
            found.append(f"{label}: member_id is {member_id}, but no acceptance is recorded")
            continue
        if role == ShareRole.LINK:
            within = position is not None and 1 <= position <= len(acceptance.chain)
            recorded = acceptance.chain[position - 1] if within and position is not None else None
        else:
            recorded = acceptance.candidate_user_id
        if member_id != recorded:
            found.append(f"{label}: member_id is {member_id}, the attribution records say {recorded}")
    return found
