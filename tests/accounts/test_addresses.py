"""Look-alike addresses are refused at sign-up: one whose TR39 skeleton is a member's address's
(``аce@`` in Cyrillic beside ``ace@``), and one mixing alphabets in its local part or a label of
its domain; addresses in one script, or in the mixes a language needs, are welcome."""

import pytest
from sqlalchemy import select

from marketplace.accounts import service as accounts
from marketplace.accounts.addresses import mixed_script_part, skeleton
from marketplace.accounts.models import User
from marketplace.errors import Conflict, ValidationError
from tests.builders import count
from tests.conftest import PASSWORD


def test_look_alikes_share_a_skeleton_and_different_addresses_do_not():
    assert skeleton("асе@example.com") == skeleton("ace@example.com")  # Cyrillic а, с, е
    assert skeleton("paypa1@example.com") == skeleton("paypal@example.com")
    assert skeleton("rnary@example.com") == skeleton("mary@example.com")
    assert skeleton("ann@example.com") != skeleton("anne@example.com")


@pytest.mark.parametrize(
    ("address", "part"),
    [
        ("аnn@example.com", "local part"),  # Cyrillic а, Latin nn
        ("ann@ехаmple.com", "domain"),  # Cyrillic е, х, а in a Latin label
        ("ann@пример.рф", None),
        ("ann@例え.jp", None),  # Han and Hiragana: Japanese
        ("björn.o'neil-2@example.com", None),
    ],
)
def test_mixed_scripts_are_found_per_part(address, part):
    assert mixed_script_part(address) == part


def test_signup_refuses_an_address_that_looks_like_a_members(session, make_user, api):
    make_user("Ace Ventura", "ace@example.com")
    before = count(session, User)

    response = api().post("/users", {"email": "асе@example.com", "password": PASSWORD, "name": "Not Ace"})

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "lookalike_email"
    assert "looks like the address of another member" in response.get_json()["error"]["message"]
    assert count(session, User) == before


def test_signup_refuses_an_address_mixing_alphabets(session, api):
    response = api().post("/users", {"email": "аnn@example.com", "password": PASSWORD, "name": "Ann"})

    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "mixed_script_email"
    assert count(session, User) == 0


def test_the_signup_page_shows_the_look_alike_refusal(browser, session, make_user):
    make_user("Ace Ventura", "ace@example.com")

    response = browser().signup("Not Ace", "асе@example.com")

    assert response.status_code == 200
    assert "looks like the address of another member" in response.text


def test_check_new_address_lets_a_member_keep_their_own_address(session, make_user):
    ace = make_user("Ace Ventura", "ace@example.com")
    accounts.check_new_address(session, "ace@example.com", ace)
    with pytest.raises(Conflict):
        accounts.check_new_address(session, "асе@example.com", make_user("Bob Martins"))
    with pytest.raises(ValidationError):
        accounts.check_new_address(session, "аce@example.com", ace)


def test_addresses_in_other_scripts_sign_up(session, api):
    for address in ("ann@пример.рф", "björn@example.com"):
        response = api().post("/users", {"email": address, "password": PASSWORD, "name": "Someone Else"})
        assert response.status_code == 201, response.get_json()
    björn = session.scalars(select(User).where(User.email == "björn@example.com")).one()
    assert björn.email_skeleton == skeleton("björn@example.com")
