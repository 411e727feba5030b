"""Accounts over the API: sign-up, tokens, the current user, companies and their members."""

import marshmallow as ma
from flask import current_app

from marketplace.accounts import service
from marketplace.api.auth import token_required
from marketplace.api.contract import ApiBlueprint, errors
from marketplace.api.idempotency import idempotent
from marketplace.api.inputs import AS_TYPED, MULTI_LINE, InputSchema
from marketplace.api.pagination import PAGE_ERRORS, PageArgs, cursor_after, next_link, window
from marketplace.db import db
from marketplace.errors import Conflict, EmailUnverified, Forbidden, TooManyRequests
from marketplace.extensions import limiter, login_throttle
from marketplace.keyset import cut

blp = ApiBlueprint("accounts_api", __name__, description="Accounts, tokens and companies")


class SignupIn(InputSchema):
    email = ma.fields.String(required=True)
    password = ma.fields.String(required=True, metadata=AS_TYPED)
    name = ma.fields.String(required=True)


class UserOut(ma.Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    name = ma.fields.String()


class MeOut(UserOut):
    email_verified = ma.fields.Boolean()
    headline = ma.fields.String()
    skills = ma.fields.Method("skill_names")
    companies = ma.fields.Method("company_list")

    def skill_names(self, user):
        return [skill.slug for skill in user.skills]

    def company_list(self, user):
        return [{"id": c.id, "name": c.name, "role": role.value} for c, role in service.companies_of(db.session, user)]


class ProfileIn(InputSchema):
    """What the profile page edits; a field left out keeps its value."""

    name = ma.fields.String()
    headline = ma.fields.String()
    skills = ma.fields.List(ma.fields.String(), validate=ma.validate.Length(max=50))
    show_name_on_chains = ma.fields.Boolean()


class PasswordChangeIn(InputSchema):
    current_password = ma.fields.String(required=True, metadata=AS_TYPED)
    new_password = ma.fields.String(required=True, metadata=AS_TYPED)
    revoke_tokens = ma.fields.Boolean(
        load_default=False, metadata={"description": "also revoke every API token, this one included"}
    )


class EmailChangeIn(InputSchema):
    email = ma.fields.String(required=True)
    password = ma.fields.String(required=True, metadata=AS_TYPED)


class TokenIn(InputSchema):
    email = ma.fields.String(required=True)
    password = ma.fields.String(required=True, metadata=AS_TYPED)
    name = ma.fields.String(load_default="API token")


class TokenOut(ma.Schema):
    token = ma.fields.String()
    id = ma.fields.Integer()


class TokenInfoOut(ma.Schema):
    """A token as listed: never the token itself, which is shown once when it is made."""

    id = ma.fields.Integer()
    name = ma.fields.String()
    prefix = ma.fields.String()
    created_at = ma.fields.DateTime()


class CompanyIn(InputSchema):
    name = ma.fields.String(required=True)
    description = ma.fields.String(load_default="", metadata=MULTI_LINE)


class CompanyOut(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class MemberIn(InputSchema):
    email = ma.fields.String(required=True)
    role = ma.fields.String(required=True)


class InvitationOut(ma.Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    role = ma.fields.Function(lambda invitation: invitation.role.value)
    status = ma.fields.Function(
        lambda invitation: "joined" if invitation.accepted_at else "withdrawn" if invitation.withdrawn_at else "invited"
    )


class VerificationSentOut(ma.Schema):
    sent_to = ma.fields.String()


def _auth_limit() -> str:
    return current_app.config["AUTH_RATE_LIMIT"]


# Flask-Limiter's refusal, before the route runs.
RATE_LIMITED = (429, "too_many_requests")


@blp.post("/users")
@errors(Conflict, RATE_LIMITED)
@limiter.limit(_auth_limit)
@blp.arguments(SignupIn, example={"email": "sam@example.org", "password": "a long passphrase", "name": "Sam Rivera"})
@blp.response(201, UserOut)
def create_user(data):
    user = service.sign_up(db.session, **data)
    return user


@blp.post("/tokens")
@errors((401, "bad_credentials"), TooManyRequests, RATE_LIMITED)
@limiter.limit(_auth_limit)
@blp.arguments(TokenIn, example={"email": "sam@example.org", "password": "a long passphrase", "name": "Laptop"})
@blp.response(201, TokenOut)
def create_token(data):
    user = login_throttle().log_in(db.session, email=data["email"], password=data["password"])
    token, raw = service.create_api_token(db.session, user, name=data["name"])
    return {"token": raw, "id": token.id}


@blp.get("/me")
@token_required
@blp.response(200, MeOut)
def me(user):
    return user


@blp.post("/me/email-verification")
@errors((409, "already_verified"), (429, "verification_recently_sent"), RATE_LIMITED)
@limiter.limit(_auth_limit)
@idempotent
@token_required
@blp.response(202, VerificationSentOut)
def resend_verification(user):
    """A new confirmation link to the caller's address: 409 ``already_verified`` once it is
    confirmed, 429 ``verification_recently_sent`` within a minute of the last link."""
    service.resend_verification_link(db.session, user)
    return {"sent_to": user.email}


@blp.get("/me/tokens")
@errors(*PAGE_ERRORS)
@token_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, TokenInfoOut(many=True), headers={"Link": {"description": 'the next page: rel="next"'}})
def list_tokens(user, args):
    """The caller's API tokens that still work, newest first (an array; ``Link`` to the next page)."""
    page = window(args, "tokens")
    tokens, last = cut(service.api_tokens_of(db.session, user, page), page, lambda t: (t.created_at, t.id))
    return tokens, next_link(cursor_after("tokens", last), page.limit)


@blp.delete("/me/tokens/<int:token_id>")
@token_required
@blp.response(204)
def revoke_token(user, token_id):
    """Revoke one of the caller's tokens (the one in use too); another user's token is a 404."""
    service.revoke_api_token(db.session, user, token_id)


@blp.post("/companies")
@errors(Conflict)
@idempotent
@token_required
@blp.arguments(CompanyIn, example={"name": "Acme Data", "description": "Data pipelines for retailers."})
@blp.response(201, CompanyOut)
def create_company(user, data):
    company = service.create_company(db.session, user, **data)
    return company


@blp.post("/companies/<int:company_id>/members")
@errors(Forbidden, Conflict)
@idempotent
@token_required
@blp.arguments(MemberIn, example={"email": "new.hire@example.org", "role": "employee"})
@blp.response(201, InvitationOut)
def invite_member(user, data, company_id):
    invitation, _ = service.invite(db.session, user, company_id, email=data["email"], role=data["role"])
    return invitation


@blp.delete("/companies/<int:company_id>/invitations/<int:invitation_id>")
@errors(Forbidden, Conflict)
@token_required
@blp.response(204)
def withdraw_invitation(user, company_id, invitation_id):
    """Withdraw an invitation not yet accepted (owner or admin; an admin's invitation, owner only)."""
    service.withdraw_invitation(db.session, user, company_id, invitation_id)


@blp.delete("/companies/<int:company_id>/members/<int:user_id>")
@errors(Forbidden, (409, "last_admin"))
@token_required
@blp.response(204)
def remove_member(user, company_id, user_id):
    """Remove a member: their role ends at once, their work stays theirs; 409 ``last_admin`` for
    the company's last owner or admin."""
    service.remove_member(db.session, user, company_id, user_id)


@blp.post("/invitations/<token>/accept")
@errors(Forbidden, EmailUnverified, Conflict)
@idempotent
@token_required
@blp.response(200, CompanyOut)
def accept_invitation(user, token):
    membership = service.accept_invitation(db.session, user, token)
    return membership.company


@blp.patch("/me")
@token_required
@blp.arguments(ProfileIn, example={"headline": "Postgres at scale", "skills": ["postgres", "kafka"]})
@blp.response(200, MeOut)
def update_profile(user, data):
    """The profile page's form: name, headline, skills, and whether chains show the name."""
    return service.update_profile(
        db.session,
        user,
        name=data.get("name", user.name),
        headline=data.get("headline", user.headline),
        skills=data["skills"] if "skills" in data else [skill.slug for skill in user.skills],
        show_name_on_chains=data.get("show_name_on_chains", user.show_name_on_chains),
    )


@blp.post("/me/password")
@errors((401, "bad_credentials"), RATE_LIMITED)
@limiter.limit(_auth_limit)
@token_required
@blp.arguments(PasswordChangeIn, example={"current_password": "the old one", "new_password": "a new long passphrase"})
@blp.response(204)
def change_password(user, data):
    """A new password, given the current one: every session ends (and with ``revoke_tokens``,
    every API token)."""
    service.change_password(db.session, user.id, **data)


@blp.post("/me/email")
@errors((401, "bad_credentials"), Conflict, RATE_LIMITED)
@limiter.limit(_auth_limit)
@token_required
@blp.arguments(EmailChangeIn, example={"email": "sam.rivera@example.org", "password": "a long passphrase"})
@blp.response(200, MeOut)
def change_email(user, data):
    """A new address, given the password; unverified until the link sent there is opened."""
    return service.change_email(db.session, user.id, email=data["email"], current_password=data["password"])
