"""The network pages: connections and requests, contact cards, imports and exports, and the
one-click forward of the problem page's reach panel."""

from collections import Counter
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.db import db
from marketplace.errors import MarketplaceError, NotFound
from marketplace.extensions import reach_graph
from marketplace.links import absolute
from marketplace.network import imports, reach_service, service
from marketplace.network.models import ImportStatus
from marketplace.web.forms.network import CardForm, ConnectForm, ImportForm, JoinForm, SuggestionForm
from marketplace.web.util import form_error
from marketplace.workflows import forwarding

bp = Blueprint("network", __name__)

PREVIEW_ROWS = 500


@bp.app_template_global()
def network_counts(user) -> tuple[int, ...]:
    """1st-, 2nd- and 3rd-degree network sizes, for the profile page."""
    return reach_service.degree_counts(db.session, reach_graph(), user)


# Connections -----------------------------------------------------------------------------------


def _network_page(
    connect_form: ConnectForm | None = None, invite_email: str | None = None, invite: JoinForm | None = None
):
    return render_template(
        "network/index.html",
        invite_form=invite,
        degrees=reach_service.degree_counts(db.session, reach_graph(), current_user),
        connections=service.connections_of(db.session, current_user),
        requests=service.pending_requests(db.session, current_user),
        suggestions=service.member_suggestions(db.session, current_user),
        connect_form=connect_form or ConnectForm(),
        suggestion_form=SuggestionForm(),
        invite_email=invite_email,
        invitation=_invitation(invite_email) if invite_email else None,
    )


def _invitation(email: str) -> str:
    """A ready-to-send e-mail, from the member's own mail program, asking someone who is not a
    member yet to join (their sign-up link included)."""
    subject = f"{current_user.name} invites you to Someone who knows"
    body = (
        f"Hi,\n\nI use Someone who knows to pass problems to people who can solve them, and get paid "
        f"when an introduction works. Join me, then we can connect:\n\n{absolute('accounts.signup')}\n\n"
        f"{current_user.name}"
    )
    return f"mailto:{quote(email)}?" + urlencode({"subject": subject, "body": body}, quote_via=quote)


@bp.get("/network")
@login_required
def index():
    return _network_page()


@bp.post("/network/connect")
@login_required
def connect():
    form = ConnectForm()
    if form.validate_on_submit():
        try:
            request_ = service.request_connection(db.session, current_user, email=form.email.data, note=form.note.data)
        except NotFound as error:  # Not a member yet: offer to invite them instead.
            form_error(form, error)
            return _network_page(
                form, invite_email=form.email.data.strip(), invite=JoinForm(email=form.email.data, note=form.note.data)
            )
        except MarketplaceError as error:
            form_error(form, error)
        else:
            return _connected(request_)
    return _network_page(form)


@bp.post("/network/invite")
@login_required
def invite():
    """Invite an address that has no account to join; it becomes a connection request once they
    have (``network.service.invite_to_join``)."""
    form = JoinForm()
    if not form.validate_on_submit():
        flash("Give their e-mail address and a few words on how you know each other.", "danger")
        return redirect(url_for("network.index"))
    try:
        invitation = service.invite_to_join(db.session, current_user, email=form.email.data, note=form.note.data)
    except MarketplaceError as error:
        db.session.rollback()
        flash(error.message, "danger")
        return redirect(url_for("network.index"))
    flash(
        f"We e-mailed {invitation.email} your invitation. Once they join and confirm their address, "
        "your connection request is waiting for them.",
        "success",
    )
    return redirect(url_for("network.index"))


@bp.post("/network/suggestions/<int:user_id>/connect")
@login_required
def connect_suggestion(user_id: int):
    form = SuggestionForm()
    if not form.validate_on_submit():
        flash("Say in a few words how you know each other.", "danger")
        return redirect(url_for("network.index"))
    request_ = service.request_connection(db.session, current_user, user_id=user_id, note=form.note.data)
    return _connected(request_)


def _connected(request_):
    if request_.status.value == "confirmed":
        flash(f"{request_.from_user.name} had already asked you: you are now connected.", "success")
    else:
        flash(f"We asked {request_.to_user.name}; the connection counts once they confirm.", "success")
    return redirect(url_for("network.index"))


@bp.post("/network/requests/<int:request_id>/<any(confirm, decline, cancel):action>")
@login_required
def answer(request_id: int, action: str):
    request_ = service.answer_request(db.session, current_user, request_id, action)
    messages = {
        "confirm": f"You are now connected to {request_.from_user.name}.",
        "decline": "Declined. They are not told why.",
        "cancel": "Request cancelled.",
    }
    flash(messages[action], "success" if action == "confirm" else "info")
    return redirect(url_for("network.index"))


@bp.post("/network/connections/<int:user_id>/remove")
@login_required
def remove(user_id: int):
    service.remove_connection(db.session, current_user, user_id)
    flash("Connection removed.", "info")
    return redirect(url_for("network.index"))


