"""A company's webhook pages (owners and admins): its endpoints, each endpoint's delivery log with
"send again", a test ping, the secret shown once (docs/webhooks.md)."""

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from marketplace.accounts.service import get_company
from marketplace.db import db
from marketplace.errors import MarketplaceError
from marketplace.web.forms.webhooks import EndpointChangeForm, EndpointForm
from marketplace.web.util import form_error
from marketplace.webhooks import service

bp = Blueprint("company_webhooks", __name__, url_prefix="/companies/<int:company_id>/webhooks")


def render_endpoints(company_id: int, form: EndpointForm | None = None, new_secret: str | None = None):
    return render_template(
        "webhooks/endpoints.html",
        company=get_company(db.session, company_id),
        endpoints=service.endpoints_of(db.session, current_user, company_id),
        form=form or EndpointForm(),
        new_secret=new_secret,
        event_types=service.EVENT_TYPES,
    )


def render_endpoint(
    company_id: int, endpoint_id: int, new_secret: str | None = None, form: EndpointChangeForm | None = None
):
    endpoint = service.get_endpoint(db.session, current_user, company_id, endpoint_id)
    return render_template(
        "webhooks/endpoint.html",
        endpoint=endpoint,
        deliveries=service.deliveries_of(db.session, current_user, company_id, endpoint_id),
        new_secret=new_secret,
        form=form or EndpointChangeForm(obj=endpoint, formdata=None),
    )


@bp.get("")
@login_required
def endpoints(company_id: int):
    return render_endpoints(company_id)


@bp.post("")
@login_required
def create(company_id: int):
    form = EndpointForm()
    if form.validate_on_submit():
        try:
            endpoint, secret = service.create_endpoint(
                db.session,
                current_user,
                company_id,
                url=form.url.data,
                event_types=form.event_types.data,
                description=form.description.data or "",
            )
        except MarketplaceError as error:
            form_error(form, error)
        else:
            flash(f"Webhooks to {endpoint.url} are set up. Copy the secret now: it is shown this once.", "success")
            return render_endpoint(company_id, endpoint.id, new_secret=secret)
    return render_endpoints(company_id, form=form), 422


@bp.get("/<int:endpoint_id>")
@login_required
def endpoint(company_id: int, endpoint_id: int):
    return render_endpoint(company_id, endpoint_id)


@bp.post("/<int:endpoint_id>")
@login_required
def update(company_id: int, endpoint_id: int):
    form = EndpointChangeForm()
    if form.validate_on_submit():
        try:
            service.update_endpoint(
                db.session,
                current_user,
                company_id,
                endpoint_id,
                url=form.url.data,
                event_types=form.event_types.data,
                description=form.description.data or "",
            )
        except MarketplaceError as error:
            form_error(form, error)
        else:
            flash("Saved: new events go to the endpoint as it is now.", "success")
            return redirect(url_for(".endpoint", company_id=company_id, endpoint_id=endpoint_id))
    return render_endpoint(company_id, endpoint_id, form=form), 422


@bp.post("/<int:endpoint_id>/secret")
@login_required
def rotate_secret(company_id: int, endpoint_id: int):
    _, secret = service.rotate_secret(db.session, current_user, company_id, endpoint_id)
    flash("A new secret: copy it now, it is shown this once. The previous one signs too for 24 hours.", "success")
    return render_endpoint(company_id, endpoint_id, new_secret=secret)


@bp.post("/<int:endpoint_id>/ping")
@login_required
def ping(company_id: int, endpoint_id: int):
    service.ping(db.session, current_user, company_id, endpoint_id)
    flash("A test ping is on its way; it appears below once sent.", "info")
    return redirect(url_for(".endpoint", company_id=company_id, endpoint_id=endpoint_id))


@bp.post("/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver")
@login_required
def redeliver(company_id: int, endpoint_id: int, delivery_id: int):
    delivery = service.redeliver(db.session, current_user, company_id, endpoint_id, delivery_id)
    flash(f"{delivery.webhook_id} is queued to be sent again.", "info")
    return redirect(url_for(".endpoint", company_id=company_id, endpoint_id=endpoint_id))


SWITCHED = {
    "enable": ("The endpoint is enabled: new events are sent to it again.", "success"),
    "disable": ("The endpoint is disabled: nothing is sent to it until you enable it.", "info"),
}


@bp.post("/<int:endpoint_id>/<any(enable, disable):switch>")
@login_required
def switch(company_id: int, endpoint_id: int, switch: str):
    service.update_endpoint(db.session, current_user, company_id, endpoint_id, enabled=switch == "enable")
    flash(*SWITCHED[switch])
    return redirect(url_for(".endpoint", company_id=company_id, endpoint_id=endpoint_id))


@bp.post("/<int:endpoint_id>/delete")
@login_required
def delete(company_id: int, endpoint_id: int):
    service.delete_endpoint(db.session, current_user, company_id, endpoint_id)
    flash("The endpoint and its delivery log are deleted.", "info")
    return redirect(url_for(".endpoints", company_id=company_id))
