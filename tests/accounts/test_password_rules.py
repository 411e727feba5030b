"""The rules a new password meets (NIST SP 800-63B): at least 8 and at most 128 characters, not a
common password, not the address or the name, not one character repeated; no composition rules."""

import pytest

from marketplace.accounts import service as accounts
from marketplace.accounts.password_rules import check_password, common_passwords
from marketplace.errors import ValidationError
from tests.builders import PASSWORD


@pytest.mark.parametrize(
    "password",
    ["aaaaaaaa", "password", "12345678", "qwertyui", "iloveyou", "Password1", "PASSWORD", "x" * 129, "short"],
)
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError) as refused:
        check_password(password)
    assert refused.value.code == "weak_password"


def test_the_address_and_the_name_are_refused():
    with pytest.raises(ValidationError, match="e-mail"):
        check_password("Ann.Lee@example.com", email="ann.lee@example.com")
    with pytest.raises(ValidationError, match="e-mail"):
        check_password("ann.lee.01", email="ann.lee.01@example.com")
    with pytest.raises(ValidationError, match="name"):
        check_password("Annabel Lee", name="Annabel Lee")


def test_a_long_passphrase_without_digits_or_capitals_is_accepted():
    phrase = "correct horse battery staple on a quiet afternoon"
    assert check_password(phrase, email="ann@example.com", name="Ann Li") == phrase
    assert check_password("x" * 127 + "y") == "x" * 127 + "y"


def test_the_shipped_list_is_a_real_list_of_common_passwords():
    listed = common_passwords()
    assert len(listed) > 1000
    assert {"password", "123456", "qwerty", "iloveyou", "aaaaaaaa", "trustno1"} <= listed
    assert PASSWORD not in listed


def test_sign_up_refuses_a_common_password_with_a_clear_message(browser, session):
    response = browser().signup("Someone", "someone@example.com", "iloveyou")

    assert response.status_code == 200
    assert "common passwords" in response.text


def test_api_sign_up_refuses_a_common_password_with_weak_password(api):
    response = api().post("/users", {"email": "ok@example.com", "password": "12345678", "name": "Ok"})

    assert response.status_code == 422
    assert response.json["error"]["code"] == "weak_password"


def test_changing_to_the_own_address_is_refused(session, make_user):
    user = make_user("Ann Li", "ann@example.com")
    with pytest.raises(ValidationError) as refused:
        accounts.change_password(session, user.id, current_password=PASSWORD, new_password="ann@example.com")
    assert refused.value.code == "weak_password"
