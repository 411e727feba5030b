"""The board, posting and editing problems, and the problem page."""

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from markupsafe import Markup

from marketplace.accounts.service import require_poster, user_id_named_in
from marketplace.audit import history
from marketplace.caching import cached_for_visitors
from marketplace.config import current_settings
from marketplace.db import Read, db
from marketplace.errors import Forbidden, MarketplaceError, ValidationError
from marketplace.extensions import reach_graph
from marketplace.ledger import settlement
from marketplace.money import parse_major
from marketplace.problems import service, splits
from marketplace.problems.models import Problem, ProblemStatus
from marketplace.referrals import attribution, read_models, visibility
from marketplace.web.forms.problems import ForwardForm, IntroduceForm, ProblemForm
from marketplace.web.ledger import problem_money
from marketplace.web.navigation import member_read
from marketplace.web.reach_panel import reach_panel
from marketplace.web.tree_picture import AFTER_ACCEPTANCE, sketch, tree_section
from marketplace.web.util import form_error, form_markup, int_arg, reads_ahead, rendered_once
from marketplace.workflows import funding
from marketplace.workflows.reach import problem_page_reach, reach_reads

bp = Blueprint("problems", __name__)


def _viewer():
    return current_user if current_user.is_authenticated else None


@bp.get("/problems")
@cached_for_visitors
def board():
    """The board; a filter that cannot be read is named above the whole board instead of
    replacing the page with an error."""
    message, status = None, 200
    try:
        query = _board_query()
        page = visibility.board(db.session, _viewer(), query)
    except MarketplaceError as error:
        message, status = f"{error.message} Showing every open problem instead.", 400
        query = service.BoardQuery()
        page = visibility.board(db.session, _viewer(), query)
    return (
        render_template("problems/board.html", page=page, query=query, args=request.args, message=message),
        status,
    )


def _board_query() -> service.BoardQuery:
    currency = request.args.get("currency", "").lower()
    bounds: dict[str, Any] = {}
    for name, label in (("min_bounty", "Minimum bounty"), ("max_bounty", "Maximum bounty")):
        raw = request.args.get(name, "").strip()
        if raw:  # The board takes amounts in major units; compare in minor units of USD by default.
            try:
                bounds[name] = parse_major(raw, currency or "usd")
            except ValidationError as error:
                raise ValidationError(f"{label}: {error.message}", code=error.code) from None
    return service.BoardQuery(
        q=request.args.get("q", ""),
        skill=request.args.get("skill", ""),
        currency=currency,
        sort=request.args.get("sort", "newest"),
        page=int_arg("page") or 1,
        **bounds,
    )


@bp.route("/companies/<int:company_id>/problems/new", methods=["GET", "POST"])
@login_required
def new(company_id: int):
    require_poster(db.session, current_user, company_id)
    form = ProblemForm()
    if form.preview.data:
        pass  # "Preview the split" without script: the page again, with the split below
    elif form.validate_on_submit():
        try:
            problem = service.create_problem(
                db.session,
                current_user,
                company_id,
                form.to_input(),
                publish=form.publish.data,
                platform_fee_bps=current_app.config["PLATFORM_FEE_BPS"],
            )
        except MarketplaceError as error:
            form_error(form, error)
        else:
            flash(
                "Saved as a draft."
                if problem.status == ProblemStatus.DRAFT
                else "Published. Fund the bounty to open it to referrals.",
                "success",
            )
            return redirect(url_for("problems.show", problem_id=problem.id))
    return render_template(
        "problems/edit.html",
        form=form,
        problem=None,
        company_id=company_id,
        rules=splits.SPLIT_RULES,
        **split_preview_of(form),
    )


@bp.route("/problems/<int:problem_id>/edit", methods=["GET", "POST"])
@login_required
def edit(problem_id: int):
    problem = service.company_problem(db.session, current_user, problem_id)
    form = ProblemForm.for_problem(problem)
    if form.preview.data:
        pass
    elif form.validate_on_submit():
        try:
            service.update_draft(db.session, current_user, problem_id, form.to_input(), publish=form.publish.data)
        except MarketplaceError as error:
            form_error(form, error)
        else:
            flash("Saved.", "success")
            return redirect(url_for("problems.show", problem_id=problem.id))
    return render_template(
        "problems/edit.html",
        form=form,
        problem=problem,
        company_id=problem.company_id,
        rules=splits.SPLIT_RULES,
        **split_preview_of(form),
    )


