"""What the audit log adds to the app: a receiver for every signal that records a state change
that matters (docs/audit.md)."""

from collections.abc import Callable
from typing import Any

from blinker import Signal
from flask import Flask

from marketplace import signals
from marketplace.audit import receivers

RECEIVERS: dict[Signal, Callable[..., Any]] = {
    signals.member_signed_up: receivers.member_signed_up,
    signals.email_verified: receivers.email_verified,
    signals.invitation_withdrawn: receivers.invitation_withdrawn,
    signals.member_removed: receivers.member_removed,
    signals.problem_published: receivers.problem_published,
    signals.problem_funded: receivers.problem_funded,
    signals.problem_closed: receivers.problem_closed,
    signals.referral_sent: receivers.referral_sent,
    signals.referral_claimed: receivers.referral_claimed,
    signals.introduction_awaiting_consent: receivers.introduction_awaiting_consent,
    signals.introduction_proposed: receivers.introduction_proposed,
    signals.introduction_accepted: receivers.introduction_accepted,
    signals.introduction_declined: receivers.introduction_declined,
    signals.introduction_refused: receivers.introduction_refused,
    signals.introduction_withdrawn: receivers.introduction_withdrawn,
    signals.shares_released: receivers.shares_released,
    signals.dispute_opened: receivers.dispute_opened,
    signals.dispute_decided: receivers.dispute_decided,
    signals.payout_sent: receivers.payout_sent,
    signals.payout_failed: receivers.payout_failed,
    signals.fraud_flag_raised: receivers.fraud_flag_raised,
    signals.fraud_flag_decided: receivers.fraud_flag_decided,
}


def init_app(app: Flask) -> None:
    for signal, receiver in RECEIVERS.items():
        signal.connect(receiver, weak=False)
