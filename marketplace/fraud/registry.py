"""What the fraud checks add to the app: a receiver on every settlement, and one on every bank
account added to a payout account (docs/fraud.md).

Screening is on unless ``FRAUD_SCREENING`` is false. The test suite turns it off outside
``tests/fraud``: its worlds make every account in the same second, which is exactly what the
account-run and quick-forward signals look for.
"""

from collections.abc import Callable
from typing import Any

from blinker import Signal
from flask import Flask

from marketplace import signals
from marketplace.fraud import receivers


def init_app(app: Flask) -> None:
    wiring: list[tuple[Signal, Callable[..., Any]]] = [
        (signals.introduction_accepted, receivers.introduction_accepted),
        (signals.payout_bank_account_added, receivers.payout_bank_account_added),
    ]
    for signal, receiver in wiring:
        if app.config.get("FRAUD_SCREENING", True):
            signal.connect(receiver, weak=False)
        else:
            signal.disconnect(receiver)
