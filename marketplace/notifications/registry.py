"""What notifications add to the app: receivers of the domain signals, the e-mail job and the
digests (docs/architecture.md, "Signals")."""

from collections.abc import Callable
from typing import Any

from blinker import Signal
from flask import Flask

from marketplace import signals
from marketplace.jobs.service import register_handler, register_periodic
from marketplace.notifications import receivers
from marketplace.notifications.mail import send_email_job
from marketplace.notifications.service import send_digests

RECEIVERS: dict[Signal, Callable[..., Any]] = {
    signals.invitation_created: receivers.invitation_created,
    signals.password_reset_requested: receivers.password_reset_requested,
    signals.email_verification_requested: receivers.email_verification_requested,
    signals.member_removed: receivers.member_removed,
    signals.problem_funded: receivers.problem_funded,
    signals.problem_closed: receivers.problem_closed,
    signals.referral_sent: receivers.referral_sent,
    signals.chain_grew: receivers.chain_grew,
    signals.introduction_awaiting_consent: receivers.introduction_awaiting_consent,
    signals.introduction_proposed: receivers.introduction_proposed,
    signals.introduction_accepted: receivers.introduction_accepted,
    signals.introduction_declined: receivers.introduction_declined,
    signals.introduction_refused: receivers.introduction_refused,
    signals.introduction_withdrawn: receivers.introduction_withdrawn,
    signals.shares_released: receivers.shares_released,
    signals.payout_sent: receivers.payout_sent,
    signals.payout_failed: receivers.payout_failed,
    signals.payout_account_needs_attention: receivers.payout_account_attention,
    signals.payment_alert: receivers.payment_alert,
    signals.webhook_endpoint_disabled: receivers.webhook_endpoint_disabled,
    signals.connection_requested: receivers.connection_requested,
    signals.connection_confirmed: receivers.connection_confirmed,
    signals.member_invited_to_join: receivers.member_invited_to_join,
}


def init_app(app: Flask) -> None:
    """Listen to the domain signals; deliver e-mail and digests, and warn of problems closing soon."""
    for signal, receiver in RECEIVERS.items():
        signal.connect(receiver, weak=False)
    register_handler("email.send", send_email_job)
    register_periodic("send digests", send_digests)
    register_periodic("warn of problems closing soon", receivers.warn_problems_closing_soon)
