"""The inbox, delivery preferences, one-click unsubscribe, and the demo's mail folder."""

from email import policy
from email.parser import BytesParser

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from itsdangerous import BadSignature

from marketplace.accounts.models import User
from marketplace.config import current_settings
from marketplace.db import db
from marketplace.errors import ValidationError
from marketplace.extensions import csrf
from marketplace.notifications import service
from marketplace.notifications.kinds import KINDS, choosable
from marketplace.notifications.mail import mail_folder, plain_text, unsubscribe_serializer
from marketplace.notifications.models import Delivery
from marketplace.web.util import whole_number

bp = Blueprint("notifications", __name__)


@bp.get("/notifications")
@login_required
def inbox():
    return render_template("notifications/inbox.html", items=service.inbox_page(db.session, current_user))


@bp.post("/notifications/<int:notification_id>/open")
@login_required
def open_notification(notification_id: int):
    notification = service.get_own(db.session, current_user, notification_id)
    service.mark_read(db.session, current_user, [notification.id])
    return redirect(notification.link or url_for("notifications.inbox"))


@bp.post("/notifications/read")
@login_required
def mark_all_read():
    count = service.mark_read(db.session, current_user)
    flash(f"Marked {count} notification{'s' if count != 1 else ''} as read.", "info")
    return redirect(url_for("notifications.inbox"))


@bp.route("/notifications/settings", methods=["GET", "POST"])
@login_required
def settings():
    if request.method == "POST":
        for kind in choosable():
            service.set_preference(db.session, current_user, kind, request.form.get(kind, Delivery.IMMEDIATELY))
        hour = whole_number(request.form.get("digest_hour", "8"))
        if hour is None:
            raise ValidationError("The digest hour is a whole number from 0 to 23.", code="invalid_hour")
        service.set_digest_hour(db.session, current_user, hour)
        flash("Notification settings saved.", "success")
        return redirect(url_for("notifications.settings"))
    return render_template(
        "notifications/settings.html",
        kinds=KINDS,
        preferences=service.preferences(db.session, current_user),
        digest_hour=service.digest_hour(db.session, current_user),
        choices=list(Delivery),
    )


@bp.route("/notifications/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str):
    """The link in every e-mail's footer and List-Unsubscribe header.

    GET shows a confirmation page (link scanners only ever GET); POST turns the kind off, from
    that page or as the mail client's one-click ``List-Unsubscribe=One-Click`` (RFC 8058). No CSRF
    token: the signed token in the URL is the authorization, and the mail client has no session.
    """
    try:
        data = unsubscribe_serializer().loads(token)
    except BadSignature:
        abort(404)
    user = db.session.get(User, data.get("u"))
    kind = data.get("k")
    if user is None or kind not in choosable():
        abort(404)
    if request.method == "POST":
        service.set_preference(db.session, user, kind, Delivery.OFF)
        return render_template("notifications/unsubscribed.html", kind=KINDS[kind], done=True)
    return render_template("notifications/unsubscribed.html", kind=KINDS[kind], done=False)


def _local_mail_enabled() -> None:
    """``/dev/mail`` exists only with ``APP_ENV=development``, whatever the mail or Stripe settings."""
    if not current_settings().dev_mail:
        abort(404)


@bp.get("/dev/mail")
def dev_mail():
    """The outgoing mail written to the instance folder, newest first (development only)."""
    _local_mail_enabled()
    files = sorted(mail_folder().glob("*.eml"), key=lambda f: f.stat().st_mtime, reverse=True)[:200]
    messages = [(f.stem, BytesParser(policy=policy.default).parsebytes(f.read_bytes())) for f in files]
    return render_template("notifications/dev_mail.html", messages=messages, mail_url=bool(current_settings().mail_url))


@bp.get("/dev/mail/<name>")
def dev_mail_message(name: str):
    _local_mail_enabled()
    path = mail_folder() / f"{name}.eml"
    if "/" in name or not path.is_file():
        abort(404)
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    return render_template("notifications/dev_mail_message.html", message=message, text=plain_text(message))
