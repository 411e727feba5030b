"""One error hierarchy for the whole marketplace.

Services raise these; a single handler (see ``marketplace.web.errors``) turns them into an
HTML page with a flash message or a JSON body ``{"error": {"code", "message"}}``.
"""


class MarketplaceError(Exception):
    """Base of every error a user can cause; never a 500."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class ValidationError(MarketplaceError):
    status = 422
    code = "invalid"


class NotFound(MarketplaceError):
    status = 404
    code = "not_found"


class Forbidden(MarketplaceError):
    status = 403
    code = "forbidden"


class Unauthorized(MarketplaceError):
    status = 401
    code = "unauthorized"


class Conflict(MarketplaceError):
    status = 409
    code = "conflict"


class EmailUnverified(Forbidden):
    """The action needs an account that has proven it reads mail at its address."""

    code = "email_unverified"


class TooManyRequests(MarketplaceError):
    """Asked again too soon; ``retry_after`` is how many seconds to wait (the Retry-After header)."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after
