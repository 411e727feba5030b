"""What the payment work adds to the app: the Stripe jobs (webhook events among them), the
periodic payout run and checkout sweep, and the receivers that turn posted refunds, started
payouts and closed problems into those jobs (docs/payments.md)."""

from flask import Flask

from marketplace import signals
from marketplace.jobs.service import register_handler, register_periodic
from marketplace.payments import events, service

JOBS = {
    "stripe.record_charge": service.record_charge,
    "stripe.expire_checkout": service.expire_checkout,
    "stripe.refund": service.send_refund,
    "stripe.refund_payment": service.refund_stray_payment,
    "stripe.transfer": service.send_transfer,
    "stripe.sync_account": service.sync_account_job,
    "stripe.event": events.handle_event,
}


def init_app(app: Flask) -> None:
    for kind, perform in JOBS.items():
        register_handler(kind, perform)
    register_periodic("start payouts", service.start_payouts)
    register_periodic("settle checkouts no webhook settled", service.sweep_checkouts)
    signals.refund_posted.connect(service.refund_posted, weak=False)
    signals.payout_started.connect(service.payout_started, weak=False)
    signals.email_verified.connect(service.email_verified, weak=False)
    signals.problem_closed.connect(service.problem_closed, weak=False)
