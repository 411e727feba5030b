"""Referrals, chains and introductions over the API."""

import marshmallow as ma
from flask import g

from marketplace.accounts.models import User
from marketplace.api.auth import token_required
from marketplace.api.contract import ApiBlueprint, errors
from marketplace.api.idempotency import idempotent
from marketplace.api.inputs import MULTI_LINE, InputSchema
from marketplace.api.pagination import PAGE_ERRORS, CursorPageOut, PageArgs, cursor_after, next_link, window
from marketplace.api.problems import bounty_of
from marketplace.db import db
from marketplace.errors import Conflict, EmailUnverified, Forbidden, NotFound
from marketplace.keyset import cut
from marketplace.ledger import donations
from marketplace.ledger.settlement import paid_chain_head
from marketplace.links import referral_link
from marketplace.referrals import appearance, attribution, chains, introductions, read_models, records, visibility
from marketplace.referrals.models import IntroductionStatus
from marketplace.workflows import settlement

blp = ApiBlueprint("referrals_api", __name__, description="Referral chains and introductions")

# An id the database can hold: a larger one is refused here instead of overflowing the query (a 500).
ROW_ID = ma.validate.Range(min=1, max=2**63 - 1)


class ForwardIn(InputSchema):
    to_email = ma.fields.String(load_default=None)
    to_user_id = ma.fields.Integer(strict=True, load_default=None, validate=ROW_ID)
    note = ma.fields.String(load_default="", metadata=MULTI_LINE)


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
    user_id = ma.fields.Integer(allow_none=True, metadata={"description": "null for an anonymous member"})
    name = ma.fields.String()


class ClaimOut(ma.Schema):
    referral = ma.fields.Nested(ReferralOut)
    chain = ma.fields.List(ma.fields.Nested(ChainLinkOut))


class IntroduceIn(InputSchema):
    candidate_email = ma.fields.String(load_default=None)
    candidate_user_id = ma.fields.Integer(strict=True, load_default=None, validate=ROW_ID)
    candidate_name = ma.fields.String(load_default=None)
    message = ma.fields.String(required=True, metadata=MULTI_LINE)


class IntroductionOut(ma.Schema):
    id = ma.fields.Integer()
    problem_id = ma.fields.Integer()
    status = ma.fields.Function(lambda i: i.status.value)
    introducer_id = ma.fields.Method(
        "introducer_seen", metadata={"description": "null when the introducer keeps their name off chains"}
    )
    introducer = ma.fields.Method("introducer_name")
    candidate = ma.fields.Method("candidate_details")
    candidate_note = ma.fields.Method("note_for_company")
    created_at = ma.fields.DateTime()
    chain_fingerprint = ma.fields.Method(
        "fingerprint", metadata={"description": "once accepted: the paid chain head's first 12 hex digits"}
    )

    def fingerprint(self, introduction):
        if introduction.status != IntroductionStatus.ACCEPTED:
            return None
        return attribution.fingerprint(paid_chain_head(db.session, introduction.problem_id))

    def introducer_seen(self, introduction):
        return appearance.id_of(introduction.introducer, _seen_by(introduction.problem_id))

    def introducer_name(self, introduction):
        return appearance.name_of(introduction.introducer, _seen_by(introduction.problem_id))

    def note_for_company(self, introduction):
        return introduction.candidate_note if introductions.company_sees_candidate(introduction) else None

    def candidate_details(self, introduction):
        """Double opt-in: contact details only once the candidate has agreed."""
        if not introductions.company_sees_candidate(introduction):
            return None
        return {
            "user_id": introduction.candidate_user_id,
            "email": introduction.candidate_email,
            "name": introduction.candidate_name,
        }


class AcceptedOut(IntroductionOut):
    settlement = ma.fields.Dict(metadata={"description": "the amounts as posted to the ledger"})


class ConsentIn(InputSchema):
    accept = ma.fields.Boolean(required=True)
    note = ma.fields.String(load_default="", metadata=MULTI_LINE)


class DecisionIn(InputSchema):
    note = ma.fields.String(load_default="", metadata=MULTI_LINE)


def _seen_by(problem_id: int) -> appearance.Viewer:
    """The caller as a viewer of this problem's chains, worked out once per request."""
    cache = g.setdefault("seen_by", {})
    if problem_id not in cache:
        cache[problem_id] = appearance.viewer_on(db.session, g.get("api_user"), problem_id)
    return cache[problem_id]


def _chain(referral):
    viewer = _seen_by(referral.problem_id)
    return [
        {"position": index, "user_id": appearance.id_of(user, viewer), "name": appearance.name_of(user, viewer)}
        for index, user in enumerate(chains.chain_members(referral), start=1)
    ]


