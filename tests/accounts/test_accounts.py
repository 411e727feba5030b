"""Accounts and companies through the pages (CSRF on) and the JSON API: sign-up, log-in, log-out,
password reset, profiles, API tokens, companies and invitations, rate limits and headers."""

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from werkzeug.security import check_password_hash

from marketplace import create_app
from marketplace.accounts import service as accounts
from marketplace.accounts.models import ApiToken, Company, Invitation, Membership, PasswordReset, Role, User
from marketplace.db import db, utcnow
from marketplace.errors import ValidationError
from marketplace.extensions import limiter
from marketplace.jobs.models import Job
from tests.builders import count
from tests.conftest import FAST_PASSWORD_HASH, PASSWORD, Browser

NEW_PASSWORD = "a-brand-new-secret"


def user_by_email(session, email: str) -> User | None:
    session.expire_all()
    user = session.scalar(select(User).where(User.email == email))
    session.commit()
    return user


def link_in(message) -> str:
    """The path of the (single) link in an e-mail sent by the app."""
    match = re.search(r"http://localhost(/\S+)", message.get_body(("plain",)).get_content())
    assert match, message.get_body(("plain",)).get_content()
    return match.group(1)


def is_logged_in(browser) -> bool:
    return browser.get("/dashboard").status_code == 200


# Sign-up ---------------------------------------------------------------------------------------


def test_signup_page_creates_account_logs_in_and_stores_only_a_password_hash(browser, session, real_password_hashing):
    person = browser()
    response = person.signup("Nora Newcomer", "Nora@Example.com")

    assert response.status_code == 200
    assert "Your profile" in response.text and "Welcome, Nora Newcomer" in response.text
    user = user_by_email(session, "nora@example.com")
    assert user is not None and user.name == "Nora Newcomer"
    assert user.password_hash != PASSWORD and PASSWORD not in user.password_hash
    assert user.password_hash.startswith("scrypt:")
    assert check_password_hash(user.password_hash, PASSWORD)
    assert is_logged_in(person)


def test_signup_with_taken_email_rerenders_form_with_message_and_creates_nothing(browser, session, make_user):
    make_user("Ann Li", "ann@example.com")
    before = count(session, User)

    response = browser().signup("Another Ann", "ANN@example.com")

    assert response.status_code == 200
    assert "Create your account" in response.text
    assert "An account with this e-mail already exists." in response.text
    assert count(session, User) == before


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", PASSWORD, "Invalid email address."),
        ("short@example.com", "short", "between 8 and 128 characters"),
    ],
    ids=["bad-email", "short-password"],
)
def test_signup_with_invalid_input_shows_message_and_creates_nothing(browser, session, email, password, message):
    response = browser().signup("Someone", email, password)

    assert response.status_code == 200
    assert "Create your account" in response.text
    assert message in response.text
    assert count(session, User) == 0


# Log-in and log-out ----------------------------------------------------------------------------


def test_login_with_right_password_opens_the_dashboard(browser, make_user):
    make_user("Ann Li", "ann@example.com")
    person = browser()

    response = person.submit("/login", {"email": "ann@example.com", "password": PASSWORD}, follow=False)

    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    assert is_logged_in(person)


def test_wrong_password_and_unknown_email_get_the_same_message(browser, make_user):
    make_user("Ann Li", "ann@example.com")
    person = browser()

    wrong_password = person.login("ann@example.com", "not-her-password")
    unknown_email = person.login("nobody@example.com", "whatever-password")

    for response in (wrong_password, unknown_email):
        assert response.status_code == 200
        assert "Wrong e-mail or password." in response.text
    assert not is_logged_in(person)


def test_logout_needs_post_with_csrf_token(browser, make_user):
    make_user("Ann Li", "ann@example.com")
    person = browser()
    person.login("ann@example.com")
    assert is_logged_in(person)

    assert person.client.get("/logout").status_code == 405
    forged = person.client.post("/logout", data={})
    assert forged.status_code == 400
    assert is_logged_in(person), "a POST without a CSRF token must change nothing"

    response = person.submit("/dashboard", action="/logout")
    assert response.status_code == 200 and "You are logged out." in response.text
    assert not is_logged_in(person)


