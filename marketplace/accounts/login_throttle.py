"""A per-account log-in throttle that slows password guessing without locking the owner out.

After ``free_failures`` wrong passwords for one address within ``window`` seconds, each further
attempt on that address must wait: ``first_delay`` seconds after the next failure, then twice
that, and so on up to ``max_delay``. A waiting attempt is answered 429 with Retry-After and its password is not even
checked. It is a delay, never a lock-out: someone guessing gets one try per ``max_delay`` at
best, while the owner waits at most that long.

The owner is not made to wait at all from a browser they have logged in from before (OWASP's
"device cookie"): each successful log-in sets a cookie signed with the app's secret that names
the account. Failures from a browser presenting a valid device cookie for the address are counted
against that cookie, not the address, so an attacker's failures never slow the owner's browser,
and a stolen device cookie is throttled on its own.

The counts live in the rate limiter's storage (``RATELIMIT_STORAGE_URI``: Redis in production,
shared by every process), not in the database: a failed log-in rolls back the request's unit of
work, which would take a failure count written there with it. A successful log-in or password
reset clears the address's count.
"""

import hashlib
import math
import secrets
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits.storage import Storage
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.accounts.service import authenticate, user_by_email
from marketplace.errors import TooManyRequests, Unauthorized

DEVICE_COOKIE = "device"
DEVICE_COOKIE_MAX_AGE = 365 * 24 * 3600


@dataclass
class LoginThrottle:
    storage: Storage
    signer: URLSafeTimedSerializer
    free_failures: int = 5
    window: int = 15 * 60
    first_delay: int = 1
    max_delay: int = 60

    def log_in(self, session: Session, *, email: str, password: str, device_cookie: str | None = None) -> User:
        """The user with this address and password (``authenticate``), unless the address (or the
        device cookie, if valid for it) must wait: then ``TooManyRequests`` with the seconds left."""
        device = self._device_of(session, email, device_cookie)
        key = f"device:{device}" if device else _address_key(email)
        wait = self._wait_left(key)
        if wait:
            raise TooManyRequests(
                f"Too many failed log-ins for this account; try again in {wait} seconds.", retry_after=wait
            )
        try:
            user = authenticate(session, email=email, password=password)
        except Unauthorized:
            self._failed(key)
            raise
        self.clear(user.email)
        if device:
            self._clear(key)
        return user

    def device_cookie(self, user: User) -> str:
        """A new device cookie for a browser that has just logged in as ``user``."""
        return self.signer.dumps({"u": user.id, "n": secrets.token_urlsafe(16)})

    def clear(self, email: str) -> None:
        """Forget the address's failures (a successful log-in, a password reset)."""
        self._clear(_address_key(email))

    def _device_of(self, session: Session, email: str, cookie: str | None) -> str | None:
        """The cookie's own id if it is a valid device cookie of the account with this address."""
        if not cookie:
            return None
        try:
            claim = self.signer.loads(cookie, max_age=DEVICE_COOKIE_MAX_AGE)
        except BadSignature:
            return None
        user = user_by_email(session, email or "")
        if user is None or not isinstance(claim, dict) or claim.get("u") != user.id:
            return None
        return str(claim.get("n"))

    def _wait_left(self, key: str) -> int:
        if not self.storage.get(f"login-wait:{key}"):
            return 0
        return max(1, math.ceil(self.storage.get_expiry(f"login-wait:{key}") - time.time()))

    def _failed(self, key: str) -> None:
        failures = self.storage.incr(f"login-failures:{key}", self.window)
        if failures >= self.free_failures:
            delay = min(self.max_delay, self.first_delay * 2 ** (failures - self.free_failures))
            self.storage.clear(f"login-wait:{key}")
            self.storage.incr(f"login-wait:{key}", delay)

    def _clear(self, key: str) -> None:
        self.storage.clear(f"login-failures:{key}")
        self.storage.clear(f"login-wait:{key}")


def _address_key(email: str) -> str:
    """The storage key of an address, as ``user_by_email`` compares it, and not in clear."""
    return "address:" + hashlib.sha256((email or "").strip().lower().encode()).hexdigest()
