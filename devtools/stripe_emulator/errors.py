"""Stripe's error envelope, raised from anywhere inside a request and rendered by the server."""


class StripeError(Exception):
    """An API failure with the HTTP status and ``error`` fields Stripe would send."""

    def __init__(self, status, error_type, message, *, code=None, param=None, **extra):
        super().__init__(message)
        self.status = status
        self.error = {"type": error_type, "message": message}
        if code is not None:
            self.error["code"] = code
        if param is not None:
            self.error["param"] = param
        self.error.update(extra)

    def body(self):
        return {"error": self.error}


def invalid(message, *, param=None, code=None, status=400, **extra):
    """A 400 ``invalid_request_error``: the request was understood but cannot be honoured."""
    return StripeError(status, "invalid_request_error", message, code=code, param=param, **extra)


def not_found(kind, object_id, *, param="id", status=404):
    return invalid(f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=status)


def missing_param(param):
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param):
    return invalid(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def api_error(message, status=500):
    return StripeError(status, "api_error", message)
