"""Paying a bounty through Checkout and setting up payouts through Connect onboarding."""

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required

from marketplace.db import db, writes_on_safe_method
from marketplace.links import absolute, checkout_urls
from marketplace.payments import service
from marketplace.referrals import visibility

bp = Blueprint("payments", __name__)


@bp.post("/problems/<int:problem_id>/checkout")
@login_required
def checkout(problem_id: int):
    problem = visibility.get_visible(db.session, current_user, problem_id)
    session = service.start_checkout(db.session, current_user, problem, **checkout_urls(problem.id))
    return redirect(session.url or url_for("problems.show", problem_id=problem.id), code=303)


@bp.get("/problems/<int:problem_id>/funded")
@writes_on_safe_method
@login_required
def funded(problem_id: int):
    """Stripe's success page: the session named by ``session_id`` is looked up at Stripe, so the
    problem opens even when the webhook is late or lost."""
    problem = visibility.get_visible(db.session, current_user, problem_id)
    stripe_id = request.args.get("session_id", "")
    checkout = service.confirm_checkout(db.session, problem, stripe_id) if stripe_id else None
    db.session.refresh(problem)
    if checkout is not None and checkout.status == "refunded":
        flash("The problem had closed before your payment arrived; it is on its way back to your card.", "info")
    elif checkout is not None and checkout.status == "processing":
        flash("Your bank payment is on its way; the problem opens when it clears, usually within days.", "info")
    elif problem.is_open:
        flash("Payment received: the bounty is in escrow and the problem is open to referrals.", "success")
    else:  # The problem page says so and reloads itself until the webhook lands.
        return redirect(url_for("problems.show", problem_id=problem.id, confirming=1))
    return redirect(url_for("problems.show", problem_id=problem.id))


@bp.post("/me/payout-account")
@login_required
def onboard():
    url = service.onboarding_link(
        db.session, current_user, return_url=absolute("payments.onboarded"), refresh_url=absolute("payments.refresh")
    )
    return redirect(url, code=303)


@bp.get("/me/payout-account/return")
@login_required
def onboarded():
    flash("Thank you. Stripe is checking your details; this page shows when payouts are ready.", "info")
    return redirect(url_for("ledger.earnings"))


@bp.get("/me/payout-account/refresh")
@login_required
def refresh():
    """Stripe sends members here when an onboarding link expired or was used: a new link takes
    them straight back to where they were. Without an account there is nothing to continue."""
    account = service.payout_account(db.session, current_user)
    if account is None or account.stripe_id is None:
        flash("Start setting up payouts below.", "info")
        return redirect(url_for("ledger.earnings"))
    url = service.onboarding_link(
        db.session, current_user, return_url=absolute("payments.onboarded"), refresh_url=absolute("payments.refresh")
    )
    return redirect(url, code=303)
