"""HTTP front end: authentication, routing, idempotency and injected faults.

Requests are served by a stdlib ``ThreadingHTTPServer`` (one thread per connection, HTTP/1.0
so every connection closes after its answer). Raw sockets are needed for the "drop" fault:
the request runs and the connection is closed without a byte of response.
"""

import base64
import logging
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import control, idempotency, pages
from .errors import StripeError, api_error, invalid
from .lifecycle import tick
from .resources import API
from .resources.common import Context, render
from .state import API_VERSION, random_token
from .web import Request, Response

log = logging.getLogger(__name__)


def _api_key(authorization):
    """The secret key from Bearer auth, or from Basic auth's user name (``curl -u sk_test_…:``)."""
    scheme, _, value = authorization.partition(" ")
    if scheme == "Bearer":
        return value.strip()
    if scheme == "Basic":
        try:
            return base64.b64decode(value).decode().partition(":")[0]
        except ValueError:
            return ""
    return ""


def _redact(key):
    return f"{key[:8]}{'*' * max(len(key) - 12, 0)}{key[-4:]}"


class App:
    """Turns one parsed request into one response (or None: drop the connection)."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.store = emulator.store

    def handle(self, request):
        if request.path.startswith("/_emulator/"):
            return control.handle(self.emulator, request)
        faults = self.emulator.faults.take(request.method, request.path)
        if "fail" in faults:
            error = api_error("Injected failure (stripe emulator).", faults["fail"].status)
            return Response.json(error.status, error.body())
        seconds = faults["delay"].seconds if "delay" in faults else 0
        if request.path.startswith("/pages/"):
            time.sleep(seconds)
            response = pages.handle(self.store, request)
        else:
            response = self._api(request, seconds)
        return None if "drop" in faults else response

    def _api(self, request, delay):
        request_id = "req_" + random_token(14)
        headers = {
            "Request-Id": request_id,
            "Stripe-Version": request.headers.get("Stripe-Version") or API_VERSION,
        }
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        if key:
            headers["Idempotency-Key"] = key
        try:
            with self.store.transaction():
                account = self._authenticate(request)
                if key and len(key) > idempotency.MAX_KEY_LENGTH:
                    raise invalid(
                        f"Invalid idempotency key: it is {len(key)} characters long; keys can "
                        f"be at most {idempotency.MAX_KEY_LENGTH} characters.",
                    )
                route, path_params = API.match(request.method, request.path)
                raw = request.form()
                digest = idempotency.fingerprint(request.method, request.path, raw)
                saved = key and idempotency.claim(self.store, account, key, digest)
                if saved:
                    replay = {"Idempotent-Replayed": "true", "Original-Request": saved["request_id"]}
                    return Response.json(saved["status"], saved["body"], {**headers, **replay})
                try:
                    params = route.schema.parse(raw)
                    if route.platform_only and account != self.store.platform_id:
                        raise invalid(
                            "This endpoint is only available to the platform; "
                            "it cannot be called with a Stripe-Account header."
                        )
                except StripeError:
                    if key:
                        idempotency.release(self.store, account, key)
                    raise
            time.sleep(delay)
            ctx = Context(self.store, account, request.base_url, request_id, key)
            status, body = self._execute(ctx, route, params, path_params)
        except StripeError as error:
            status, body = error.status, error.body()
        return Response.json(status, body, headers)

    def _execute(self, ctx, route, params, path_params):
        with self.store.transaction():
            tick(self.store)
            try:
                result = route.handler(ctx, params, **path_params)
                status = 200
                body = render(self.store, ctx.account, result, params.get("expand"), API.expanders)
            except StripeError as error:
                status, body = error.status, error.body()
            except Exception:
                # as on Stripe, a 500 from a request that began executing is saved and replayed
                log.exception("stripe emulator: %s failed", route.pattern.pattern)
                error = api_error("The emulator failed while handling this request.")
                status, body = error.status, error.body()
            if ctx.idempotency_key:
                idempotency.save(self.store, ctx.account, ctx.idempotency_key, status, body, ctx.request_id)
        return status, body

    def _authenticate(self, request):
        """The account acting: the platform, or the connected account in Stripe-Account."""
        key = _api_key(request.headers.get("Authorization") or "")
        if not key:
            raise invalid(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
                status=401,
            )
        if not re.fullmatch(r"sk_test_\w+", key):
            raise invalid(f"Invalid API Key provided: {_redact(key)}", status=401)
        connected = request.headers.get("Stripe-Account")
        if not connected:
            return self.store.platform_id
        account = self.store.find(connected, "account")
        if account is None or self.store.owner(connected) != self.store.platform_id:
            raise invalid(
                f"The provided key '{_redact(key)}' does not have access to account "
                f"'{connected}' (or that account does not exist). Application access may "
                "have been revoked.",
                code="account_invalid",
                status=403,
            )
        return connected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "stripe-emulator"

    def _serve(self):
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = Request(self.command, parts.path, parts.query, self.headers, body)
        response = self.server.app.handle(request)
        if response is None:
            self.close_connection = True
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a delayed call), as it would on Stripe

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format, *args):
        log.debug("%s - %s", self.address_string(), format % args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a delayed request to finish

    def __init__(self, app, host, port):
        super().__init__((host, port), _Handler)
        self.app = app