@blp.post("/problems/<int:problem_id>/pick")
@errors(Conflict)
@idempotent
@token_required
@blp.response(201, ClaimOut)
def pick(user, problem_id):
    referral = chains.pick_from_board(db.session, user, problem_id)
    return {"referral": referral, "chain": _chain(referral)}


@blp.post("/problems/<int:problem_id>/referrals")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(ForwardIn, example={"to_email": "kim@example.org", "note": "You know replication people."})
@blp.response(201, ReferralOut)
def forward(user, data, problem_id):
    return chains.forward(db.session, user, problem_id, **data)


@blp.post("/referrals/<token>/claim")
@errors(Forbidden, EmailUnverified, Conflict)
@idempotent
@token_required
@blp.response(200, ClaimOut)
def claim(user, token):
    referral = chains.claim(db.session, user, token)
    return {"referral": referral, "chain": _chain(referral)}


class TreeOut(ma.Schema):
    problem_id = ma.fields.Integer()
    roots = ma.fields.List(ma.fields.Dict(), metadata={"description": "each node: its member, children and state"})


@blp.get("/problems/<int:problem_id>/tree")
@token_required
@blp.alt_response(200, schema=TreeOut, success=True)
def tree(user, problem_id):
    problem = visibility.get_visible(db.session, user, problem_id)
    return {
        "problem_id": problem.id,
        "roots": [read_models.tree_as_dict(n) for n in read_models.tree(db.session, user, problem)],
    }


@blp.post("/problems/<int:problem_id>/introductions")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(
    IntroduceIn, example={"candidate_email": "expert@example.org", "message": "She rebuilt replication at scale."}
)
@blp.response(201, IntroductionOut)
def introduce(user, data, problem_id):
    return introductions.introduce(db.session, user, problem_id, **data)


@blp.get("/problems/<int:problem_id>/introductions")
@errors(*PAGE_ERRORS)
@token_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, IntroductionOut(many=True), headers={"Link": {"description": 'the next page: rel="next"'}})
def list_introductions(user, args, problem_id):
    """The company's review list, newest first (an array; ``Link`` to the next page)."""
    problem = visibility.get_visible(db.session, user, problem_id)
    seen = window(args, f"introductions:{problem.id}")
    rows = introductions.introductions_for_problem(db.session, user, problem, seen)
    items, last = cut(rows, seen, lambda introduction: (introduction.created_at, introduction.id))
    return items, next_link(cursor_after(f"introductions:{problem.id}", last), seen.limit)


@blp.post("/introductions/<int:introduction_id>/consent")
@errors(Forbidden, EmailUnverified, Conflict)
@idempotent
@token_required
@blp.arguments(ConsentIn, example={"accept": True, "note": "Happy to talk this week."})
@blp.response(200, IntroductionOut)
def consent(user, data, introduction_id):
    introduction = introductions.get_visible_introduction(db.session, user, introduction_id)
    introductions.consent(db.session, introduction, user, accept=data["accept"], note=data["note"])
    return introduction


@blp.post("/introductions/<int:introduction_id>/accept")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.alt_response(200, schema=AcceptedOut, success=True)
def accept(user, introduction_id):
    result = settlement.accept_introduction(db.session, user, introduction_id)
    body = IntroductionOut().dump(result.introduction)
    body["settlement"] = result.settlement.as_dict()  # The amounts as posted to the ledger.
    return body


@blp.post("/introductions/<int:introduction_id>/decline")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(DecisionIn, example={"note": "We went with another candidate."})
@blp.response(200, IntroductionOut)
def decline(user, data, introduction_id):
    return introductions.decline(db.session, user, introduction_id, note=data["note"])


@blp.post("/introductions/<int:introduction_id>/withdraw")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.response(200, IntroductionOut)
def withdraw(user, introduction_id):
    return introductions.withdraw(db.session, user, introduction_id)


# The member's own lists, as on their dashboard (docs/dashboards.md) -----------------------------

REFERRAL_LISTS = {"places": "places", "received": "received", "sent": "sent"}
INTRODUCTION_LISTS = {"made": "introductions-made", "received": "introductions-received"}


def _list_argument(lists: dict[str, str], description: str) -> ma.fields.String:
    """The ``list`` query argument: one of the names of ``lists``, the first by default."""
    return ma.fields.String(
        load_default=next(iter(lists)), validate=ma.validate.OneOf(list(lists)), metadata={"description": description}
    )


class MemberReferralsArgs(PageArgs):
    list = _list_argument(
        REFERRAL_LISTS,
        "places (the default): the chains the caller is in; received: referrals sent to them that they "
        "have not joined; sent: the referrals they forwarded",
    )