def test_next_parameter_pointing_off_site_is_ignored_after_login(browser, make_user):
    make_user("Ann Li", "ann@example.com")
    credentials = {"email": "ann@example.com", "password": PASSWORD}

    for target in ("https://evil.example.com/", "//evil.example.com/x", "javascript:alert(1)"):
        person = browser()
        response = person.submit(f"/login?next={target}", credentials, follow=False)
        assert response.status_code == 302
        assert response.headers["Location"] == "/dashboard", target

    person = browser()
    response = person.submit("/login?next=/profile", credentials, follow=False)
    assert response.headers["Location"] == "/profile"


# Password reset --------------------------------------------------------------------------------


def test_password_reset_mail_link_works_once(app, browser, make_user, sent_mail, session):
    make_user("Ann Li", "ann@example.com")
    person = browser()

    answer = person.submit("/password/forgot", {"email": "ann@example.com"})
    assert "If that address has an account, a reset link is on its way." in answer.text
    assert len(sent_mail) == 1 and sent_mail[0]["To"] == "ann@example.com"
    saved = list((Path(app.instance_path) / "mail").glob("*.eml"))
    assert len(saved) == 1 and b"ann@example.com" in saved[0].read_bytes()

    link = link_in(sent_mail[0])
    assert link.startswith("/password/reset/")
    done = person.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert "Your password is changed; log in with it." in done.text
    assert "Wrong e-mail or password." in browser().login("ann@example.com", PASSWORD).text
    new_login = browser()
    new_login.login("ann@example.com", NEW_PASSWORD)
    assert is_logged_in(new_login)

    again = person.submit(link, {"password": "third-password!", "confirm": "third-password!"})
    assert "This reset link has already been used." in again.text
    assert check_password_hash(user_by_email(session, "ann@example.com").password_hash, NEW_PASSWORD)


def reset_link_for(session, sent_mail, email="ann@example.com"):
    accounts.request_password_reset(session, email)
    session.flush()
    return link_in(sent_mail[-1])


@pytest.mark.parametrize("kind", ["expired", "garbage"])
def test_password_reset_refuses_expired_or_garbage_token(browser, make_user, session, kind, sent_mail):
    make_user("Ann Li", "ann@example.com")
    if kind == "expired":
        link = reset_link_for(session, sent_mail)
        session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
        token = link.rsplit("/", 1)[1]
        expected = "This reset link has expired"
    else:
        token = "not-a-token.at-all"
        expected = "This reset link is not valid."

    response = browser().submit(f"/password/reset/{token}", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})

    assert response.status_code == 200 and expected in response.text
    assert check_password_hash(user_by_email(session, "ann@example.com").password_hash, PASSWORD)


def test_reset_token_is_opaque_and_only_its_hash_is_stored(make_user, session, sent_mail):
    user = make_user("Ann Li", "ann@example.com")
    token = reset_link_for(session, sent_mail).rsplit("/", 1)[1]

    assert len(token) >= 40
    hash_hex = user.password_hash.rsplit("$", 1)[-1]
    assert not any(hash_hex[i : i + 8] in token for i in range(len(hash_hex) - 7))
    stored = session.scalars(select(PasswordReset)).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in stored.token_hash
    assert stored.expires_at - stored.created_at == timedelta(hours=1) and stored.used_at is None


def test_using_one_reset_link_voids_the_others_and_a_password_change_voids_all(make_user, session, sent_mail):
    user = make_user("Ann Li", "ann@example.com")
    first = reset_link_for(session, sent_mail).rsplit("/", 1)[1]
    second = reset_link_for(session, sent_mail).rsplit("/", 1)[1]

    accounts.reset_password(session, token=second, password=NEW_PASSWORD)
    with pytest.raises(ValidationError, match="already been used"):
        accounts.reset_password(session, token=second, password="yet-another-secret")
    with pytest.raises(ValidationError, match="already been used"):
        accounts.reset_password(session, token=first, password="yet-another-secret")

    third = reset_link_for(session, sent_mail).rsplit("/", 1)[1]
    accounts.change_password(session, user.id, current_password=NEW_PASSWORD, new_password="a-third-secret-here")
    with pytest.raises(ValidationError, match="already been used"):
        accounts.reset_password(session, token=third, password="yet-another-secret")


