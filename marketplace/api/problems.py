"""Problems over the API: post, edit a draft, publish, cancel, the board and one problem."""

import marshmallow as ma
from flask import current_app

from marketplace.api.auth import current_api_user, token_required
from marketplace.api.contract import ApiBlueprint, errors
from marketplace.api.idempotency import idempotent
from marketplace.api.inputs import MULTI_LINE, InputSchema
from marketplace.api.pagination import PAGE_ERRORS, CursorPageOut, PageArgs, cursor_after, window
from marketplace.caching import cached_for_visitors
from marketplace.db import db
from marketplace.errors import Conflict, Forbidden, NotFound
from marketplace.keyset import cut
from marketplace.problems import service
from marketplace.problems.service import ProblemInput
from marketplace.referrals import visibility
from marketplace.workflows import funding
from marketplace.workflows.settlement import chain_fingerprint

blp = ApiBlueprint("problems_api", __name__, description="Problems and the board")


# An id the database can hold: a larger one is refused here instead of overflowing the query (a 500).
ROW_ID = ma.validate.Range(min=1, max=2**63 - 1)


class BountySchema(InputSchema):
    amount = ma.fields.Integer(required=True, strict=True, metadata={"description": "minor units, e.g. cents"})
    currency = ma.fields.String(required=True)


class ProblemIn(InputSchema):
    company_id = ma.fields.Integer(required=True, strict=True, validate=ROW_ID)
    title = ma.fields.String(required=True)
    description = ma.fields.String(required=True, metadata=MULTI_LINE)
    skills = ma.fields.List(ma.fields.String(), required=True)
    bounty = ma.fields.Nested(BountySchema, required=True)
    split_rule = ma.fields.String(load_default="flat_fee_finder_rest")
    split_params = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(strict=True), load_default=None)
    max_depth = ma.fields.Integer(strict=True, load_default=6)
    guarantee_days = ma.fields.Integer(strict=True, load_default=30)
    candidate_share_bps = ma.fields.Integer(strict=True, load_default=0)
    visibility = ma.fields.String(load_default="public")
    expires_at = ma.fields.AwareDateTime(load_default=None)
    publish = ma.fields.Boolean(load_default=True)


class ProblemUpdateIn(ProblemIn):
    company_id = ma.fields.Integer(load_default=None)
    publish = ma.fields.Boolean(load_default=False)


def bounty_of(problem) -> dict:
    """A problem's bounty as the API writes money: minor units and their currency."""
    return {"amount": problem.bounty_amount, "currency": problem.currency}


class ProblemOut(ma.Schema):
    id = ma.fields.Integer()
    company_id = ma.fields.Integer()
    company = ma.fields.Function(lambda p: p.company.name)
    title = ma.fields.String()
    description = ma.fields.String()
    status = ma.fields.Function(lambda p: p.status.value)
    visibility = ma.fields.Function(lambda p: p.visibility.value)
    skills = ma.fields.Function(lambda p: [s.slug for s in p.skills])
    bounty = ma.fields.Function(bounty_of)
    split_rule = ma.fields.String()
    split_params = ma.fields.Dict()
    platform_fee_bps = ma.fields.Integer()
    candidate_share_bps = ma.fields.Integer()
    max_depth = ma.fields.Integer()
    guarantee_days = ma.fields.Integer()
    expires_at = ma.fields.DateTime()
    created_at = ma.fields.DateTime()
    payout_preview = ma.fields.Method("preview")

    def preview(self, problem):
        return [
            {
                "links": len(s.shares),
                "platform_fee": s.platform_fee,
                "candidate_share": s.candidate_share,
                "shares": list(s.shares),
                "remainder": s.remainder,
            }
            for s in service.payout_preview(problem)
        ]


class ProblemDetailOut(ProblemOut):
    chain_fingerprint = ma.fields.Method(
        "fingerprint",
        metadata={
            "description": "settled problems, to the company and the chain: the paid chain head's first 12 hex digits"
        },
    )

    def fingerprint(self, problem):
        return chain_fingerprint(db.session, current_api_user(), problem)


