"""The home page, the member's dashboard and members' public records."""

from flask import Blueprint, current_app, redirect, render_template, send_from_directory, url_for
from flask_login import current_user, login_required

from marketplace.accounts.models import User
from marketplace.caching import cached_for_visitors
from marketplace.db import db
from marketplace.errors import NotFound
from marketplace.ledger import donations
from marketplace.problems import service as problems
from marketplace.referrals import read_models, records, visibility
from marketplace.web.util import int_arg

bp = Blueprint("main", __name__)


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for ``/favicon.ico`` whatever the page links; the mark is an SVG (they all
    draw one), served here so that request is never a 404."""
    static = current_app.static_folder or "static"
    return send_from_directory(static, "brand/mark.svg", mimetype="image/svg+xml", max_age=86400)


@bp.get("/")
@cached_for_visitors
def index():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    latest = visibility.board(db.session, None, problems.BoardQuery(sort="bounty"))
    return render_template("index.html", problems=latest.items[:6])


@bp.get("/dashboard")
@login_required
def dashboard():
    return render_template("dashboard.html", board=read_models.dashboard(db.session, current_user))


@bp.get("/dashboard/<name>")
@login_required
def member_list(name: str):
    """One of the dashboard's lists whole, a page at a time (``?page=N``), newest first."""
    page = read_models.member_list(db.session, current_user, name, int_arg("page") or 1)
    return render_template("main/member_list.html", list=page)


@bp.get("/members/<int:user_id>")
@login_required
def member(user_id: int):
    """A member's track record as introducer and giving record, beside what they took."""
    person = db.session.get(User, user_id)
    if person is None:
        raise NotFound("No such member.")
    return render_template(
        "main/member.html",
        person=person,
        record=records.track_records(db.session, [person.id])[person.id],
        giving=records.giving(db.session, person.id),
        money=donations.taken_and_given(db.session, person.id),
    )