def test_reset_with_a_weak_password_leaves_the_link_usable(make_user, session, sent_mail):
    make_user("Ann Li", "ann@example.com")
    token = reset_link_for(session, sent_mail).rsplit("/", 1)[1]

    with pytest.raises(ValidationError) as refused:
        accounts.reset_password(session, token=token, password="aaaaaaaa")
    assert refused.value.code == "weak_password"
    accounts.reset_password(session, token=token, password=NEW_PASSWORD)


def test_password_reset_for_unknown_email_answers_the_same_and_sends_nothing(app, browser, sent_mail):
    response = browser().submit("/password/forgot", {"email": "nobody@example.com"})

    assert response.status_code == 200
    assert "If that address has an account, a reset link is on its way." in response.text
    assert sent_mail == []
    assert not list((Path(app.instance_path) / "mail").glob("*.eml"))


# Profile and API tokens ------------------------------------------------------------------------


def test_profile_saves_name_headline_normalised_skills_and_privacy_flag(browser, make_user, session):
    make_user("Ann Li", "ann@example.com")
    person = browser()
    person.login("ann@example.com")

    response = person.submit(
        "/profile",
        {"name": "Ann Li-Park", "headline": "DBA for hire", "skills": "Postgres, postgresql , K8s"},
    )  # The privacy checkbox left unticked: the name is hidden on chains.

    assert "Profile saved." in response.text
    user = user_by_email(session, "ann@example.com")
    assert (user.name, user.headline, user.show_name_on_chains) == (
        "Ann Li-Park",
        "DBA for hire",
        False,
    )
    assert sorted(skill.slug for skill in user.skills) == ["kubernetes", "postgresql"]
    session.commit()

    person.submit(
        "/profile",
        {"name": "Ann Li-Park", "headline": "", "skills": "k8s", "show_name_on_chains": "y"},
    )
    user = user_by_email(session, "ann@example.com")
    assert user.show_name_on_chains is True
    assert [skill.slug for skill in user.skills] == ["kubernetes"]


def test_api_token_from_profile_is_shown_once_stored_hashed_and_revocable(browser, client, make_user, session):
    make_user("Ann Li", "ann@example.com")
    person = browser()
    person.login("ann@example.com")

    created = person.submit("/profile", {"name": "CI runner"}, action="/profile/tokens")
    match = re.search(r'<code class="user-select-all">(mp_[^<]+)</code>', created.text)
    assert match, "the new token is shown on the page"
    raw = match.group(1)

    row = session.scalar(select(ApiToken))
    session.commit()
    assert row.name == "CI runner"
    assert row.token_hash == accounts.sha256_hex(raw) and raw != row.token_hash
    assert row.prefix == raw[:10] and len(row.prefix) < len(raw)
    assert raw not in person.get("/profile").text, "a token is shown only once"

    bearer = {"Authorization": f"Bearer {raw}"}
    me = client.get("/api/v1/me", headers=bearer)
    assert me.status_code == 200 and me.json["email"] == "ann@example.com"

    person.submit("/profile", action=f"/profile/tokens/{row.id}/revoke")
    refused = client.get("/api/v1/me", headers=bearer)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "bad_token"


def test_api_token_endpoint_refuses_wrong_password_and_issues_a_working_token(api, make_user):
    make_user("Ann Li", "ann@example.com")
    anonymous = api()

    wrong = anonymous.post("/tokens", {"email": "ann@example.com", "password": "wrong-password"})
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "bad_credentials"
    unknown = anonymous.post("/tokens", {"email": "nobody@example.com", "password": PASSWORD})
    assert unknown.status_code == 401 and unknown.json == wrong.json

    issued = anonymous.post("/tokens", {"email": "ann@example.com", "password": PASSWORD})
    assert issued.status_code == 201 and issued.json["token"].startswith("mp_")
    me = anonymous.client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued.json['token']}"})
    assert me.status_code == 200 and me.json["name"] == "Ann Li"


