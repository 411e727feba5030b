"""Pages for platform admins: jobs that failed too often and wait for a person."""

from functools import wraps

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from marketplace.db import db
from marketplace.errors import NotFound
from marketplace.jobs import service as jobs

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
