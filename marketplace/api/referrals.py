"""Referrals, chains and introductions over the API."""

import marshmallow as ma
from flask_smorest import Blueprint

from marketplace.api.auth import token_required
from marketplace.db import db
from marketplace.ledger.settlement import paid_chain_head
from marketplace.links import referral_link
from marketplace.referrals import attribution, chains, introductions, read_models, visibility
from marketplace.referrals.models import IntroductionStatus
from marketplace.workflows import settlement

blp = Blueprint("referrals_api", __name__, description="Referral chains and introductions")

# An id the database can hold: a larger one is refused here instead of overflowing the query (a 500).
ROW_ID = ma.validate.Range(min=1, max=2**63 - 1)


class ForwardIn(ma.Schema):
    to_email = ma.fields.String(load_default=None)
    to_user_id = ma.fields.Integer(strict=True, load_default=None, validate=ROW_ID)
    note = ma.fields.String(load_default="")


class ReferralOut(ma.Schema):
    id = ma.fields.Integer()
    problem_id = ma.fields.Integer()
    token = ma.fields.String()
    url = ma.fields.Function(referral_link)
    depth = ma.fields.Integer()
    status = ma.fields.Function(lambda r: r.status.value)
    chain_hash = ma.fields.String()


class ChainLinkOut(ma.Schema):
    position = ma.fields.Integer()
    user_id = ma.fields.Integer()
    name = ma.fields.String()


class ClaimOut(ma.Schema):
    referral = ma.fields.Nested(ReferralOut)
    chain = ma.fields.List(ma.fields.Nested(ChainLinkOut))


class IntroduceIn(ma.Schema):
    candidate_email = ma.fields.String(load_default=None)
    candidate_user_id = ma.fields.Integer(strict=True, load_default=None, validate=ROW_ID)
    candidate_name = ma.fields.String(load_default=None)
    message = ma.fields.String(required=True)


class IntroductionOut(ma.Schema):
    id = ma.fields.Integer()
    problem_id = ma.fields.Integer()
    status = ma.fields.Function(lambda i: i.status.value)
    introducer_id = ma.fields.Integer()
    candidate = ma.fields.Method("candidate_details")
    created_at = ma.fields.DateTime()
    chain_fingerprint = ma.fields.Method(
        "fingerprint", metadata={"description": "once accepted: the paid chain head's first 12 hex digits"}
    )

    def fingerprint(self, introduction):
        if introduction.status != IntroductionStatus.ACCEPTED:
            return None
        return attribution.fingerprint(paid_chain_head(db.session, introduction.problem_id))

    def candidate_details(self, introduction):
        """Double opt-in: contact details only once the candidate has agreed."""
        if not introductions.company_sees_candidate(introduction):
            return None
        return {
            "user_id": introduction.candidate_user_id,
            "email": introduction.candidate_email,
            "name": introduction.candidate_name,
        }


class ConsentIn(ma.Schema):
    accept = ma.fields.Boolean(required=True)
    note = ma.fields.String(load_default="")


class DecisionIn(ma.Schema):
    note = ma.fields.String(load_default="")


def _chain(referral):
    return [
        {"position": index, "user_id": user.id, "name": user.name}
        for index, user in enumerate(chains.chain_members(referral), start=1)
    ]


@blp.post("/problems/<int:problem_id>/pick")
@token_required
@blp.response(201, ClaimOut)
def pick(user, problem_id):
    referral = chains.pick_from_board(db.session, user, problem_id)
    return {"referral": referral, "chain": _chain(referral)}


@blp.post("/problems/<int:problem_id>/referrals")
@token_required
@blp.arguments(ForwardIn)
@blp.response(201, ReferralOut)
def forward(user, data, problem_id):
    return chains.forward(db.session, user, problem_id, **data)


@blp.post("/referrals/<token>/claim")
@token_required
@blp.response(200, ClaimOut)
def claim(user, token):
    referral = chains.claim(db.session, user, token)
    return {"referral": referral, "chain": _chain(referral)}


@blp.get("/problems/<int:problem_id>/tree")
@token_required
def tree(user, problem_id):
    problem = visibility.get_visible(db.session, user, problem_id)
    return {
        "problem_id": problem.id,
        "roots": [read_models.tree_as_dict(n) for n in read_models.tree(db.session, user, problem)],
    }


@blp.post("/problems/<int:problem_id>/introductions")
@token_required
@blp.arguments(IntroduceIn)
@blp.response(201, IntroductionOut)
def introduce(user, data, problem_id):
    return introductions.introduce(db.session, user, problem_id, **data)


@blp.get("/problems/<int:problem_id>/introductions")
@token_required
@blp.response(200, IntroductionOut(many=True))
def list_introductions(user, problem_id):
    return introductions.introductions_for_problem(db.session, user, problem_id)


@blp.post("/introductions/<int:introduction_id>/consent")
@token_required
@blp.arguments(ConsentIn)
@blp.response(200, IntroductionOut)
def consent(user, data, introduction_id):
    introduction = introductions.get_visible_introduction(db.session, user, introduction_id)
    introductions.consent(db.session, introduction, user, accept=data["accept"], note=data["note"])
    return introduction


@blp.post("/introductions/<int:introduction_id>/accept")
@token_required
def accept(user, introduction_id):
    result = settlement.accept_introduction(db.session, user, introduction_id)
    body = IntroductionOut().dump(result.introduction)
    body["settlement"] = result.settlement.as_dict()  # The amounts as posted to the ledger.
    return body


@blp.post("/introductions/<int:introduction_id>/decline")
@token_required
@blp.arguments(DecisionIn)
@blp.response(200, IntroductionOut)
def decline(user, data, introduction_id):
    return introductions.decline(db.session, user, introduction_id, note=data["note"])


@blp.post("/introductions/<int:introduction_id>/withdraw")
@token_required
@blp.response(200, IntroductionOut)
def withdraw(user, introduction_id):
    return introductions.withdraw(db.session, user, introduction_id)
