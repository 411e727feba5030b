"""Sessions that end: log-out, a password reset, a password change and "log out everywhere" each
leave a copy of an old session cookie or "remember me" cookie worthless (and, where asked, the API
tokens); API tokens listed and revoked over the API; the profile page after creating a token."""

import re
import time

import pytest
from sqlalchemy import func, select

from marketplace.accounts import service as accounts
from marketplace.accounts.models import ApiToken, User
from tests.conftest import PASSWORD, Browser, csrf_token

NEW_PASSWORD = "a-brand-new-secret"
SESSION, REMEMBER = "session", "remember_token"


@pytest.fixture
def ann(make_user):
    return make_user("Ann Li", "ann@example.com", skills="postgres")


def logged_in(app, *, remember=False) -> Browser:
    person = Browser(app)
    data = {"email": "ann@example.com", "password": PASSWORD, **({"remember": "y"} if remember else {})}
    person.submit("/login", data)
    return person


def cookies(person: Browser) -> dict[str, str]:
    """Copies of the browser's session and remember cookies, as someone who took them would keep."""
    return {name: cookie.value for name in (SESSION, REMEMBER) if (cookie := person.client.get_cookie(name))}


def dashboard_with(app, name: str, value: str):
    """The dashboard asked for by a new browser that carries only this one cookie."""
    client = app.test_client()
    client.set_cookie(name, value)
    return client.get("/dashboard")


def assert_cookies_work(app, copied: dict[str, str]) -> None:
    assert set(copied) == {SESSION, REMEMBER}
    for name, value in copied.items():
        assert dashboard_with(app, name, value).status_code == 200, name


def assert_cookies_refused(app, copied: dict[str, str]) -> None:
    for name, value in copied.items():
        response = dashboard_with(app, name, value)
        assert response.status_code == 302, name
        assert response.headers["Location"].startswith("/login"), name


def is_logged_in(person: Browser) -> bool:
    return person.get("/dashboard").status_code == 200


def bearer(client, raw: str):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})


def token_of(session, user) -> str:
    _, raw = accounts.create_api_token(session, user, name="Laptop")
    session.commit()
    return raw


# Log-out ---------------------------------------------------------------------------------------


def test_logout_ends_the_session_and_the_remember_cookie(app, ann):
    person = logged_in(app, remember=True)
    copied = cookies(person)
    assert_cookies_work(app, copied)

    response = person.submit("/dashboard", action="/logout")

    assert "You are logged out." in response.text
    assert person.client.get_cookie(REMEMBER) is None, "the remember cookie is deleted"
    assert not is_logged_in(person)
    assert_cookies_refused(app, copied)
    assert is_logged_in(logged_in(app)), "logging in again works"


def test_a_cookie_from_before_session_versions_names_no_one(session, ann):
    assert accounts.user_for_session(session, str(ann.id)) is None
    assert accounts.user_for_session(session, f"{ann.id}:{ann.session_version}") == ann
    assert accounts.user_for_session(session, f"{ann.id}:{ann.session_version + 1}") is None
    assert accounts.user_for_session(session, "x:1") is None


def test_a_session_cookie_is_checked_against_the_secret_key_in_force(app, ann):
    """The cookie's signing serializer is built once per set of keys
    (``marketplace.web.session_cookies``): a rotated key must still refuse a cookie signed with
    an old key that is no longer among the fallbacks, and accept one whose key still is."""
    copied = {SESSION: cookies(logged_in(app))[SESSION]}
    assert dashboard_with(app, SESSION, copied[SESSION]).status_code == 200, "signed with the key in force"
    old_key, old_fallbacks = app.secret_key, app.config["SECRET_KEY_FALLBACKS"]
    try:
        app.secret_key, app.config["SECRET_KEY_FALLBACKS"] = "a-rotated-key", [old_key]
        assert dashboard_with(app, SESSION, copied[SESSION]).status_code == 200, "the old key is a fallback"
        app.config["SECRET_KEY_FALLBACKS"] = []
        assert_cookies_refused(app, copied)
    finally:
        app.secret_key, app.config["SECRET_KEY_FALLBACKS"] = old_key, old_fallbacks
    assert dashboard_with(app, SESSION, copied[SESSION]).status_code == 200, "the first key again"


# Password reset --------------------------------------------------------------------------------


