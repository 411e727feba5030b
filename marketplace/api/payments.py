"""Payments over the API: fund a bounty, set up payouts, list payouts."""

import marshmallow as ma

from marketplace.api.auth import token_required
from marketplace.api.contract import ApiBlueprint, errors
from marketplace.api.idempotency import idempotent
from marketplace.api.pagination import PAGE_ERRORS, CursorPageOut, PageArgs, cursor_after, window
from marketplace.db import db
from marketplace.errors import Conflict, EmailUnverified, Forbidden
from marketplace.keyset import cut
from marketplace.links import absolute, checkout_urls
from marketplace.payments import service
from marketplace.referrals import visibility

blp = ApiBlueprint("payments_api", __name__, description="Funding and payouts")


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


class PayoutsOut(CursorPageOut):
    items = ma.fields.List(ma.fields.Nested(PayoutOut))


@blp.post("/problems/<int:problem_id>/checkout")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.response(201, CheckoutOut)
def checkout(user, problem_id):
    problem = visibility.get_visible(db.session, user, problem_id)
    session = service.start_checkout(db.session, user, problem, **checkout_urls(problem.id))
    return session


@blp.post("/me/payout-account")
@errors(EmailUnverified, Conflict)
@idempotent
@token_required
@blp.response(200, OnboardingOut)
def payout_account(user):
    url = service.onboarding_link(
        db.session, user, return_url=absolute("payments.onboarded"), refresh_url=absolute("payments.refresh")
    )
    return {"onboarding_url": url}


@blp.get("/me/payouts")
@errors(*PAGE_ERRORS)
@token_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, PayoutsOut)
def payouts(user, args):
    """The caller's payouts, newest first, a page at a time."""
    seen = window(args, "payouts")
    rows = service.payouts_of(db.session, user, seen)
    items, last = cut(rows, seen, lambda share: (share.created_at, share.id))
    return {"items": items, "next_cursor": cursor_after("payouts", last)}


class RetriedOut(ma.Schema):
    started = ma.fields.Boolean(
        metadata={"description": "false: it waits for the member's payout account, and starts once that is ready"}
    )


@blp.post("/payouts/<int:share_id>/retry")
@errors(Forbidden)
@idempotent
@token_required
@blp.response(200, RetriedOut)
def retry_payout(user, share_id):
    """Platform admins: send a payout Stripe refused again (after the cause was fixed), as a new attempt."""
    return {"started": service.retry_refused_payout(db.session, user, share_id)}
