"""Password hashing with one method for the whole process, set once by the app factory.

Production keeps werkzeug's default method (scrypt); tests configure a cheap one so the suite
does not spend its time hashing."""

import inspect

from werkzeug.security import check_password_hash, generate_password_hash

DEFAULT_METHOD: str = inspect.signature(generate_password_hash).parameters["method"].default

_method = DEFAULT_METHOD
_dummy_hashes: dict[str, str] = {}


def configure(method: str) -> None:
    """Set the method every later ``hash_password`` uses (werkzeug's ``method`` syntax)."""
    global _method
    generate_password_hash("probe", method=method)  # An unknown method fails here, at start-up.
    _method = method


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=_method)


def verify_password(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)


def dummy_hash() -> str:
    """A hash made with the configured method, checked against when an e-mail is unknown so a
    failed log-in takes as long either way."""
    if _method not in _dummy_hashes:
        _dummy_hashes[_method] = generate_password_hash("not-a-real-password", method=_method)
    return _dummy_hashes[_method]