def test_password_reset_ends_every_session_but_leaves_api_tokens(app, client, session, ann, sent_mail):
    raw = token_of(session, ann)
    person = logged_in(app, remember=True)
    copied = cookies(person)
    assert_cookies_work(app, copied)

    stranger = Browser(app)
    stranger.submit("/password/forgot", {"email": "ann@example.com"})
    link = re.search(r"http://localhost(/\S+)", sent_mail[0].get_body(("plain",)).get_content()).group(1)
    done = stranger.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert "Your password is changed; log in with it." in done.text

    assert not is_logged_in(person), "the browser that was logged in is logged out"
    assert_cookies_refused(app, copied)
    assert bearer(client, raw).status_code == 200, "a reset does not revoke API tokens"


# Password change -------------------------------------------------------------------------------


def test_password_change_keeps_this_session_and_ends_the_others_and_with_the_box_the_tokens(app, client, session, ann):
    raw = token_of(session, ann)
    person = logged_in(app, remember=True)
    elsewhere = logged_in(app, remember=True)
    before = cookies(person)
    assert_cookies_work(app, before)

    changed = person.submit(
        "/profile",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
            "revoke_tokens": "y",
        },
        action="/profile/password",
    )

    assert "Password changed; your other sessions are logged out and your API tokens revoked." in changed.text
    assert is_logged_in(person), "the session that changed the password goes on"
    assert_cookies_work(app, cookies(person))  # and its remember cookie is made anew
    assert_cookies_refused(app, before)
    assert not is_logged_in(elsewhere)
    refused = bearer(client, raw)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "bad_token"
    assert "Wrong e-mail or password." in Browser(app).login("ann@example.com", PASSWORD).text
    assert is_logged_in(logged_in_with(app, NEW_PASSWORD))


def logged_in_with(app, password: str) -> Browser:
    person = Browser(app)
    person.login("ann@example.com", password)
    return person


def test_password_change_without_the_box_keeps_tokens(app, client, session, ann):
    raw = token_of(session, ann)
    person = logged_in(app)
    data = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}

    changed = person.submit("/profile", data, action="/profile/password")

    assert "Password changed; your other sessions are logged out." in changed.text
    assert bearer(client, raw).status_code == 200


def test_password_change_with_a_wrong_current_password_changes_nothing(app, ann):
    person = logged_in(app)
    elsewhere = logged_in(app)
    data = {"current_password": "not-my-password", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}

    refused = person.submit("/profile", data, action="/profile/password")

    assert refused.status_code == 200 and "Your current password is not that." in refused.text
    assert 'action="/profile"' in refused.text, "the profile form still saves the profile"
    assert is_logged_in(person) and is_logged_in(elsewhere)
    assert is_logged_in(logged_in_with(app, PASSWORD))


# Log out everywhere ----------------------------------------------------------------------------


def test_logout_everywhere_ends_every_session_of_the_user_and_with_the_box_the_tokens(
    app, client, session, ann, make_user
):
    raw = token_of(session, ann)
    make_user("Bob Martins", "bob@example.com")
    bob = Browser(app)
    bob.login("bob@example.com")
    person = logged_in(app, remember=True)
    laptop = logged_in(app, remember=True)
    phone = logged_in(app)
    copied = {"person": cookies(person), "laptop": cookies(laptop)}
    for each in copied.values():
        assert_cookies_work(app, each)

    response = person.submit("/profile", {"revoke_all_tokens": "y"}, action="/profile/logout-everywhere")

    assert "You are logged out everywhere and your API tokens are revoked." in response.text
    assert not any(is_logged_in(browser) for browser in (person, laptop, phone))
    for each in copied.values():
        assert_cookies_refused(app, each)
    refused = bearer(client, raw)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "bad_token"
    assert is_logged_in(bob), "another user's session is not touched"
    assert is_logged_in(logged_in(app)), "logging in again works"


def test_logout_everywhere_without_the_box_keeps_tokens(app, client, session, ann):
    raw = token_of(session, ann)
    person = logged_in(app)
    phone = logged_in(app)

    response = person.submit("/profile", action="/profile/logout-everywhere")

    assert "You are logged out everywhere." in response.text
    assert not is_logged_in(person) and not is_logged_in(phone)
    assert bearer(client, raw).status_code == 200


def test_logout_everywhere_needs_the_csrf_token(app, ann):
    person = logged_in(app)
    forged = person.client.post("/profile/logout-everywhere", data={"revoke_all_tokens": "y"})
    assert forged.status_code == 400
    assert is_logged_in(person)


