"""Sign-up, log-in, password reset, profile, API tokens, companies and invitations."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from marketplace.accounts import service
from marketplace.accounts.login_throttle import DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE
from marketplace.db import db
from marketplace.errors import MarketplaceError, TooManyRequests
from marketplace.extensions import limiter, login_throttle
from marketplace.problems.service import problems_of_company
from marketplace.referrals import read_models
from marketplace.web.dashboards import company_dashboard
from marketplace.web.forms import accounts as forms
from marketplace.web.util import form_error, safe_next

bp = Blueprint("accounts", __name__)


def auth_limit() -> str:
    return current_app.config["AUTH_RATE_LIMIT"]


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
def signup():
    form = forms.SignupForm()
    if form.validate_on_submit():
        try:
            user = service.sign_up(db.session, email=form.email.data, password=form.password.data, name=form.name.data)
        except MarketplaceError as error:
            form_error(form, error)
        else:
            login_user(user)
            flash(f"Welcome, {user.name}! Add your skills so chains can find you.", "success")
            return redirect(safe_next() or url_for("accounts.profile"))
    return render_template("accounts/signup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
def login():
    form = forms.LoginForm()
    if form.validate_on_submit():
        throttle = login_throttle()
        try:
            user = throttle.log_in(
                db.session,
                email=form.email.data,
                password=form.password.data,
                device_cookie=request.cookies.get(DEVICE_COOKIE),
            )
        except TooManyRequests as error:
            form_error(form, error)
            return render_template("accounts/login.html", form=form), 429, {"Retry-After": str(error.retry_after)}
        except MarketplaceError as error:
            form_error(form, error)
        else:
            login_user(user, remember=form.remember.data)
            response = redirect(safe_next() or url_for("main.dashboard"))
            # This browser may log in to the account even while guesses elsewhere slow it down.
            response.set_cookie(
                DEVICE_COOKIE,
                throttle.device_cookie(user),
                max_age=DEVICE_COOKIE_MAX_AGE,
                path=url_for("accounts.login"),
                secure=current_app.config["SESSION_COOKIE_SECURE"],
                httponly=True,
                samesite="Lax",
            )
            return response
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    # The session is a signed cookie: only moving the session version makes a copy of it, or of
    # the remember cookie, stop working (and with it the account's other browsers).
    service.end_sessions(db.session, current_user.id)
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("main.index"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(auth_limit, methods=["POST"])
def forgot_password():
    form = forms.ResetRequestForm()
    if form.validate_on_submit():
        service.request_password_reset(db.session, form.email.data)
        # The same answer whether or not the address has an account.
        flash("If that address has an account, a reset link is on its way.", "info")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    form = forms.ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = service.reset_password(db.session, token=token, password=form.password.data)
        except MarketplaceError as error:
            form_error(form, error)
        else:
            login_throttle().clear(user.email)
            flash("Your password is changed; log in with it.", "success")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset.html", form=form)


def saved_profile_form() -> forms.ProfileForm:
    """The profile form filled from the saved profile, never from the request being answered."""
    form = forms.ProfileForm(formdata=None, obj=current_user)
    form.skills.data = ", ".join(skill.name for skill in current_user.skills)
    return form


def render_profile(
    form: forms.ProfileForm | None = None,
    password_form: forms.PasswordChangeForm | None = None,
    new_token: str | None = None,
    email_form: forms.EmailChangeForm | None = None,
):
    """The profile page; each of its forms posts to its own address (the template says which), so
    a page rendered after creating a token or a refused password change still saves the profile."""
    return render_template(
        "accounts/profile.html",
        form=form or saved_profile_form(),
        token_form=forms.TokenForm(formdata=None),
        password_form=password_form or forms.PasswordChangeForm(formdata=None),
        email_form=email_form or forms.EmailChangeForm(formdata=None),
        logout_form=forms.LogoutEverywhereForm(formdata=None),
        tokens=service.api_tokens_of(db.session, current_user),
        new_token=new_token,
    )


def remembered() -> bool:
    return bool(request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    if request.method == "GET":
        return render_profile()
    form = forms.ProfileForm(obj=current_user)
    if form.validate_on_submit():
        try:
            service.update_profile(
                db.session,
                current_user,
                name=form.name.data,
                headline=form.headline.data,
                skills=form.skills.data or "",
                show_name_on_chains=form.show_name_on_chains.data,
            )
        except MarketplaceError as error:
            form_error(form, error)
        else:
            flash("Profile saved.", "success")
            return redirect(url_for("accounts.profile"))
    return render_profile(form=form)


@bp.post("/profile/password")
@login_required
def change_password():
    form = forms.PasswordChangeForm()
    if form.validate_on_submit():
        try:
            user = service.change_password(
                db.session,
                current_user.id,
                current_password=form.current_password.data,
                new_password=form.new_password.data,
                revoke_tokens=form.revoke_tokens.data,
            )
        except MarketplaceError as error:
            form_error(form, error)
        else:
            # Every session ended with the old password; this one goes on under the new version.
            login_user(user, remember=remembered())
            done = "Password changed; your other sessions are logged out"
            flash(done + (" and your API tokens revoked." if form.revoke_tokens.data else "."), "success")
            return redirect(url_for("accounts.profile"))
    return render_profile(password_form=form)


@bp.post("/profile/email")
@login_required
def change_email():
    form = forms.EmailChangeForm()
    if form.validate_on_submit():
        try:
            user = service.change_email(
                db.session, current_user.id, email=form.email.data, current_password=form.password.data
            )
        except MarketplaceError as error:
            form_error(form, error)
        else:
            flash(f"Your address is now {user.email}. Open the link we sent there to confirm it.", "success")
            return redirect(url_for("accounts.profile"))
    return render_profile(email_form=form)


# E-mail verification ---------------------------------------------------------------------------


@bp.route("/verify-email/<token>", methods=["GET", "POST"])
def verify_email(token: str):
    """Where a confirmation link lands. Confirming is a button (a POST), so a mail scanner that
    fetches the link confirms nothing; a link that no longer works says why and offers a new one."""
    try:
        if request.method == "POST":
            user = service.verify_email(db.session, token)
            return render_template("accounts/verify_email.html", confirmed=user.email)
        verification = service.verification_by_token(db.session, token)
    except MarketplaceError as error:
        db.session.rollback()
        return render_template("accounts/verify_email.html", refusal=error.message)
    return render_template("accounts/verify_email.html", pending=verification.user.email)


@bp.route("/verify-email", methods=["GET", "POST"])
@login_required
@limiter.limit(auth_limit, methods=["POST"])
def resend_verification():
    """Whether the member's address is confirmed, and a button for a new link while it is not."""
    if request.method == "POST":
        try:
            service.resend_verification_link(db.session, current_user)
        except MarketplaceError as error:
            db.session.rollback()
            flash(error.message, "warning")
        else:
            flash(f"A new link is on its way to {current_user.email}; it works for 24 hours.", "success")
        return redirect(url_for("accounts.resend_verification"))
    return render_template("accounts/verify_email.html")


