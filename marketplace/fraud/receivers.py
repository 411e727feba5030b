"""The fraud checks hear of every settlement as it happens, inside the accept's transaction."""

from typing import Any

from sqlalchemy.orm import Session

from marketplace.fraud.service import screen_settlement
from marketplace.referrals.models import Introduction


def introduction_accepted(introduction: Introduction, *, session: Session, chain: list[int], **_: Any) -> None:
    screen_settlement(session, introduction, chain)