# The profile page after creating a token ------------------------------------------------------


def test_profile_page_after_creating_a_token_still_saves_the_profile(app, session, ann):
    person = logged_in(app)

    page = person.submit("/profile", {"name": "CI runner"}, action="/profile/tokens")

    assert re.search(r'<code class="user-select-all">mp_[^<]+</code>', page.text)
    profile_form = re.search(r'<form action="([^"]+)"[^>]*>(.*?)</form>', page.text, re.DOTALL)
    action, fields = profile_form.groups()
    assert action == "/profile"
    assert 'value="Ann Li"' in fields and 'value="PostgreSQL"' in fields
    assert "CI runner" not in fields and "&lt;" not in fields

    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    saved = person.client.post(
        action,
        data={"csrf_token": csrf, "name": "Ann Li-Park", "headline": "DBA", "skills": "PostgreSQL, Python"},
        follow_redirects=True,
    )

    assert "Profile saved." in saved.text
    session.expire_all()
    user = session.get(User, ann.id)
    assert (user.name, user.headline) == ("Ann Li-Park", "DBA")
    assert [skill.slug for skill in user.skills] == ["postgresql", "python"]
    assert session.scalar(select(func.count()).select_from(ApiToken)) == 1, "saving minted no token"
    session.commit()


# API tokens over the API -----------------------------------------------------------------------


def test_api_lists_the_callers_tokens_without_the_tokens_themselves(api, session, ann, make_user):
    caller = api(ann)
    laptop = token_of(session, ann)
    token_of(session, make_user("Bob Martins", "bob@example.com"))

    listed = caller.get("/me/tokens")

    assert listed.status_code == 200
    assert [token["name"] for token in listed.json] == ["Laptop", "API token"]
    assert set(listed.json[0]) == {"id", "name", "prefix", "created_at"}
    assert listed.json[0]["prefix"] == laptop[:10]
    assert laptop not in listed.text and caller.token not in listed.text


def test_api_revokes_own_token_and_another_users_token_is_404(api, client, session, ann, make_user):
    caller = api(ann)
    laptop = token_of(session, ann)
    bob = make_user("Bob Martins", "bob@example.com")
    bobs = token_of(session, bob)
    ids = {token["name"]: token["id"] for token in caller.get("/me/tokens").json}
    bobs_id = session.scalar(select(ApiToken.id).where(ApiToken.user_id == bob.id))
    session.commit()

    other = caller.delete(f"/me/tokens/{bobs_id}")
    assert other.status_code == 404 and set(other.json["error"]) == {"code", "message"}
    assert bearer(client, bobs).status_code == 200

    revoked = caller.delete(f"/me/tokens/{ids['Laptop']}")
    assert revoked.status_code == 204
    assert bearer(client, laptop).status_code == 401
    assert [token["name"] for token in caller.get("/me/tokens").json] == ["API token"]

    assert caller.delete(f"/me/tokens/{ids['API token']}").status_code == 204, "the token in use too"
    refused = caller.get("/me/tokens")
    assert refused.status_code == 401 and refused.json["error"]["code"] == "bad_token"


def test_api_token_routes_need_a_token(api):
    for response in (api().get("/me/tokens"), api().delete("/me/tokens/1")):
        assert response.status_code == 401 and set(response.json["error"]) == {"code", "message"}


# CSRF tokens -----------------------------------------------------------------------------------


def test_a_session_keeps_its_csrf_token_and_another_session_has_its_own(app, ann):
    """Each process signs a session's CSRF token once (``web.csrf_tokens``): a page a second
    later carries the same token, a form posted with it goes through, and another session's
    token differs and is refused in this one."""
    person, other = logged_in(app), logged_in(app)
    first = csrf_token(person.get("/profile").text)
    time.sleep(1.1)  # a token signed anew would carry a later timestamp
    assert csrf_token(person.get("/notifications").text) == first
    theirs = csrf_token(other.get("/profile").text)
    assert theirs != first
    profile = {"name": "Ann Li", "headline": "DBA", "skills": "PostgreSQL"}
    assert person.client.post("/profile", data={"csrf_token": theirs, **profile}).status_code == 400
    saved = person.client.post("/profile", data={"csrf_token": first, **profile}, follow_redirects=True)
    assert saved.status_code == 200 and 'value="DBA"' in saved.text