class BoardArgs(PageArgs):
    q = ma.fields.String(load_default="")
    skill = ma.fields.String(load_default="")
    status = ma.fields.String(load_default="open")
    sort = ma.fields.String(load_default="newest")
    currency = ma.fields.String(load_default="")
    min_bounty = ma.fields.Integer(load_default=None)
    max_bounty = ma.fields.Integer(load_default=None)
    page = ma.fields.Integer(
        load_default=None, metadata={"description": "deprecated: numbered pages of 20; prefer cursor"}
    )


class ProblemSummaryOut(ProblemOut):
    class Meta:
        exclude = ("description", "payout_preview")


class BoardOut(CursorPageOut):
    items = ma.fields.List(ma.fields.Nested(ProblemSummaryOut))
    next_page = ma.fields.Integer(allow_none=True, metadata={"description": "deprecated: see next_cursor"})
    total = ma.fields.Integer()


def _input(data: dict) -> ProblemInput:
    bounty = data["bounty"]
    return ProblemInput(
        title=data["title"],
        description=data["description"],
        skills=data["skills"],
        bounty_amount=bounty["amount"],
        currency=bounty["currency"],
        split_rule=data["split_rule"],
        split_params=data["split_params"],
        max_depth=data["max_depth"],
        guarantee_days=data["guarantee_days"],
        visibility=data["visibility"],
        expires_at=data["expires_at"],
        candidate_share_bps=data["candidate_share_bps"],
    )


PROBLEM_EXAMPLE = {
    "title": "Fix our Postgres replication",
    "description": "Our replica falls hours behind every night.",
    "skills": ["postgres"],
    "bounty": {"amount": 200000, "currency": "usd"},
}


@blp.post("/problems")
@errors(NotFound)
@idempotent
@token_required
@blp.arguments(ProblemIn, example={"company_id": 1, **PROBLEM_EXAMPLE, "publish": False})
@blp.response(201, ProblemOut)
def create_problem(user, data):
    problem = service.create_problem(
        db.session,
        user,
        data["company_id"],
        _input(data),
        publish=data["publish"],
        platform_fee_bps=current_app.config["PLATFORM_FEE_BPS"],
    )
    return problem


@blp.get("/problems")
@cached_for_visitors
@errors(*PAGE_ERRORS, (401, "bad_token"))
@blp.arguments(BoardArgs, location="query")
@blp.response(200, BoardOut)
def list_problems(args):
    """The board, a page at a time: ``limit`` and ``cursor`` (keyset pages, stable while problems
    are posted), or the deprecated numbered ``page`` of 20."""
    limit, cursor, numbered = args.pop("limit"), args.pop("cursor"), args.pop("page")
    viewer = current_api_user()
    if numbered is not None and cursor is None:
        page = visibility.board(db.session, viewer, service.BoardQuery(**args, page=numbered))
        return {"items": page.items, "next_page": page.next_page, "next_cursor": None, "total": page.total}
    list_name = f"board:{args['sort']}"
    seen = window({"limit": limit, "cursor": cursor}, list_name)
    page = visibility.board(db.session, viewer, service.BoardQuery(**args), seen)
    items, last = cut(page.items, seen, lambda problem: service.board_sort_key(problem, args["sort"]))
    first_of_numbered = cursor is None and limit == service.PAGE_SIZE and last is not None
    return {
        "items": items,
        "next_page": 2 if first_of_numbered else None,
        "next_cursor": cursor_after(list_name, last),
        "total": page.total,
    }


@blp.get("/problems/<int:problem_id>")
@cached_for_visitors
@errors((401, "bad_token"))
@blp.response(200, ProblemDetailOut)
def get_problem(problem_id):
    return visibility.get_visible(db.session, current_api_user(), problem_id)


@blp.put("/problems/<int:problem_id>")
@errors(Conflict)
@token_required
@blp.arguments(ProblemUpdateIn, example={**PROBLEM_EXAMPLE, "publish": True})
@blp.response(200, ProblemOut)
def update_problem(user, data, problem_id):
    return service.update_draft(db.session, user, problem_id, _input(data), publish=data["publish"])


@blp.post("/problems/<int:problem_id>/publish")
@errors(Conflict)
@idempotent
@token_required
@blp.response(200, ProblemOut)
def publish_problem(user, problem_id):
    return service.publish(db.session, user, problem_id)


@blp.post("/problems/<int:problem_id>/cancel")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.response(200, ProblemOut)
def cancel_problem(user, problem_id):
    return funding.cancel_problem(db.session, user, problem_id)