def test_api_me_without_or_with_bad_token_is_401(api):
    assert api().get("/me").status_code == 401
    response = api().client.get("/api/v1/me", headers={"Authorization": "Bearer mp_nope"})
    assert response.status_code == 401
    assert set(response.json["error"]) == {"code", "message"}


def test_api_signup_returns_201_then_409_for_the_same_email(api, session):
    anonymous = api()
    body = {"email": "Api@Example.com", "password": PASSWORD, "name": "Api User"}

    created = anonymous.post("/users", body)
    assert created.status_code == 201
    assert set(created.json) == {"id", "email", "name"}
    assert created.json["email"] == "api@example.com" and created.json["name"] == "Api User"

    duplicate = anonymous.post("/users", body)
    assert duplicate.status_code == 409
    assert duplicate.json["error"]["code"] == "email_taken"
    assert count(session, User) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"email": "no-at-sign", "password": PASSWORD, "name": "X"},
        {"email": "ok@example.com", "password": "short", "name": "X"},
        {"email": "ok@example.com", "password": PASSWORD, "name": "   "},
        {"email": "ok@example.com"},
        {"email": 12, "password": PASSWORD, "name": "X"},
    ],
    ids=["bad-email", "short-password", "blank-name", "missing-fields", "wrong-type"],
)
def test_api_signup_with_invalid_body_is_422_with_error_shape(api, session, body):
    response = api().post("/users", body)

    assert response.status_code == 422
    assert set(response.json) == {"error"}
    assert isinstance(response.json["error"]["code"], str) and response.json["error"]["message"]
    assert count(session, User) == 0


# Companies and invitations ---------------------------------------------------------------------


def test_company_created_from_page_makes_creator_owner(browser, make_user, session):
    olivia = make_user("Olivia Owner", "olivia@example.com")
    person = browser()
    person.login("olivia@example.com")

    response = person.submit("/companies/new", {"name": "Acme Data", "description": "Databases."})

    assert response.status_code == 200 and "Acme Data is set up." in response.text
    company = session.scalar(select(Company))
    session.commit()
    assert company.name == "Acme Data"
    assert accounts.role_in(session, olivia, company.id) == Role.OWNER
    session.commit()


def test_company_created_through_api_makes_creator_owner(api, make_user):
    owner = api(make_user("Olivia Owner", "olivia@example.com"))

    created = owner.post("/companies", {"name": "Acme Data"})
    assert created.status_code == 201 and created.json["name"] == "Acme Data"
    assert owner.post("/companies", {"name": "A"}).status_code == 422

    me = owner.get("/me").json
    assert me["companies"] == [{"id": created.json["id"], "name": "Acme Data", "role": "owner"}]


@pytest.mark.parametrize("role", ["employee", "admin"])
def test_owner_invites_by_email_and_invitee_joins_with_that_role_through_the_link(
    browser, make_user, sent_mail, session, role
):
    owner = make_user("Olivia Owner", "olivia@example.com")
    invitee = make_user("Ivy Invitee", "ivy@example.com")
    company = accounts.create_company(session, owner, name="Acme Data")
    session.commit()
    olivia = browser()
    olivia.login("olivia@example.com")

    sent = olivia.submit(
        f"/companies/{company.id}",
        {"email": "ivy@example.com", "role": role},
        action=f"/companies/{company.id}/invitations",
    )
    assert "Invitation sent to ivy@example.com." in sent.text
    assert len(sent_mail) == 1 and sent_mail[0]["To"] == "ivy@example.com"
    link = link_in(sent_mail[0])
    assert link.startswith("/invitations/")

    ivy = browser()
    ivy.login("ivy@example.com")
    page = ivy.get(link)
    assert "invites you to join Acme Data" in page.text and f"as {role}" in page.text
    joined = ivy.submit(link)
    assert joined.status_code == 200 and "You joined Acme Data." in joined.text
    assert accounts.role_in(session, invitee, company.id) == Role(role)
    session.commit()