@bp.post("/problems/<int:problem_id>/forward-to/<int:user_id>")
@login_required
def forward_to(problem_id: int, user_id: int):
    referral = forwarding.forward_to_connection(db.session, current_user, problem_id, user_id)
    if referral.recipient_user is None:
        raise ValueError(f"referral {referral.id} was forwarded to nobody")
    flash(f"Forwarded to {referral.recipient_user.name}; you keep your place whatever happens next.", "success")
    return redirect(url_for("problems.show", problem_id=problem_id))


# Contact cards ---------------------------------------------------------------------------------


def _cards_page(card_form: CardForm | None = None, import_form: ImportForm | None = None):
    q, tag = request.args.get("q", ""), request.args.get("tag", "")
    page = request.args.get("page", 1, type=int)
    return render_template(
        "network/cards.html",
        page=service.search_cards(db.session, current_user, q=q, tag=tag, page=min(page, 100_000)),
        q=q,
        tag=tag,
        card_form=card_form or CardForm(formdata=None),
        import_form=import_form or ImportForm(formdata=None),
        recent_imports=imports.recent(db.session, current_user),
    )


@bp.get("/network/cards")
@login_required
def cards():
    return _cards_page()


@bp.post("/network/cards")
@login_required
def add_card():
    form = CardForm()
    if form.validate_on_submit():
        try:
            card = service.create_card(db.session, current_user, form.to_data())
        except MarketplaceError as error:
            form_error(form, error)
        else:
            flash(f"Card for {card.name} added.", "success")
            return redirect(url_for("network.cards"))
    return _cards_page(card_form=form)


@bp.route("/network/cards/<int:card_id>/edit", methods=["GET", "POST"])
@login_required
def edit_card(card_id: int):
    card = service.get_card(db.session, current_user, card_id)
    form = CardForm.for_card(card)
    if form.validate_on_submit():
        try:
            service.update_card(db.session, current_user, card.id, form.to_data(card.other_email_list))
        except MarketplaceError as error:
            form_error(form, error)
        else:
            flash("Card saved.", "success")
            return redirect(url_for("network.cards"))
    return render_template("network/card_edit.html", form=form, card=card)


@bp.post("/network/cards/<int:card_id>/delete")
@login_required
def delete_card(card_id: int):
    service.delete_card(db.session, current_user, card_id)
    flash("Card deleted.", "info")
    return redirect(url_for("network.cards"))


@bp.get("/network/cards/export.<any(csv, vcf):kind>")
@login_required
def export(kind: str):
    cards = service.all_cards(db.session, current_user)
    if kind == "csv":
        body, mimetype = imports.export_csv(cards), "text/csv"
    else:
        body, mimetype = imports.export_vcard(cards), "text/vcard"
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f"attachment; filename=contacts.{kind}"},
    )


# Imports ---------------------------------------------------------------------------------------


@bp.post("/network/import")
@login_required
def upload():
    form = ImportForm()
    if form.validate_on_submit():
        upload_ = form.file.data
        try:
            imported = imports.preview(db.session, current_user, upload_.filename or "", upload_.read())
        except MarketplaceError as error:
            form_error(form, error)
        else:
            return redirect(url_for("network.show_import", import_id=imported.id))
    return _cards_page(import_form=form)


@bp.get("/network/import/<int:import_id>")
@login_required
def show_import(import_id: int):
    imported = imports.get_import(db.session, current_user, import_id)
    notable = [e for e in imported.entries if e["action"] != "add"]
    additions = [e for e in imported.entries if e["action"] == "add"]
    return render_template(
        "network/import.html",
        imported=imported,
        notable=notable[:PREVIEW_ROWS],
        additions=additions[:PREVIEW_ROWS],
        counts=Counter(entry["action"] for entry in imported.entries),
        limit=PREVIEW_ROWS,
    )


@bp.post("/network/import/<int:import_id>/<any(confirm, cancel):action>")
@login_required
def decide_import(import_id: int, action: str):
    if action == "confirm":
        imported = imports.confirm(db.session, current_user, import_id)
    else:
        imported = imports.cancel(db.session, current_user, import_id)
    if imported.status == ImportStatus.DONE:
        counts = Counter(entry["action"] for entry in imported.entries)
        flash(
            f"Import finished: {counts['add']} new card{'' if counts['add'] == 1 else 's'}, "
            f"{counts['merge']} merged into cards you had, {counts['skip']} skipped.",
            "success",
        )
        return redirect(url_for("network.cards"))
    if imported.status == ImportStatus.CANCELLED:
        flash("Import cancelled; nothing was imported.", "info")
        return redirect(url_for("network.cards"))
    return redirect(url_for("network.show_import", import_id=import_id))


@bp.get("/network/import/<int:import_id>/progress")
@login_required
def import_progress(import_id: int):
    imported = imports.get_import(db.session, current_user, import_id)
    return jsonify(status=imported.status.value, processed=imported.processed, total=imported.total)
