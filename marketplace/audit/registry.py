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
    signals.invitation_created: receivers.invitation_created,
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
    signals.refund_completed: receivers.refund_completed,
    signals.payout_bank_account_added: receivers.payout_bank_account_added,
    signals.payout_sent: receivers.payout_sent,
    signals.payout_failed: receivers.payout_failed,
    signals.fraud_flag_raised: receivers.fraud_flag_raised,
    signals.fraud_flag_decided: receivers.fraud_flag_decided,
    signals.webhook_endpoint_changed: receivers.webhook_endpoint_changed,
    signals.webhook_endpoint_disabled: receivers.webhook_endpoint_disabled,
}


# Signals that change nothing worth a line of their own: a request (the change it asks for is
# recorded when it happens), an echo of an audited change, or a message to people.
NOT_RECORDED: dict[Signal, str] = {
    signals.member_skills_changed: "a profile edit; the network's change log keeps it",
    signals.member_appearance_changed: "a profile edit; the network's change log keeps it",
    signals.password_reset_requested: "a request; nothing changes until the password does",
    signals.email_verification_requested: "a request; member.email_verified records the change",
    signals.chain_grew: "the same event as referral.forwarded or referral.claimed",
    signals.refund_posted: "posted by a cancel, an expiry or a decided dispute, each recorded",
    signals.payout_started: "the ledger's payout transaction; payout.sent or payout.failed records the outcome",
    signals.payout_account_needs_attention: "a message to the member about Stripe's requirements",
    signals.payment_alert: "a message to the platform admins about an event recorded on its own",
    signals.connection_requested: "a request; the network's change log keeps the connection once confirmed",
    signals.connection_confirmed: "the network's change log keeps the connection",
    signals.member_invited_to_join: "an e-mail to an address; join_invitations keeps it",
}


def init_app(app: Flask) -> None:
    for signal, receiver in RECEIVERS.items():
        signal.connect(receiver, weak=False)
