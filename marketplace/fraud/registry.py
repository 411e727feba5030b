"""What the fraud checks add to the app: one receiver, on every settlement (docs/fraud.md).

Screening is on unless ``FRAUD_SCREENING`` is false. The test suite turns it off outside
``tests/fraud``: its worlds make every account in the same second, which is exactly what the
account-run and quick-forward signals look for.
"""

from flask import Flask

from marketplace import signals
from marketplace.fraud import receivers


def init_app(app: Flask) -> None:
    if app.config.get("FRAUD_SCREENING", True):
        signals.introduction_accepted.connect(receivers.introduction_accepted, weak=False)
    else:
        signals.introduction_accepted.disconnect(receivers.introduction_accepted)
