"""Platform admins' review of settlements held for fraud signals (docs/fraud.md)."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.db import db
from marketplace.fraud import service as fraud
from marketplace.web.forms.ledger import DecisionForm

bp = Blueprint("fraud", __name__)


@bp.get("/admin/fraud")
@login_required
def admin_flags():
    return render_template(
        "fraud/admin_flags.html", flags=fraud.flags_for_admin(db.session, current_user), form=DecisionForm()
    )


@bp.post("/admin/fraud/<int:flag_id>/<any(clear, uphold):decision>")
@login_required
def decide_flag(flag_id: int, decision: str):
    note = request.form.get("note", "")
    if decision == "uphold":
        fraud.uphold(db.session, current_user, flag_id, note=note)
        flash("Upheld: the shares are clawed back and the company is refunded.", "success")
    else:
        fraud.clear(db.session, current_user, flag_id, note=note)
        flash("Cleared: the shares are released when the guarantee period ends.", "success")
    return redirect(url_for("fraud.admin_flags"))
