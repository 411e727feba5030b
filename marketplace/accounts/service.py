"""Accounts and companies: sign-up, log-in, sessions, passwords, profiles, roles, invitations, tokens."""

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import CursorResult, bindparam, func, select, update
from sqlalchemy.orm import Session, joinedload

from marketplace import signals, text
from marketplace.accounts import passwords
from marketplace.accounts.addresses import mixed_script_part, skeleton
from marketplace.accounts.models import (
    ApiToken,
    Company,
    EmailVerification,
    Invitation,
    Membership,
    PasswordReset,
    Role,
    User,
)
from marketplace.accounts.password_rules import check_password
from marketplace.accounts.skills import set_member_skills
from marketplace.db import Prepared, PreparedGet, connection_of, utcnow
from marketplace.errors import (
    Conflict,
    EmailUnverified,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationError,
)
from marketplace.keyset import Window, seek

RESET_TOKEN_MAX_AGE = 3600
EMAIL_VERIFICATION_MAX_AGE = 24 * 3600
# A member may ask for a new confirmation link this often: each one is a message to an inbox.
EMAIL_VERIFICATION_COOLDOWN = 60


def normalize_email(email: str | None) -> str:
    """A canonical, validated address; domains lower-cased, no deliverability look-up."""
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError(f"That e-mail address is not valid: {exc}", code="invalid_email") from None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _check_name(name: str) -> str:
    name = text.single_line(name, "Your name").strip()
    if not name or len(name) > 120:
        raise ValidationError("Give a name of 1 to 120 characters.", code="invalid_name")
    return name


def check_new_address(session: Session, email: str, user: User | None = None) -> None:
    """Refuse ``email`` (normalised) as a new address of ``user`` (None: for a new account) when it
    mixes scripts or looks like another member's address (``addresses``)."""
    part = mixed_script_part(email)
    if part is not None:
        raise ValidationError(
            f"The {part} of that e-mail address mixes alphabets (say Latin and Cyrillic letters); "
            "type it in one alphabet.",
            code="mixed_script_email",
        )
    lookalike = session.scalar(
        select(User.id).where(User.email_skeleton == skeleton(email), User.email != email).limit(1)
    )
    if lookalike is not None and (user is None or lookalike != user.id):
        raise Conflict(
            "That e-mail address looks like the address of another member; use another one.",
            code="lookalike_email",
        )


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def verified_user_by_email(session: Session, email: str) -> User | None:
    """The account that has proven it reads mail at ``email``, or None: what is sent to an address
    (a referral, an introduction) reaches an account only once the account has shown it is theirs."""
    user = user_by_email(session, email)
    return user if user is not None and user.email_verified else None


def register(session: Session, *, email: str, password: str, name: str) -> User:
    email = normalize_email(email)
    name = _check_name(name)
    check_password(password, email=email, name=name)
    if user_by_email(session, email) is not None:
        raise Conflict("An account with this e-mail already exists.", code="email_taken")
    check_new_address(session, email)
    user = User(email=email, name=name, password_hash=passwords.hash_password(password))
    session.add(user)
    session.flush()
    signals.member_signed_up.send(user, session=session)
    return user


def sign_up(session: Session, *, email: str, password: str, name: str) -> User:
    """What a person signing up gets: an account (``register``), unverified, and a link e-mailed to
    its address to confirm it."""
    user = register(session, email=email, password=password, name=name)
    send_verification_link(session, user)
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    user = user_by_email(session, email or "")
    if user is None:
        # Checked anyway, so a failed log-in takes as long either way.
        passwords.verify_password(passwords.dummy_hash(), password or "")
        raise Unauthorized("Wrong e-mail or password.", code="bad_credentials")
    if not passwords.verify_password(user.password_hash, password or ""):
        raise Unauthorized("Wrong e-mail or password.", code="bad_credentials")
    return user


def update_profile(
    session: Session, user: User, *, name: str, headline: str, skills: str | Iterable[str], show_name_on_chains: bool
) -> User:
    appearance = (user.name, user.show_name_on_chains)
    user.name = _check_name(name)
    headline = text.single_line(headline, "The headline").strip()
    if len(headline) > 200:
        raise ValidationError("Keep the headline under 200 characters.", code="invalid_headline")
    user.headline = headline
    set_member_skills(session, user, skills)
    user.show_name_on_chains = bool(show_name_on_chains)
    session.flush()
    if (user.name, user.show_name_on_chains) != appearance:
        signals.member_appearance_changed.send(user, session=session)
    return user


# E-mail verification --------------------------------------------------------------------------


