"""A member's balance and gifts, and disputes, over the API."""

import secrets

import marshmallow as ma
from flask import request

from marketplace.api.auth import token_required
from marketplace.api.contract import ApiBlueprint, errors
from marketplace.api.idempotency import HEADER, idempotent
from marketplace.api.inputs import MULTI_LINE, InputSchema
from marketplace.api.referrals import ROW_ID
from marketplace.db import db
from marketplace.errors import Conflict, Forbidden, NotFound
from marketplace.fraud import service as fraud
from marketplace.ledger import accounts, donations
from marketplace.money import MINOR_DIGITS
from marketplace.workflows import disputes

blp = ApiBlueprint("ledger_api", __name__, description="Balances, pay it forward, disputes")


class DonationIn(InputSchema):
    to_user_id = ma.fields.Integer(strict=True, required=True, validate=ROW_ID)
    amount = ma.fields.Integer(strict=True, required=True, validate=ma.validate.Range(min=1, max=2**63 - 1))
    currency = ma.fields.String(required=True, validate=ma.validate.OneOf(list(MINOR_DIGITS)))
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))
    idempotency_key = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(min=1, max=64),
        metadata={"description": "deprecated: send the Idempotency-Key header instead", "deprecated": True},
    )


class DonationOut(ma.Schema):
    transaction_id = ma.fields.Integer()
    to_user_id = ma.fields.Integer()
    amount = ma.fields.Integer()
    currency = ma.fields.String()


class BalanceOut(ma.Schema):
    balances = ma.fields.List(ma.fields.Dict(), metadata={"description": "per currency: held, available, paid..."})
    transactions = ma.fields.List(ma.fields.Dict(), metadata={"description": "each with its changes per figure"})


class DisputeIn(InputSchema):
    reason = ma.fields.String(required=True, metadata=MULTI_LINE)


class DisputeDecisionIn(InputSchema):
    note = ma.fields.String(load_default="", metadata=MULTI_LINE)


DECISION_EXAMPLE = {"note": "Checked the meeting notes with both sides."}


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
@blp.alt_response(200, schema=BalanceOut, success=True)
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
@errors(NotFound, Conflict, (422, "insufficient_funds"))
@idempotent
@token_required
@blp.arguments(DonationIn, example={"to_user_id": 7, "amount": 500, "currency": "usd", "note": "Thanks for the intro"})
@blp.alt_response(201, schema=DonationOut, success=True)
@blp.alt_response(200, schema=DonationOut, description="given already: a repeated body idempotency_key")
def donate(user, data):
    """Pay it forward. The ``Idempotency-Key`` header (or the older body ``idempotency_key``, which
    answers 200 the second time) makes a retry give once; the header's key is also the ledger's."""
    posted = donations.donate(
        db.session,
        user,
        to_user_id=data["to_user_id"],
        amount=data["amount"],
        currency=data["currency"],
        key=data["idempotency_key"] or request.headers.get(HEADER) or secrets.token_urlsafe(16),
        note=data["note"],
    )
    body = {key: data[key] for key in ("to_user_id", "amount", "currency")}
    return {"transaction_id": posted.transaction_id, **body}, 201 if posted.created else 200


@blp.post("/problems/<int:problem_id>/disputes")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(DisputeIn, example={"reason": "The expert never came to the first meeting."})
@blp.response(201, DisputeOut)
def open_dispute(user, data, problem_id):
    return disputes.open_dispute(db.session, user, problem_id, reason=data["reason"])


def _decide(user, dispute_id: int, decision: str, note: str):
    dispute = disputes.decide(db.session, user, dispute_id, decision, note=note)
    return dispute


@blp.post("/disputes/<int:dispute_id>/uphold")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(DisputeDecisionIn, example=DECISION_EXAMPLE)
@blp.response(200, DisputeOut)
def uphold(user, data, dispute_id):
    """Platform admins: the introduction failed; claw back every share and refund the company."""
    return _decide(user, dispute_id, "uphold", data["note"])


@blp.post("/disputes/<int:dispute_id>/reject")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(DisputeDecisionIn, example=DECISION_EXAMPLE)
@blp.response(200, DisputeOut)
def reject(user, data, dispute_id):
    """Platform admins: the introduction held; release the shares and settle the problem."""
    return _decide(user, dispute_id, "reject", data["note"])


class FlagOut(ma.Schema):
    id = ma.fields.Integer()
    problem_id = ma.fields.Integer()
    introduction_id = ma.fields.Integer()
    status = ma.fields.Function(lambda flag: flag.status.value)
    note = ma.fields.String()
    raised_at = ma.fields.DateTime()
    decided_at = ma.fields.DateTime(allow_none=True)


@blp.post("/fraud-flags/<int:flag_id>/clear")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(DisputeDecisionIn, example=DECISION_EXAMPLE)
@blp.response(200, FlagOut)
def clear_flag(user, data, flag_id):
    """Platform admins: the chain is genuine; its shares are released when the guarantee ends."""
    return fraud.clear(db.session, user, flag_id, note=data["note"])


@blp.post("/fraud-flags/<int:flag_id>/uphold")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(DisputeDecisionIn, example=DECISION_EXAMPLE)
@blp.response(200, FlagOut)
def uphold_flag(user, data, flag_id):
    """Platform admins: the chain was gamed; claw back its shares and refund the company."""
    return fraud.uphold(db.session, user, flag_id, note=data["note"])
