"""The fraud checks hear of every settlement as it happens, inside the accept's transaction, and
of every bank account Stripe reports behind a member's payout account."""

from typing import Any

from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.fraud.service import screen_settlement, screen_unpaid_settlements
from marketplace.referrals.models import Introduction


def introduction_accepted(introduction: Introduction, *, session: Session, chain: list[int], **_: Any) -> None:
    screen_settlement(session, introduction, chain)


def payout_bank_account_added(member: User, *, session: Session, **_: Any) -> None:
    screen_unpaid_settlements(session, member)