class MemberReferralOut(ma.Schema):
    id = ma.fields.Integer()
    problem_id = ma.fields.Integer()
    problem_title = ma.fields.String(attribute="title")
    bounty = ma.fields.Function(bounty_of)
    depth = ma.fields.Integer(metadata={"description": "the link's place in its chain, 1 at the top"})
    status = ma.fields.Function(lambda r: r.status.value)
    created_at = ma.fields.DateTime()
    token = ma.fields.String(metadata={"description": "what POST /referrals/{link}/claim takes"})
    url = ma.fields.Function(referral_link)
    sender = ma.fields.String(
        attribute="sender_name", allow_none=True, metadata={"description": "null: picked up from the board"}
    )
    recipient = ma.fields.Function(
        lambda r: r.recipient_name or r.recipient_email,
        allow_none=True,
        metadata={"description": "the member's name, or the address it went to"},
    )


class MemberReferralsOut(CursorPageOut):
    items = ma.fields.List(ma.fields.Nested(MemberReferralOut))


@blp.get("/me/referrals")
@errors(*PAGE_ERRORS)
@token_required
@blp.arguments(MemberReferralsArgs, location="query")
@blp.response(200, MemberReferralsOut)
def my_referrals(user, args):
    """One of the caller's lists of referrals, newest first, a page at a time: the dashboard's
    "Chains I am in", "Referrals I have not joined" and "Referrals I sent"."""
    return _member_list(user, args, REFERRAL_LISTS[args["list"]])


class MemberIntroductionsArgs(PageArgs):
    list = _list_argument(
        INTRODUCTION_LISTS, "made (the default): the introductions the caller made; received: those of the caller"
    )


class MemberIntroductionOut(ma.Schema):
    id = ma.fields.Integer()
    problem_id = ma.fields.Integer()
    problem_title = ma.fields.String(attribute="title")
    status = ma.fields.Function(lambda i: i.status.value)
    introducer = ma.fields.String(attribute="introducer_name")
    candidate = ma.fields.Function(lambda i: i.candidate_name or i.candidate_email)
    created_at = ma.fields.DateTime()
    consented_at = ma.fields.DateTime(allow_none=True)
    decided_at = ma.fields.DateTime(allow_none=True)


class MemberIntroductionsOut(CursorPageOut):
    items = ma.fields.List(ma.fields.Nested(MemberIntroductionOut))


@blp.get("/me/introductions")
@errors(*PAGE_ERRORS)
@token_required
@blp.arguments(MemberIntroductionsArgs, location="query")
@blp.response(200, MemberIntroductionsOut)
def my_introductions(user, args):
    """One of the caller's lists of introductions, newest first, a page at a time: the
    dashboard's "Introductions I made" and "Introductions of me" (answer one of the latter with
    POST /introductions/{id}/consent)."""
    return _member_list(user, args, INTRODUCTION_LISTS[args["list"]])


def _member_list(user, args, name: str) -> dict:
    cursor_list = f"member-list:{name}"
    seen = window(args, cursor_list)
    rows = read_models.member_list_after(db.session, user, name, seen)
    items, last = cut(rows, seen, lambda row: (row.created_at, row.id))
    return {"items": items, "next_cursor": cursor_after(cursor_list, last)}


class TrackRecordOut(ma.Schema):
    made = ma.fields.Integer()
    consented = ma.fields.Integer()
    decided = ma.fields.Integer()
    accepted = ma.fields.Integer()
    passed_guarantee = ma.fields.Integer()
    disputed = ma.fields.Integer()
    success_rate = ma.fields.Float(
        metadata={"description": "Bayesian average: (successes + 1) / (decided + 3); a newcomer starts at 1/3"}
    )


class MoneyGivingOut(ma.Schema):
    currency = ma.fields.String()
    earned = ma.fields.Integer()
    passed_on = ma.fields.Integer()
    received = ma.fields.Integer()


class MemberRecordOut(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    track_record = ma.fields.Nested(TrackRecordOut)
    forwards = ma.fields.Integer()
    introductions_for_others = ma.fields.Integer()
    money = ma.fields.List(ma.fields.Nested(MoneyGivingOut))


@blp.get("/members/<int:user_id>/record")
@token_required
@blp.response(200, MemberRecordOut)
def member_record(user, user_id):
    """A member's track record as introducer and giving record (what the member page shows)."""
    person = db.session.get(User, user_id)
    if person is None:
        raise NotFound("No such member.")
    giving = records.giving(db.session, person.id)
    return {
        "id": person.id,
        "name": person.name,
        "track_record": records.track_records(db.session, [person.id])[person.id],
        "forwards": giving.forwards,
        "introductions_for_others": giving.introductions_for_others,
        "money": donations.taken_and_given(db.session, person.id),
    }