def _one_time_link(
    session: Session, kind: type[EmailVerification] | type[PasswordReset], user: User, max_age: int
) -> str:
    """A new random token for a one-time link of ``kind``; only its SHA-256 is stored. Returns
    the token, for the e-mail alone."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        kind(user_id=user.id, token_hash=sha256_hex(token), created_at=now, expires_at=now + timedelta(seconds=max_age))
    )
    session.flush()
    return token


def send_verification_link(session: Session, user: User) -> None:
    """E-mail the member a link that proves they read mail at their address. Like a reset link,
    its token is random, carries nothing, and is kept only as its SHA-256."""
    token = _one_time_link(session, EmailVerification, user, EMAIL_VERIFICATION_MAX_AGE)
    signals.email_verification_requested.send(user, session=session, token=token)


def resend_verification_link(session: Session, user: User) -> None:
    """A new link on the member's request; not once the address is proven, and not while the
    last link is less than ``EMAIL_VERIFICATION_COOLDOWN`` seconds old."""
    if user.email_verified:
        raise Conflict("Your e-mail address is already confirmed.", code="already_verified")
    last_sent = session.scalar(
        select(func.max(EmailVerification.created_at)).where(EmailVerification.user_id == user.id)
    )
    wait = timedelta(seconds=EMAIL_VERIFICATION_COOLDOWN) - (utcnow() - last_sent) if last_sent else None
    if wait is not None and wait.total_seconds() > 0:
        raise TooManyRequests(
            f"We sent a link to {user.email} less than a minute ago; look for it (the spam folder too), "
            "or ask again in a minute.",
            code="verification_recently_sent",
            retry_after=max(1, int(wait.total_seconds())),
        )
    send_verification_link(session, user)


def verification_by_token(session: Session, token: str) -> EmailVerification:
    """The confirmation link's row while it still works; otherwise an error that says why."""
    verification = session.scalar(
        select(EmailVerification).where(EmailVerification.token_hash == sha256_hex(token or ""))
    )
    if verification is None:
        raise ValidationError("This confirmation link is not valid.", code="bad_token")
    if verification.used_at is not None:
        raise ValidationError("This confirmation link has already been used.", code="token_used")
    if verification.expires_at <= utcnow():
        raise ValidationError("This confirmation link has expired; ask for a new one.", code="token_expired")
    return verification


def verify_email(session: Session, token: str) -> User:
    """Open a confirmation link: the account it was sent for has proven its address."""
    verification = verification_by_token(session, token)
    # Of two requests racing with one link, one uses it; the other is told it is used.
    used = session.execute(
        update(EmailVerification)
        .where(EmailVerification.id == verification.id, EmailVerification.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult, used).rowcount != 1:
        raise ValidationError("This confirmation link has already been used.", code="token_used")
    return mark_email_verified(session, _user(session, verification.user_id))


def mark_email_verified(session: Session, user: User) -> User:
    """The member's address is proven: by a link they opened, or by whoever made the account
    vouching for it (the demo's made-up addresses). Their other links stop working, invitations
    waiting for the address are accepted, and ``email_verified`` lets payouts go on."""
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    void_email_verifications(session, user.id)
    _accept_pending_invitations(session, user)
    session.flush()
    signals.email_verified.send(user, session=session)
    return user


def void_email_verifications(session: Session, user_id: int) -> None:
    """Every confirmation link of the user not yet used stops working."""
    session.execute(
        update(EmailVerification)
        .where(EmailVerification.user_id == user_id, EmailVerification.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def require_verified_email(user: User, action: str) -> None:
    """Refuse ``action`` ("join a company") to an account whose address is not proven: an
    invitation, a referral or an introduction addressed to an e-mail belongs to whoever reads it."""
    if not user.email_verified:
        raise EmailUnverified(
            f"Confirm your e-mail address before you {action}: open the link we sent to {user.email}, "
            "or ask for a new one."
        )


def change_email(session: Session, user_id: int, *, email: str, current_password: str) -> User:
    """A new address, given the current password. The account is unverified again until the link
    sent to the new address is opened; links sent to the old one (confirmation, reset) stop working."""
    user = _user(session, user_id)
    if not passwords.verify_password(user.password_hash, current_password or ""):
        raise Unauthorized("Your current password is not that.", code="bad_credentials")
    email = normalize_email(email)
    if email == user.email:
        raise ValidationError("That is already your address.", code="same_email")
    if user_by_email(session, email) is not None:
        raise Conflict("An account with this e-mail already exists.", code="email_taken")
    check_new_address(session, email, user)
    user.email = email
    user.email_verified_at = None
    void_email_verifications(session, user.id)
    void_password_resets(session, user.id)
    send_verification_link(session, user)
    return user


# Password reset -------------------------------------------------------------------------------


def request_password_reset(session: Session, email: str) -> None:
    """E-mail a reset link if the address has an account; say nothing either way. The link's
    token is random, carries nothing, and is kept only as its SHA-256."""
    user = user_by_email(session, email)
    if user is None:
        return
    token = _one_time_link(session, PasswordReset, user, RESET_TOKEN_MAX_AGE)
    signals.password_reset_requested.send(user, session=session, token=token)


def reset_password(session: Session, *, token: str, password: str) -> User:
    reset = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == sha256_hex(token or "")))
    if reset is None:
        raise ValidationError("This reset link is not valid.", code="bad_token")
    if reset.used_at is not None:
        raise ValidationError("This reset link has already been used.", code="bad_token")
    if reset.expires_at <= utcnow():
        raise ValidationError("This reset link has expired; ask for a new one.", code="token_expired")
    user = _user(session, reset.user_id)
    check_password(password, email=user.email, name=user.name)
    # Of two requests racing with one link, one uses it; the other is told it is used.
    used = session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult, used).rowcount != 1:
        raise ValidationError("This reset link has already been used.", code="bad_token")
    user.password_hash = passwords.hash_password(password)
    void_password_resets(session, user.id)
    end_sessions(session, user.id)
    return user