def split_preview_of(form: ProblemForm) -> dict[str, Any]:
    """The split of the bounty typed so far, or what keeps it from being shown."""
    try:
        rows = form.split_preview(current_app.config["PLATFORM_FEE_BPS"])
    except MarketplaceError as error:
        return {"split_preview": None, "split_preview_error": error.message, "split_currency": form.currency.data}
    return {"split_preview": rows, "split_preview_error": None, "split_currency": form.currency.data}


@bp.get("/problems/split-preview")
@login_required
def split_preview():
    """The posting form's split table for the values typed so far, as an HTML fragment that
    ``static/split-preview.js`` puts in place on every change (the "Preview the split" button
    does the same without script)."""
    form = ProblemForm(formdata=request.args, meta={"csrf": False})
    return render_template("problems/_split_preview.html", **split_preview_of(form))


def member_page_reads(problem_id: int) -> list[Read]:
    """What the problem page reads for a member by the ids it knows before it reads anything:
    the member with their navigation bar, the problem with their role, its chains, its history
    and what the reach search reads first. Asked together on PostgreSQL (``db.reading_ahead``),
    one round trip instead of six; only the names along the reach panel's paths wait for the
    search. None for a visitor, whose page comes from the cache."""
    # Flask-Login keeps the member's session id (``User.get_id``) under this key.
    member_id = user_id_named_in(session.get("_user_id"))
    if member_id is None:
        return []
    return [
        member_read(member_id),
        visibility.problem_with_role_read(member_id, problem_id),
        read_models.chains_read(problem_id),
        history.problem_entries_read(problem_id),
        *reach_reads(reach_graph(), problem_id),
    ]


@bp.get("/problems/<int:problem_id>")
@reads_ahead(member_page_reads)
@cached_for_visitors
def show(problem_id: int):
    return render_problem_page(problem_id)


def render_problem_page(
    problem_id: int, *, forward_form: ForwardForm | None = None, introduce_form: IntroduceForm | None = None
) -> str:
    """The problem page; a form that did not go through is passed back to show what was typed
    beside its errors."""
    viewer = _viewer()
    page = read_models.problem_page(db.session, viewer, problem_id)
    problem, role, place = page.problem, page.role, page.chains.place
    chain = page.chains.members_to(place)
    tree = page.chains.tree() if role is not None or place is not None else []
    context: dict[str, Any] = {
        "problem": problem,
        "role": role,
        "place": place,
        "rule": splits.SPLIT_RULES[problem.split_rule],
        "split_table": split_table(problem, highlight=len(chain) or None),
        # A visitor's page carries no form, so no CSRF token and no session (it is cached).
        "forward_form": form_markup(forward_form, ForwardForm, url_for("referrals.forward", problem_id=problem.id))
        if viewer
        else None,
        "introduce_form": form_markup(
            introduce_form, IntroduceForm, url_for("referrals.introduce", problem_id=problem.id)
        )
        if viewer
        else None,
        "chain": chain,
        "seen_by": page.chains.seen_by,
        "introductions": page.introductions,
        "records": page.records,
        "chains": {i.id: page.chains.members_to(i.referral) for i in page.introductions},
        "reach_panel": None,
        "payments_configured": payments_configured(),
        # Checkout's cancel address (marketplace.links.checkout_urls) comes back here.
        "payment_cancelled": viewer is not None and request.args.get("payment") == "cancelled",
        "history": history.problem_history(db.session, page),
        "confirming": confirming_payment(problem, role),
        "confirming_reloads": CONFIRMING_RELOADS,
    }
    # The ledger is read once, for the company's money section, the paid chain in the tree's
    # picture and the fingerprint of the chain it paid.
    books = settlement.books_of(db.session, problem) if page.involved and problem.status not in UNFUNDED else None
    paid = books.settlement if books else None
    context["money"] = problem_money(problem, role, books) if role is not None else None
    context["chain_fingerprint"] = attribution.fingerprint(paid.chain_head) if paid else None
    context["tree_section"] = (
        tree_section(
            sketch(
                problem,
                tree,
                place_id=place.id if place else None,
                introductions=page.introductions,
                shares={line.user_id: line.amount for line in paid.shares}
                if paid and problem.status in AFTER_ACCEPTANCE
                else {},
            )
        )
        if tree
        else None
    )
    if viewer is not None and problem.is_open:
        reach = problem_page_reach(db.session, reach_graph(), viewer, problem, page.chains.holders)
        context["reach_panel"] = reach_panel(problem, reach)
    return render_template("problems/show.html", **context)


