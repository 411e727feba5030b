"""A member's balance and gifts, and disputes, over the API."""

import secrets

import marshmallow as ma
from flask_smorest import Blueprint

from marketplace.api.auth import token_required
from marketplace.api.inputs import MULTI_LINE, InputSchema
from marketplace.api.referrals import ROW_ID
from marketplace.db import db
from marketplace.ledger import accounts, donations
from marketplace.money import MINOR_DIGITS
from marketplace.workflows import disputes

blp = Blueprint("ledger_api", __name__, description="Balances, pay it forward, disputes")


class DonationIn(InputSchema):
    to_user_id = ma.fields.Integer(strict=True, required=True, validate=ROW_ID)
    amount = ma.fields.Integer(strict=True, required=True, validate=ma.validate.Range(min=1, max=2**63 - 1))
    currency = ma.fields.String(required=True, validate=ma.validate.OneOf(list(MINOR_DIGITS)))
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))
    idempotency_key = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=64))


class DisputeIn(InputSchema):
    reason = ma.fields.String(required=True, metadata=MULTI_LINE)


class DisputeDecisionIn(InputSchema):
    note = ma.fields.String(load_default="", metadata=MULTI_LINE)


class DisputeOut(ma.Schema):
    id = ma.fields.Integer()
    problem_id = ma.fields.Integer()
    problem_status = ma.fields.Function(lambda d: d.problem.status.value)
    status = ma.fields.Function(lambda d: d.status.value)
    reason = ma.fields.String()
    resolution_note = ma.fields.String()
    opened_at = ma.fields.DateTime()
    resolved_at = ma.fields.DateTime()


@blp.get("/me/balance")
@token_required
def balance(user):
    """Held, available, payout pending and paid per currency, and the transactions behind them:
    each figure is the sum of its ``changes`` over the transactions of that currency."""
    statements = accounts.member_statement(db.session, user.id)
    return {
        "balances": [{"currency": s.currency, **s.figures} for s in statements],
        "transactions": [
            {
                "id": line.transaction.id,
                "kind": line.transaction.kind.value,
                "problem_id": line.transaction.problem_id,
                "memo": line.transaction.memo,
                "created_at": line.transaction.created_at.isoformat(),
                "currency": s.currency,
                "changes": line.changes,
            }
            for s in statements
            for line in s.lines
        ],
    }


@blp.post("/me/donations")
@token_required
@blp.arguments(DonationIn)
def donate(user, data):
    """Pay it forward. Sending the same ``idempotency_key`` again gives once (200 the second time)."""
    posted = donations.donate(
        db.session,
        user,
        to_user_id=data["to_user_id"],
        amount=data["amount"],
        currency=data["currency"],
        key=data["idempotency_key"] or secrets.token_urlsafe(16),
        note=data["note"],
    )
    body = {key: data[key] for key in ("to_user_id", "amount", "currency")}
    return {"transaction_id": posted.transaction_id, **body}, 201 if posted.created else 200


@blp.post("/problems/<int:problem_id>/disputes")
@token_required
@blp.arguments(DisputeIn)
@blp.response(201, DisputeOut)
def open_dispute(user, data, problem_id):
    return disputes.open_dispute(db.session, user, problem_id, reason=data["reason"])


def _decide(user, dispute_id: int, decision: str, note: str):
    dispute = disputes.decide(db.session, user, dispute_id, decision, note=note)
    return dispute


@blp.post("/disputes/<int:dispute_id>/uphold")
@token_required
@blp.arguments(DisputeDecisionIn)
@blp.response(200, DisputeOut)
def uphold(user, data, dispute_id):
    """Platform admins: the introduction failed; claw back every share and refund the company."""
    return _decide(user, dispute_id, "uphold", data["note"])


@blp.post("/disputes/<int:dispute_id>/reject")
@token_required
@blp.arguments(DisputeDecisionIn)
@blp.response(200, DisputeOut)
def reject(user, data, dispute_id):
    """Platform admins: the introduction held; release the shares and settle the problem."""
    return _decide(user, dispute_id, "reject", data["note"])