def void_password_resets(session: Session, user_id: int) -> None:
    """Every reset link of the user not yet used stops working."""
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def change_password(
    session: Session, user_id: int, *, current_password: str, new_password: str, revoke_tokens: bool = False
) -> User:
    """A new password, given the current one; every session of the account ends (the caller logs
    the current one in again), and with ``revoke_tokens`` every API token too."""
    user = _user(session, user_id)
    if not passwords.verify_password(user.password_hash, current_password or ""):
        raise Unauthorized("Your current password is not that.", code="bad_credentials")
    check_password(new_password, email=user.email, name=user.name)
    user.password_hash = passwords.hash_password(new_password)
    void_password_resets(session, user.id)
    end_sessions(session, user.id, revoke_tokens=revoke_tokens)
    return user


# Sessions --------------------------------------------------------------------------------------


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


# The member every logged-in request starts by loading.
_user_by_id = PreparedGet(User)


def user_for_session(
    session: Session, session_id: str, load: Callable[[Session, int], User | None] | None = None
) -> User | None:
    """The user a session or remember cookie names (``User.get_id``: "<id>:<session version>"),
    or None when that user's sessions have been ended since the cookie was made. ``load``, when
    given, reads the user by id instead (a page reads its navigation bar in the same statement)."""
    named = _named_in(session_id)
    if named is None:
        return None
    user = (load or _user_by_id)(session, named[0])
    if user is None or user.session_version != named[1]:
        return None
    return user


def user_id_named_in(session_id: str | None) -> int | None:
    """The id of the user a session id names, before anything is read: whether its sessions
    are still current is ``user_for_session``'s to say."""
    named = _named_in(session_id)
    return named[0] if named else None


def _named_in(session_id: str | None) -> tuple[int, int] | None:
    """The user's id and session version a session id (``User.get_id``) is made of, if it is one."""
    user_id, separator, version = (session_id or "").partition(":")
    if not (separator and user_id.isdigit() and version.isdigit()):
        return None
    return int(user_id), int(version)


def end_sessions(session: Session, user_id: int, *, revoke_tokens: bool = False) -> User:
    """End every session and "remember me" cookie of the user at once: the session version they
    carry moves on. With ``revoke_tokens``, every API token of the user is revoked as well."""
    user = _user(session, user_id)
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    session.expire(user, ["session_version"])
    if revoke_tokens:
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    session.flush()
    return user


# Companies and roles ---------------------------------------------------------------------------


def create_company(session: Session, owner: User, *, name: str, description: str = "") -> Company:
    name = text.single_line(name, "The company's name").strip()
    if not 2 <= len(name) <= 120:
        raise ValidationError("Give the company a name of 2 to 120 characters.", code="invalid_name")
    description = text.multi_line(description, "The company's description").strip()[:2000]
    company = Company(name=name, description=description)
    session.add(company)
    session.flush()
    session.add(Membership(company_id=company.id, user_id=owner.id, role=Role.OWNER))
    session.flush()
    return company


_ROLE = Prepared(
    select(Membership.role).where(
        Membership.company_id == bindparam("company_id"), Membership.user_id == bindparam("user_id")
    )
)