def split_table(problem: Problem, highlight: int | None) -> Markup:
    """The problem's table of shares for each length of chain, ``highlight`` the viewer's row.
    It follows from the bounty's terms alone, so each process renders it once for each terms and
    row instead of on every view."""
    return _rendered_split_table(service.BountyTerms.of(problem), highlight)


@rendered_once(maxsize=1024)
def _rendered_split_table(terms: service.BountyTerms, highlight: int | None) -> Markup:
    rows = terms.preview()
    return Markup(render_template("problems/_preview.html", preview=rows, currency=terms.currency, highlight=highlight))


# Nothing is settled, refunded or disputed before a problem is funded: the ledger is not read.
UNFUNDED = (ProblemStatus.DRAFT, ProblemStatus.AWAITING_PAYMENT, ProblemStatus.OPEN)

# The problem page reloads itself every few seconds while Stripe confirms a payment, this many times.
CONFIRMING_RELOADS = 40


def confirming_payment(problem, role) -> int | None:
    """Which reload of the "confirming with Stripe" state this is (``?confirming=N``, set by the
    Checkout success page), for the company while its problem still awaits the webhook; None
    otherwise, and the page then stops reloading."""
    reload = int_arg("confirming")
    if reload is None or role is None or problem.status != ProblemStatus.AWAITING_PAYMENT:
        return None
    return min(reload, CONFIRMING_RELOADS)


@bp.post("/problems/<int:problem_id>/publish")
@login_required
def publish(problem_id: int):
    problem = service.publish(db.session, current_user, problem_id)
    flash("Published. Fund the bounty to open it to referrals.", "success")
    return redirect(url_for("problems.show", problem_id=problem.id))


def payments_configured() -> bool:
    """With Stripe (or its emulator) configured, bounties are paid through Checkout; in
    production they always are, so a missing key never makes a bounty free."""
    settings = current_settings()
    return settings.production or bool(settings.stripe_secret_key or settings.stripe_api_base)


@bp.post("/problems/<int:problem_id>/fund")
@login_required
def fund(problem_id: int):
    """Test payments: without a Stripe key the bounty is marked as paid directly."""
    problem = funding.fund_without_payment(db.session, current_user, problem_id, allowed=not payments_configured())
    flash("The bounty is funded and the problem is open to referrals.", "success")
    return redirect(url_for("problems.show", problem_id=problem.id))


CANCELLABLE = (ProblemStatus.DRAFT, ProblemStatus.AWAITING_PAYMENT, ProblemStatus.OPEN)


@bp.get("/problems/<int:problem_id>/cancel")
@login_required
def confirm_cancel(problem_id: int):
    """Before money moves: what cancelling refunds and who is told."""
    page = read_models.problem_page(db.session, current_user, problem_id)
    problem = page.problem
    if page.role is None or not page.role.manages:
        raise Forbidden("Only the company's owner or an admin can cancel a problem.")
    if problem.status not in CANCELLABLE:
        flash("This problem can no longer be cancelled.", "info")
        return redirect(url_for("problems.show", problem_id=problem.id))
    waiting = [r for r in page.chains.referrals if r.holder_id is not None]
    return render_template("problems/confirm_cancel.html", problem=problem, people_in_chains=len(waiting))


@bp.post("/problems/<int:problem_id>/cancel")
@login_required
def cancel(problem_id: int):
    problem = funding.cancel_problem(db.session, current_user, problem_id)
    flash(
        "The problem is cancelled. The bounty is on its way back to your card."
        if problem.funded_at
        else "The problem is cancelled. Nothing was charged.",
        "info",
    )
    return redirect(url_for("problems.show", problem_id=problem.id))
