"""The home page and the member's dashboard."""

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from marketplace.db import db
from marketplace.problems import service as problems
from marketplace.referrals import read_models, visibility

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    latest = visibility.board(db.session, None, problems.BoardQuery(sort="bounty"))
    return render_template("index.html", problems=latest.items[:6])


@bp.get("/dashboard")
@login_required
def dashboard():
    return render_template("dashboard.html", board=read_models.dashboard(db.session, current_user))
