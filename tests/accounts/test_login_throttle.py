"""The per-account log-in throttle: after a few wrong passwords for one address, further attempts
on it (pages and API tokens alike) wait, answered 429 with a Retry-After that grows to a cap;
the owner's browser, carrying the device cookie of an earlier log-in, is never made to wait; a
successful log-in or a password reset clears the count."""

import time

import pytest

from marketplace.accounts.login_throttle import DEVICE_COOKIE
from tests.accounts.test_accounts import is_logged_in, link_in
from tests.conftest import PASSWORD

WRONG = "not-the-password"


@pytest.fixture
def throttle(app):
    """Three free failures, then a 30 s wait: long enough that no test outruns it by accident."""
    throttle = app.extensions["login_throttle"]
    throttle.free_failures, throttle.first_delay, throttle.max_delay = 3, 30, 60
    return throttle


def owners_browser(browser, email):
    """A browser that has logged in to the account before (it holds the device cookie) and has
    since logged out."""
    person = browser()
    person.login(email)
    assert is_logged_in(person)
    person.submit("/dashboard", action="/logout")
    assert not is_logged_in(person)
    return person


def fail(person, email, times):
    for _ in range(times):
        assert "Wrong e-mail or password." in person.login(email, WRONG).text


def test_failures_slow_the_account_down_but_not_the_owners_browser(throttle, browser, make_user, api):
    make_user("Ann Li", "ann@example.com")
    owner = owners_browser(browser, "ann@example.com")
    attacker = browser()
    fail(attacker, "ann@example.com", 3)

    refused = attacker.login("ann@example.com", PASSWORD)  # even the right password waits
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert "Too many failed log-ins for this account" in refused.text
    assert not is_logged_in(attacker)

    by_api = api().post("/tokens", {"email": "ann@example.com", "password": PASSWORD})
    assert by_api.status_code == 429 and 1 <= int(by_api.headers["Retry-After"]) <= 30
    assert by_api.get_json()["error"]["code"] == "too_many_attempts"

    owner.login("ann@example.com")
    assert is_logged_in(owner)

    # The owner's success cleared the count: the account is no longer slowed down.
    assert api().post("/tokens", {"email": "ann@example.com", "password": PASSWORD}).status_code == 201


def test_the_wait_grows_after_each_further_failure_up_to_the_cap(throttle, make_user, api):
    throttle.free_failures, throttle.first_delay, throttle.max_delay = 1, 1, 2
    make_user("Ann Li", "ann@example.com")
    waits = []
    for _ in range(3):
        assert api().post("/tokens", {"email": "ann@example.com", "password": WRONG}).status_code == 401
        refused = api().post("/tokens", {"email": "ann@example.com", "password": PASSWORD})
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        time.sleep(waits[-1] + 0.1)
    assert waits == [1, 2, 2]


def test_a_device_cookie_of_another_account_or_a_forged_one_does_not_help(throttle, browser, make_user):
    make_user("Ann Li", "ann@example.com")
    make_user("Bob Martins", "bob@example.com")
    bobs = owners_browser(browser, "bob@example.com")
    forged = browser()
    forged.client.set_cookie(DEVICE_COOKIE, "eyJ1IjoxLCJuIjoiYWJjIn0.forged.signature", path="/login")
    fail(browser(), "ann@example.com", 3)

    for person in (bobs, forged):
        assert person.login("ann@example.com").status_code == 429


def test_failures_from_the_owners_browser_are_throttled_on_their_own(throttle, browser, make_user):
    make_user("Ann Li", "ann@example.com")
    owner = owners_browser(browser, "ann@example.com")
    fail(owner, "ann@example.com", 3)

    assert owner.login("ann@example.com").status_code == 429
    stranger = browser()
    stranger.login("ann@example.com")
    assert is_logged_in(stranger)  # the address itself was never slowed down


def test_a_password_reset_clears_the_count(throttle, browser, make_user, sent_mail):
    make_user("Ann Li", "ann@example.com")
    fail(browser(), "ann@example.com", 3)
    person = browser()
    person.submit("/password/forgot", {"email": "ann@example.com"})
    new_password = "a-brand-new-passphrase"
    person.submit(link_in(sent_mail[-1]), {"password": new_password, "confirm": new_password})

    person.login("ann@example.com", new_password)
    assert is_logged_in(person)
