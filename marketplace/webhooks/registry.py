"""What outbound webhooks add to the app: a receiver for each signal an event type maps to, the
delivery job, and pruning the delivery log (docs/architecture.md, "Signals")."""

from collections.abc import Callable
from typing import Any

from blinker import Signal
from flask import Flask

from marketplace import signals
from marketplace.jobs.service import register_handler, register_periodic
from marketplace.webhooks import receivers
from marketplace.webhooks.service import DELIVER_JOB, deliver, prune_log

RECEIVERS: dict[Signal, Callable[..., Any]] = {
    signals.problem_funded: receivers.problem_funded,
    signals.problem_closed: receivers.problem_closed,
    signals.refund_completed: receivers.refund_completed,
    signals.referral_claimed: receivers.referral_claimed,
    signals.introduction_proposed: receivers.introduction_proposed,
    signals.introduction_accepted: receivers.introduction_accepted,
    signals.shares_released: receivers.shares_released,
    signals.dispute_opened: receivers.dispute_opened,
}


def init_app(app: Flask) -> None:
    """Listen to the signals the event types map to; deliver through the outbox."""
    for signal, receiver in RECEIVERS.items():
        signal.connect(receiver, weak=False)
    register_handler(DELIVER_JOB, deliver)
    register_periodic("prune the webhook delivery log", prune_log)