def test_invitation_link_is_refused_for_a_user_with_another_email(api, browser, make_user, session):
    owner = make_user("Olivia Owner", "olivia@example.com")
    make_user("Mallory Other", "mallory@example.com")
    company = accounts.create_company(session, owner, name="Acme Data")
    _, token = accounts.invite(session, owner, company.id, email="ivy@example.com", role="admin")
    session.commit()
    mallory = browser()
    mallory.login("mallory@example.com")

    response = mallory.submit(f"/invitations/{token}")
    assert response.status_code == 403
    assert "This invitation was sent to ivy@example.com" in response.text

    over_api = api(user_by_email(session, "mallory@example.com")).post(f"/invitations/{token}/accept")
    assert over_api.status_code == 403

    assert count(session, Membership) == 1  # Only the owner.
    assert session.scalar(select(Invitation.accepted_at)) is None
    session.commit()


def test_admin_cannot_invite_admins_and_employee_cannot_invite(api, browser, world, session):
    company = world.company
    adam = browser()
    adam.login(world.admin.email)

    refused = adam.submit(
        f"/companies/{company.id}",
        {"email": "boss@example.com", "role": "admin"},
        action=f"/companies/{company.id}/invitations",
    )
    assert refused.status_code == 403 and "Only the owner can invite admins." in refused.text
    allowed = adam.submit(
        f"/companies/{company.id}",
        {"email": "helper@example.com", "role": "employee"},
        action=f"/companies/{company.id}/invitations",
    )
    assert "Invitation sent to helper@example.com." in allowed.text

    employee = api(world.employee)
    for role in ("employee", "admin"):
        response = employee.post(f"/companies/{company.id}/members", {"email": "x@example.com", "role": role})
        assert response.status_code == 403
    ethan = browser()
    ethan.login(world.employee.email)
    assert 'name="role"' not in ethan.get(f"/companies/{company.id}").text
    forbidden = ethan.submit(
        "/dashboard",
        {"email": "y@example.com", "role": "employee"},
        action=f"/companies/{company.id}/invitations",
    )
    assert forbidden.status_code == 403

    invited = session.scalars(select(Invitation.email).order_by(Invitation.email)).all()
    session.commit()
    assert "boss@example.com" not in invited and "x@example.com" not in invited
    assert "helper@example.com" in invited


def test_owner_invites_over_api_and_invitee_accepts_over_api(api, world, make_user, sent_mail):
    newcomer = make_user("Nia Newcomer", "nia@example.com")

    invited = api(world.owner).post(
        f"/companies/{world.company.id}/members", {"email": "nia@example.com", "role": "admin"}
    )
    assert invited.status_code == 201
    assert invited.json["role"] == "admin" and invited.json["status"] == "invited"
    token = link_in(sent_mail[-1]).rsplit("/", 1)[1]

    accepted = api(newcomer).post(f"/invitations/{token}/accept")
    assert accepted.status_code == 200 and accepted.json["id"] == world.company.id
    assert api(newcomer).post(f"/invitations/{token}/accept").status_code == 409


def test_a_user_can_belong_to_several_companies(api, world, session):
    other = accounts.create_company(session, world.owner, name="Beta Labs")
    _, token = accounts.invite(session, world.owner, other.id, email=world.employee.email, role="admin")
    accounts.accept_invitation(session, world.employee, token)
    session.commit()

    me = api(world.employee).get("/me").json

    assert sorted((c["name"], c["role"]) for c in me["companies"]) == [
        ("Acme Data", "employee"),
        ("Beta Labs", "admin"),
    ]


# Rate limits and headers -----------------------------------------------------------------------


@pytest.fixture
def limited_app(database_url, tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "BASE_URL": "http://localhost",
            "RATELIMIT_ENABLED": True,
            "AUTH_RATE_LIMIT": "3 per minute",
            "STRIPE_SECRET_KEY": "",
            "PASSWORD_HASH_METHOD": FAST_PASSWORD_HASH,
        }
    )
    yield app
    db.remove()
    db.dispose()


