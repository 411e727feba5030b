"""Picking, forwarding and claiming referrals; introductions and the candidate's consent."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.caching import cached_for_visitors
from marketplace.db import db
from marketplace.errors import Conflict, Forbidden, ValidationError
from marketplace.problems import service as problems
from marketplace.referrals import appearance, chains, introductions, read_models
from marketplace.referrals.models import IntroductionStatus
from marketplace.web.forms.problems import ForwardForm, IntroduceForm
from marketplace.web.problems import render_problem_page
from marketplace.workflows import settlement

bp = Blueprint("referrals", __name__)


def _back(problem_id: int):
    return redirect(url_for("problems.show", problem_id=problem_id))


@bp.post("/problems/<int:problem_id>/pick")
@login_required
def pick(problem_id: int):
    chains.pick_from_board(db.session, current_user, problem_id)
    flash("You hold the first place of a new chain. Forward it to someone who might know the expert.", "success")
    return _back(problem_id)


@bp.post("/problems/<int:problem_id>/forward")
@login_required
def forward(problem_id: int):
    form = ForwardForm()
    if not form.validate_on_submit():
        return render_problem_page(problem_id, forward_form=form)
    try:
        chains.forward(db.session, current_user, problem_id, to_email=form.to_email.data, note=form.note.data)
    except (ValidationError, Conflict) as error:  # shown beside what was typed, which is kept
        db.session.rollback()
        if isinstance(error, ValidationError):
            form.to_email.errors = [*form.to_email.errors, error.message]
        else:
            form.form_errors.append(error.message)
        return render_problem_page(problem_id, forward_form=form)
    flash("Forwarded. We e-mailed them your note and a link; you keep your place whatever happens next.", "success")
    return _back(problem_id)


@bp.post("/problems/<int:problem_id>/introductions")
@login_required
def introduce(problem_id: int):
    form = IntroduceForm()
    if not form.validate_on_submit():
        return render_problem_page(problem_id, introduce_form=form)
    introduction = introductions.introduce(
        db.session,
        current_user,
        problem_id,
        candidate_email=form.candidate_email.data,
        candidate_name=form.candidate_name.data,
        message=form.message.data,
    )
    messages = {
        "duplicate": "Someone introduced this person first; your introduction is kept as a duplicate.",
        "proposed": "You put yourself forward; the company can now review you.",
    }
    flash(
        messages.get(introduction.status.value, "We asked them to agree; the company sees them only after they do."),
        "info" if introduction.status.value == "duplicate" else "success",
    )
    return _back(problem_id)


@bp.get("/r/<token>")
@cached_for_visitors(stamp=chains.last_change)
def landing(token: str):
    """Where a referral link lands: who forwarded it, the chain so far, and a way to join."""
    referral = chains.referral_by_token(db.session, token)
    viewer = current_user if current_user.is_authenticated else None
    chain = chains.chain_members(referral.parent)
    return render_template(
        "referrals/landing.html",
        referral=referral,
        problem=referral.problem,
        chain=chain,
        viewer=viewer,
        seen_by=appearance.viewer_of_link(db.session, viewer, referral),
        preview=problems.payout_preview(referral.problem),
        place=chains.place_of(db.session, viewer, referral.problem_id),
    )


@bp.post("/r/<token>/claim")
@login_required
def claim(token: str):
    referral = chains.claim(db.session, current_user, token)
    flash("You joined the chain. Introduce the expert if you know them, or forward it on.", "success")
    return _back(referral.problem_id)


@bp.route("/i/<token>", methods=["GET", "POST"])
def consent(token: str):
    """The candidate's double opt-in page, reached from the e-mailed link."""
    introduction = introductions.introduction_by_token(db.session, token)
    if request.method == "POST":
        candidate = current_user if current_user.is_authenticated else None
        accept = request.form.get("answer") == "accept"
        introductions.consent(db.session, introduction, candidate, accept=accept, note=request.form.get("note", ""))
        flash(
            "Thank you. The company now sees your introduction."
            if accept
            else "You declined; the company will not see your details.",
            "success" if accept else "info",
        )
        return redirect(url_for("referrals.consent", token=token))
    return render_template("referrals/consent.html", introduction=introduction, problem=introduction.problem)


@bp.get("/introductions/<int:introduction_id>/accept")
@login_required
def confirm_accept(introduction_id: int):
    """Before money moves: who is paid how much if the company accepts, and what comes back."""
    introduction = introductions.get_visible_introduction(db.session, current_user, introduction_id)
    page = read_models.problem_page(db.session, current_user, introduction.problem_id)
    if page.role is None or not page.role.manages:
        raise Forbidden("Only the company's owner or an admin can accept an introduction.")
    if introduction.status != IntroductionStatus.PROPOSED or not page.problem.is_open:
        flash("This introduction is no longer waiting for your decision.", "info")
        return _back(introduction.problem_id)
    chain = page.chains.members_to(introduction.referral)
    split = problems.payout_preview(page.problem, max_links=len(chain))[-1] if chain else None
    return render_template(
        "referrals/confirm_accept.html",
        introduction=introduction,
        problem=page.problem,
        chain=chain,
        split=split,
        seen_by=page.chains.seen_by,
    )


@bp.post("/introductions/<int:introduction_id>/<any(accept, decline, withdraw):action>")
@login_required
def decide(introduction_id: int, action: str):
    if action == "accept":
        introduction = settlement.accept_introduction(db.session, current_user, introduction_id).introduction
        days = introduction.problem.guarantee_days
        message = "Accepted. The bounty is shared along the chain; " + (
            f"each share is paid when the {days}-day guarantee period ends." if days else "each share is paid now."
        )
    elif action == "decline":
        note = request.form.get("note", "")
        introduction = introductions.decline(db.session, current_user, introduction_id, note=note)
        message = "Declined. The introducer is told politely; nobody is blamed."
    else:
        introduction = introductions.withdraw(db.session, current_user, introduction_id)
        message = "Withdrawn."
    flash(message, "success")
    return _back(introduction.problem_id)