@bp.post("/profile/logout-everywhere")
@login_required
def logout_everywhere():
    form = forms.LogoutEverywhereForm()
    if not form.validate_on_submit():
        return redirect(url_for("accounts.profile"))
    service.end_sessions(db.session, current_user.id, revoke_tokens=form.revoke_all_tokens.data)
    logout_user()
    done = "You are logged out everywhere"
    flash(done + (" and your API tokens are revoked." if form.revoke_all_tokens.data else "."), "info")
    return redirect(url_for("accounts.login"))


@bp.post("/profile/tokens")
@login_required
def create_token():
    form = forms.TokenForm()
    if not form.validate_on_submit():
        flash("Give the token a name.", "danger")
        return redirect(url_for("accounts.profile"))
    _, raw = service.create_api_token(db.session, current_user, name=form.name.data)
    return render_profile(new_token=raw)


@bp.post("/profile/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    service.revoke_api_token(db.session, current_user, token_id)
    flash("Token revoked.", "info")
    return redirect(url_for("accounts.profile"))


# Companies -------------------------------------------------------------------------------------


@bp.route("/companies/new", methods=["GET", "POST"])
@login_required
def new_company():
    form = forms.CompanyForm()
    if form.validate_on_submit():
        try:
            company = service.create_company(
                db.session, current_user, name=form.name.data, description=form.description.data
            )
        except MarketplaceError as error:
            form_error(form, error)
        else:
            flash(f"{company.name} is set up. Invite your colleagues, then post a problem.", "success")
            return redirect(url_for("accounts.company", company_id=company.id))
    return render_template("accounts/company_new.html", form=form)


@bp.get("/companies/<int:company_id>")
@login_required
def company(company_id: int):

    role = service.require_member(db.session, current_user, company_id)
    return render_template(
        "accounts/company.html",
        company=service.get_company(db.session, company_id),
        role=role,
        members=service.members_of(db.session, company_id),
        invite_form=forms.InviteForm(),
        invitations=service.pending_invitations(db.session, current_user, company_id) if role.manages else [],
        problems=problems_of_company(db.session, company_id),
        awaiting_decision=read_models.awaiting_decision(db.session, company_id),
    )


@bp.get("/companies/<int:company_id>/figures")
@login_required
def figures(company_id: int):
    """The company's figures as charts: problems by state, money by month, funnels."""
    role = service.require_member(db.session, current_user, company_id)
    return render_template(
        "ledger/company_figures.html",
        company=service.get_company(db.session, company_id),
        role=role,
        dashboard=company_dashboard(db.session, company_id),
    )


@bp.post("/companies/<int:company_id>/invitations")
@login_required
def invite(company_id: int):
    form = forms.InviteForm()
    if not form.validate_on_submit():
        flash("Give a valid e-mail address and a role.", "danger")
        return redirect(url_for("accounts.company", company_id=company_id))
    invitation, _ = service.invite(db.session, current_user, company_id, email=form.email.data, role=form.role.data)
    flash(f"Invitation sent to {invitation.email}.", "success")
    return redirect(url_for("accounts.company", company_id=company_id))


@bp.post("/companies/<int:company_id>/invitations/<int:invitation_id>/withdraw")
@login_required
def withdraw_invitation(company_id: int, invitation_id: int):
    invitation = service.withdraw_invitation(db.session, current_user, company_id, invitation_id)
    flash(f"The invitation to {invitation.email} is withdrawn; its link no longer works.", "info")
    return redirect(url_for("accounts.company", company_id=company_id))


@bp.post("/companies/<int:company_id>/members/<int:user_id>/remove")
@login_required
def remove_member(company_id: int, user_id: int):
    member = service.remove_member(db.session, current_user, company_id, user_id)
    if member.id == current_user.id:
        flash("You stepped down; you are no longer a member of the company.", "info")
        return redirect(url_for("main.dashboard"))
    flash(f"{member.name} is no longer a member of the company.", "info")
    return redirect(url_for("accounts.company", company_id=company_id))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str):
    invitation = service.invitation_by_token(db.session, token)
    if request.method == "POST":
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=request.path))
        service.accept_invitation(db.session, current_user, token)
        flash(f"You joined {invitation.company.name}.", "success")
        return redirect(url_for("accounts.company", company_id=invitation.company_id))
    return render_template("accounts/invitation.html", invitation=invitation)
