"""Pages for platform admins: jobs that failed too often and payouts Stripe refused, each
waiting for a person, and the audit log."""

from functools import wraps
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.audit import history
from marketplace.db import db
from marketplace.errors import NotFound
from marketplace.jobs import service as jobs
from marketplace.payments import service as payments
from marketplace.web.util import int_arg

bp = Blueprint("admin", __name__, url_prefix="/admin")


def admin_required(view):
    """Platform admins only; everyone else is told the page does not exist."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_platform_admin:
            raise NotFound("No such page.")
        return view(*args, **kwargs)

    return wrapper


@bp.get("/jobs")
@admin_required
def parked_jobs():
    return render_template("admin/jobs.html", jobs=jobs.parked_jobs(db.session))


@bp.post("/jobs/<int:job_id>/retry")
@admin_required
def retry_job(job_id: int):
    jobs.retry_parked(db.session, job_id)
    flash("The job is queued again.", "success")
    return redirect(url_for("admin.parked_jobs"))


@bp.get("/audit")
@admin_required
def audit_log():
    """The audit log, newest first, filtered by subject (type and id) or by problem."""
    filters: dict[str, Any] = {
        "subject_type": request.args.get("subject_type", "").strip()[:32],
        "subject_id": int_arg("subject_id"),
        "problem_id": int_arg("problem_id"),
    }
    page = history.admin_page(
        db.session,
        current_user,
        subject_type=filters["subject_type"],
        subject_id=filters["subject_id"],
        problem_id=filters["problem_id"],
        page=int_arg("page") or 1,
    )
    query = {name: value for name, value in filters.items() if value}
    return render_template("admin/audit.html", page=page, filters=filters, query=query)


@bp.get("/payouts")
@admin_required
def refused_payouts():
    return render_template("admin/payouts.html", shares=payments.refused_payouts(db.session, current_user))


@bp.post("/payouts/<int:share_id>/retry")
@admin_required
def retry_payout(share_id: int):
    if payments.retry_refused_payout(db.session, current_user, share_id):
        flash("The payout is sent again, as a new attempt.", "success")
    else:
        flash("The payout waits no more; it is sent as soon as the member's payout account is ready.", "info")
    return redirect(url_for("admin.refused_payouts"))