def role_in(session: Session, user: User | None, company_id: int) -> Role | None:
    """The user's role in the company, or None. Every permission check asks this, the accept
    among them, so it runs as one prepared statement (``marketplace.db.Prepared``)."""
    if user is None or not getattr(user, "id", None):
        return None
    rows = _ROLE.fetchall(connection_of(session), {"company_id": company_id, "user_id": user.id})
    return Role(rows[0][0]) if rows else None


def get_company(session: Session, company_id: int) -> Company:
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound("No such company.")
    return company


def require_member(session: Session, user: User | None, company_id: int) -> Role:
    """The user's role in the company; outsiders learn nothing about it (404)."""
    role = role_in(session, user, company_id)
    if role is None:
        raise NotFound("No such company.")
    return role


def require_poster(session: Session, user: User | None, company_id: int) -> Role:
    """The user's role in the company whose problem form they opened. A member of another
    company who followed a link here is told why they cannot post (403), not that the company
    does not exist."""
    role = role_in(session, user, company_id)
    if role is None:
        get_company(session, company_id)
        raise Forbidden(
            "You are not a member of this company, so you cannot post its problems. "
            "Ask its owner to invite you, or create your own company from your profile."
        )
    return role


def require_manager(session: Session, user: User | None, company_id: int) -> Role:
    role = require_member(session, user, company_id)
    if not role.manages:
        raise Forbidden("Only the company's owner or an admin can do this.")
    return role


def companies_of(session: Session, user: User) -> list[tuple[Company, Role]]:
    rows = session.execute(
        select(Company, Membership.role)
        .join(Membership, Membership.company_id == Company.id)
        .where(Membership.user_id == user.id)
        .order_by(Company.name)
    )
    return [(company, role) for company, role in rows]


def members_of(session: Session, company_id: int) -> list[Membership]:
    return list(
        session.scalars(
            select(Membership)
            .where(Membership.company_id == company_id)
            .order_by(Membership.created_at)
            .options(joinedload(Membership.user))
        )
    )


def invite(session: Session, actor: User, company_id: int, *, email: str, role: str) -> tuple[Invitation, str]:
    """Invite someone by e-mail; returns the invitation and the raw token for the link."""
    actor_role = require_manager(session, actor, company_id)
    try:
        role_value = Role(role)
    except ValueError:
        raise ValidationError("Role must be 'admin' or 'employee'.", code="invalid_role") from None
    if role_value == Role.OWNER:
        raise ValidationError("A company has one owner; invite an admin instead.", code="invalid_role")
    if role_value == Role.ADMIN and actor_role != Role.OWNER:
        raise Forbidden("Only the owner can invite admins.")
    email = normalize_email(email)
    existing_user = user_by_email(session, email)
    if existing_user and role_in(session, existing_user, company_id):
        raise Conflict("That person is already a member of this company.", code="already_member")
    invitation = session.scalar(
        select(Invitation).where(Invitation.company_id == company_id, Invitation.email == email)
    )
    token = secrets.token_urlsafe(32)
    if invitation is None:
        invitation = Invitation(
            company_id=company_id,
            email=email,
            invited_by_id=actor.id,
            role=role_value,
            token_hash=sha256_hex(token),
        )
        session.add(invitation)
    else:  # Inviting again renews the link and the role, and undoes a withdrawal.
        invitation.role, invitation.token_hash, invitation.invited_by_id = (
            role_value,
            sha256_hex(token),
            actor.id,
        )
        invitation.accepted_at = invitation.withdrawn_at = None
    session.flush()
    signals.invitation_created.send(invitation, session=session, token=token)
    return invitation, token


def invitation_by_token(session: Session, token: str) -> Invitation:
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == sha256_hex(token or "")))
    if invitation is None:
        raise NotFound("This invitation link is not valid.")
    return invitation


def accept_invitation(session: Session, user: User, token: str) -> Membership:
    invitation = invitation_by_token(session, token)
    if invitation.withdrawn_at is not None:
        raise Conflict(f"{invitation.company.name} withdrew this invitation.", code="invitation_withdrawn")
    if invitation.accepted_at is not None:
        raise Conflict("This invitation has already been used.", code="invitation_used")
    if invitation.email != user.email:
        raise Forbidden(f"This invitation was sent to {invitation.email}; log in with that address to accept it.")
    require_verified_email(user, "join a company")
    return _join(session, invitation, user)


def _join(session: Session, invitation: Invitation, user: User) -> Membership:
    membership = session.get(Membership, (invitation.company_id, user.id))
    if membership is None:
        membership = Membership(company_id=invitation.company_id, user_id=user.id, role=invitation.role)
        session.add(membership)
    invitation.accepted_at = utcnow()
    session.flush()
    return membership