def test_fourth_login_post_within_a_minute_is_429(limited_app):
    person = Browser(limited_app)
    statuses = [person.login("nobody@example.com", "wrong-password").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    assert person.get("/login").status_code == 200, "only POSTs are limited"
    assert person.get("/problems").status_code == 200, "a view without a limit is never refused"
    # The limited view checked its own limit: Flask-Limiter's check before every request is off.
    assert limiter._check_request_limit not in limited_app.before_request_funcs.get(None, [])


@pytest.mark.parametrize("setting", ["RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION"])
def test_a_limit_for_every_view_at_once_is_refused_at_start(setting, database_url, tmp_path):
    """Limits are checked by the views that carry them (``marketplace.extensions``): a default
    limit would never be checked, so the app refuses to start with one."""
    with pytest.raises(RuntimeError, match=setting):
        create_app(
            {
                "TESTING": True,
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test-secret",
                "INSTANCE_PATH": str(tmp_path / "instance"),
                setting: "100 per minute",
            }
        )


def test_fourth_api_signup_within_a_minute_is_429_json(limited_app):
    client = limited_app.test_client()
    statuses = []
    for number in range(4):
        response = client.post(
            "/api/v1/users",
            json={"email": f"user{number}@example.com", "password": PASSWORD, "name": "U"},
        )
        statuses.append(response.status_code)

    assert statuses == [201, 201, 201, 429]
    assert response.is_json and response.json["error"]["code"] == "too_many_requests"
    assert set(response.json["error"]) == {"code", "message"}


def test_a_fourth_password_or_address_change_within_a_minute_is_429_json(limited_app):
    """The routes that check the current password are limited like the log-in page, so a
    stolen token cannot be used to guess the password."""
    client = limited_app.test_client()
    client.post("/api/v1/users", json={"email": "sam@example.com", "password": PASSWORD, "name": "Sam"})
    token = client.post("/api/v1/tokens", json={"email": "sam@example.com", "password": PASSWORD}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    guesses = {
        "/api/v1/me/password": {"current_password": "a guess", "new_password": "an entirely new passphrase 42"},
        "/api/v1/me/email": {"email": "sam.new@example.com", "password": "a guess"},
    }

    for url, body in guesses.items():
        statuses = [client.post(url, json=body, headers=headers).status_code for _ in range(4)]

        assert statuses == [401, 401, 401, 429], url


SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")


@pytest.mark.parametrize("url", ["/login", "/api/v1/problems", "/api/v1/me"])
def test_security_headers_on_pages_and_api_responses(client, url):
    response = client.get(url)

    for header in SECURITY_HEADERS:
        assert response.headers.get(header), (url, header)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert len(response.headers.getlist("Content-Security-Policy")) == 1
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP here


@pytest.mark.parametrize("app_overrides", [{"FRAUD_SCREENING": False, "SESSION_COOKIE_SECURE": True}])
def test_over_https_every_response_asks_browsers_to_stay_on_https(client):
    response = client.get("/login")

    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_a_header_the_view_set_is_kept_over_the_default(client, open_problem):
    """A visitor's cached page says any cache may keep it; every other response says none may."""
    open_problem()

    assert client.get("/problems").headers.getlist("Cache-Control") == ["public, no-cache"]
    assert client.get("/login").headers.getlist("Cache-Control") == ["private, no-cache"]


@pytest.mark.parametrize("secret", ["reset", "invitation", "confirmation"])
def test_no_mail_job_holds_any_part_of_the_secret_its_link_carries(secret, make_user, session, sent_mail, world):
    """The tables keep reset, invitation and confirmation tokens only as hashes; the outbox keeps
    the e-mail until it is sent, so its job holds the link encrypted, and the key names it by a hash."""
    if secret == "reset":
        accounts.request_password_reset(session, world.ann.email)
    elif secret == "invitation":
        accounts.invite(session, world.owner, world.company.id, email="new.hire@elsewhere.example", role="admin")
    else:
        accounts.sign_up(session, email="newcomer@elsewhere.example", password=PASSWORD, name="New Comer")
    session.commit()
    [job] = session.scalars(select(Job).where(Job.kind == "email.send").order_by(Job.id.desc()).limit(1))
    stored = json.dumps(job.payload) + job.idempotency_key

    link = re.search(r"http://localhost(/\S+/)([\w-]{20,})", sent_mail[-1].get_body(("plain",)).get_content())
    assert link, "the e-mail carries the working link"
    token = link.group(2)
    assert not any(token[i : i + 8] in stored for i in range(len(token) - 7))
    assert job.payload["sealed_link"] and job.payload["link"] == ""
