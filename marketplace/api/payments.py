"""Payments over the API: fund a bounty, set up payouts, list payouts."""

import marshmallow as ma
from flask_smorest import Blueprint

from marketplace.api.auth import token_required
from marketplace.db import db
from marketplace.links import absolute, checkout_urls
from marketplace.payments import service
from marketplace.referrals import visibility

blp = Blueprint("payments_api", __name__, description="Funding and payouts")


class CheckoutOut(ma.Schema):
    checkout_url = ma.fields.String(attribute="url")
    session_id = ma.fields.String(attribute="stripe_id")


class OnboardingOut(ma.Schema):
    onboarding_url = ma.fields.String()


class PayoutOut(ma.Schema):
    amount = ma.fields.Function(lambda share: share.amount - share.given)
    currency = ma.fields.String()
    problem_id = ma.fields.Integer()
    transfer_id = ma.fields.Function(lambda share: share.transfer_reference or None)
    status = ma.fields.Function(lambda share: "paid" if share.status.value == "paid" else "pending")
    created_at = ma.fields.DateTime()


class PayoutsOut(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PayoutOut))


@blp.post("/problems/<int:problem_id>/checkout")
@token_required
@blp.response(201, CheckoutOut)
def checkout(user, problem_id):
    problem = visibility.get_visible(db.session, user, problem_id)
    session = service.start_checkout(db.session, user, problem, **checkout_urls(problem.id))
    return session


@blp.post("/me/payout-account")
@token_required
@blp.response(200, OnboardingOut)
def payout_account(user):
    url = service.onboarding_link(
        db.session, user, return_url=absolute("payments.onboarded"), refresh_url=absolute("payments.refresh")
    )
    return {"onboarding_url": url}


@blp.get("/me/payouts")
@token_required
@blp.response(200, PayoutsOut)
def payouts(user):
    return {"items": service.payouts_of(db.session, user)}