def _accept_pending_invitations(session: Session, user: User) -> None:
    """Proving an invited address joins those companies: the confirmation link showed that the
    member reads that address's mail, as opening the invitation would have."""
    for invitation in session.scalars(
        select(Invitation).where(
            Invitation.email == user.email, Invitation.accepted_at.is_(None), Invitation.withdrawn_at.is_(None)
        )
    ):
        _join(session, invitation, user)


def pending_invitations(session: Session, actor: User, company_id: int) -> list[Invitation]:
    """The company's invitations not yet accepted nor withdrawn, for its owner and admins."""
    require_manager(session, actor, company_id)
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.company_id == company_id,
                Invitation.accepted_at.is_(None),
                Invitation.withdrawn_at.is_(None),
            )
            .order_by(Invitation.created_at)
        )
    )


def _require_authority_over(actor_role: Role, role: Role, what: str) -> None:
    """Admins are the owner's to make and unmake (as only the owner invites them): an admin
    manages employees only."""
    if role != Role.EMPLOYEE and actor_role != Role.OWNER:
        raise Forbidden(f"Only the owner can {what}.")


def withdraw_invitation(session: Session, actor: User, company_id: int, invitation_id: int) -> Invitation:
    """Take back an invitation not yet accepted: its link stops working at once."""
    actor_role = require_manager(session, actor, company_id)
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.company_id != company_id:
        raise NotFound("No such invitation.")
    _require_authority_over(actor_role, invitation.role, "withdraw an invitation to be admin")
    # Guarded, so an invitation accepted at the same moment is either accepted or withdrawn.
    withdrawn = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None), Invitation.withdrawn_at.is_(None))
        .values(withdrawn_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(invitation)
    if cast(CursorResult, withdrawn).rowcount != 1:
        if invitation.accepted_at is not None:
            raise Conflict(f"{invitation.email} has already joined; remove the member instead.", code="invitation_used")
        raise Conflict("This invitation is already withdrawn.", code="invitation_withdrawn")
    signals.invitation_withdrawn.send(invitation, session=session, actor=actor)
    return invitation


def remove_member(session: Session, actor: User, company_id: int, user_id: int) -> User:
    """End a member's role in the company at once: they no longer see its private problems or act
    for it. What they did stays theirs (problems they posted, introductions they made). Owners and
    admins remove employees, only the owner removes admins, an owner or admin may step down, and a
    company always keeps an owner or admin. Returns the member removed."""
    actor_role = require_manager(session, actor, company_id)
    membership = session.get(Membership, (company_id, user_id))
    if membership is None:
        raise NotFound("No such member.")
    if membership.user_id != actor.id:
        if membership.role == Role.OWNER:
            raise Forbidden("The owner cannot be removed; only they can step down.")
        _require_authority_over(actor_role, membership.role, "remove an admin")
    if membership.role.manages:
        # The company's row is locked, so two managers removing each other cannot both succeed.
        session.execute(select(Company.id).where(Company.id == company_id).with_for_update())
        managers = session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.company_id == company_id, Membership.role.in_([Role.OWNER, Role.ADMIN]))
        )
        if (managers or 0) <= 1:
            raise Conflict("A company keeps at least one owner or admin; this is its last one.", code="last_admin")
    company = get_company(session, company_id)
    member, role = membership.user, membership.role
    session.delete(membership)
    session.flush()
    signals.member_removed.send(company, session=session, member=member, role=role, actor=actor)
    return member


# API tokens ------------------------------------------------------------------------------------


def create_api_token(session: Session, user: User, *, name: str = "API token") -> tuple[ApiToken, str]:
    name = text.single_line(name, "The token's name").strip()[:80] or "API token"
    raw = "mp_" + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=sha256_hex(raw), prefix=raw[:10])
    session.add(token)
    session.flush()
    return token, raw


def user_for_token(session: Session, raw: str) -> User:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == sha256_hex(raw)))
    if token is None or token.revoked_at is not None:
        raise Unauthorized("The API token is missing, revoked or wrong.", code="bad_token")
    return token.user


def revoke_api_token(session: Session, user: User, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("No such token.")
    token.revoked_at = token.revoked_at or utcnow()
    session.flush()


def api_tokens_of(session: Session, user: User, window: Window | None = None) -> list[ApiToken]:
    """The member's working tokens, newest first; with a ``window``, that page (``keyset.seek``)."""
    query = select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    if window is not None:
        return list(session.scalars(seek(query, ApiToken.created_at, ApiToken.id, window, descending=True)))
    return list(session.scalars(query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))
