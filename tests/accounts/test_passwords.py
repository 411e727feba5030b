"""The password hashing module: the production default is a real scrypt hash, and the method
the app is configured with is the one sign-ups get."""

from marketplace.accounts import passwords
from marketplace.accounts import service as accounts
from tests.conftest import FAST_PASSWORD_HASH


def test_the_default_method_makes_a_real_scrypt_hash_that_verifies(real_password_hashing):
    hashed = passwords.hash_password("correct-horse-battery")
    assert hashed.startswith("scrypt:")
    assert passwords.verify_password(hashed, "correct-horse-battery")
    assert not passwords.verify_password(hashed, "wrong-horse-battery")
    assert passwords.dummy_hash().startswith("scrypt:")


def test_the_app_configures_the_method_sign_ups_use(app, session):
    user = accounts.register(session, email="ann@example.com", password="correct-horse-battery", name="Ann Li")
    assert user.password_hash.startswith(FAST_PASSWORD_HASH.split(":1")[0])
    assert accounts.authenticate(session, email="ann@example.com", password="correct-horse-battery") is user
    session.rollback()
