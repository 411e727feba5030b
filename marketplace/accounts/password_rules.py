"""What a new password must be, after NIST SP 800-63B: long enough, not too long to hash, and not
one an attacker tries first. No composition rules (a digit, a capital, a symbol): they make
passwords harder to remember, not to guess."""

from functools import cache
from importlib import resources

from marketplace.errors import ValidationError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased."""
    text = resources.files("marketplace.accounts").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_password(password: object, *, email: str = "", name: str = "") -> str:
    """The password, if it may be used; else a ``weak_password`` error that says why."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"Use a password of at least {MIN_PASSWORD_LENGTH} characters.", code="weak_password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"Use a password of at most {MAX_PASSWORD_LENGTH} characters.", code="weak_password")
    folded = password.strip().lower()
    if len(set(folded)) == 1:
        raise ValidationError("A password of one character repeated is guessed at once.", code="weak_password")
    if folded in common_passwords():
        raise ValidationError(
            "That password is on the lists of common passwords attackers try first; choose another.",
            code="weak_password",
        )
    email = (email or "").strip().lower()
    if email and folded in {email, email.partition("@")[0]}:
        raise ValidationError("Do not use your e-mail address as your password.", code="weak_password")
    name = (name or "").strip().lower()
    if name and folded in {name, name.replace(" ", "")}:
        raise ValidationError("Do not use your name as your password.", code="weak_password")
    return password
