"""Fixtures for the Stripe emulator's tests: a fresh emulator per test, an SDK client
pointed at it, a local webhook receiver, and helpers that drive the hosted pages."""

import json
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from devtools.stripe_emulator import Emulator

API_KEY = "sk_test_emulator"


def make_client(url, **options):
    return stripe.StripeClient(
        API_KEY,
        base_addresses={"api": url, "connect": url, "files": url},
        max_network_retries=options.pop("max_network_retries", 0),
        **options,
    )


@pytest.fixture
def emulator():
    emu = Emulator(auto_deliver=False, webhook_retry_base=0.02).start()
    yield emu
    emu.stop()


@pytest.fixture
def delivering_emulator():
    """An emulator whose background thread delivers webhooks (retries after 0.1 s, 0.2 s…)."""
    emu = Emulator(webhook_retry_base=0.1).start()
    yield emu
    emu.stop()


@pytest.fixture
def client(emulator):
    return make_client(emulator.url)


@pytest.fixture
def client_factory(emulator):
    """Clients with other options (retries, a custom http_client) for the same emulator."""
    return lambda **options: make_client(emulator.url, **options)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_browser = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def _browse(url, form=None):
    """GET a hosted page, or POST ``form`` to it, without following redirects:
    (status, headers, body text)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with _browser.open(url, data=data, timeout=5) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read().decode()


@pytest.fixture
def browse():
    return _browse


@pytest.fixture
def checkout_session(client):
    def create(**params):
        defaults = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 2500,
                        "product_data": {"name": "Introduction to Ada"},
                    },
                    "quantity": 2,
                }
            ],
            "success_url": "https://app.test/paid?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.test/cancelled",
        }
        return client.v1.checkout.sessions.create(params={**defaults, **params})

    return create


@pytest.fixture
def charge(client):
    """A succeeded charge of ``amount`` paid with a test card; (payment intent, charge)."""

    def pay(amount=10000, card="pm_card_visa", **params):
        intent = client.v1.payment_intents.create(
            params={
                "amount": amount,
                "currency": "usd",
                "payment_method": card,
                "confirm": True,
                "expand": ["latest_charge"],
                **params,
            }
        )
        return intent, intent.latest_charge

    return pay


@pytest.fixture
def account(client):
    """An Express account that requested the transfers capability (not onboarded)."""

    def create(**params):
        return client.v1.accounts.create(
            params={
                "type": "express",
                "email": "bob@example.test",
                "capabilities": {"transfers": {"requested": True}},
                **params,
            }
        )

    return create


@pytest.fixture
def account_link(client):
    """An onboarding link that returns to https://app.test/return (refresh: .../refresh)."""
    return lambda account_id: client.v1.account_links.create(
        params={
            "account": account_id,
            "type": "account_onboarding",
            "refresh_url": "https://app.test/refresh",
            "return_url": "https://app.test/return",
        }
    )


@pytest.fixture
def onboard(account_link):
    """Submit the hosted onboarding page for an account; returns the page's response."""
    return lambda account_id, outcome="complete", **form: _browse(
        account_link(account_id).url, {"outcome": outcome, **form}
    )


@pytest.fixture
def ready_account(account, onboard):
    def create(**params):
        acct = account(**params)
        onboard(acct.id)
        return acct

    return create


@pytest.fixture
def transfer(client):
    """Transfer ``amount`` USD to ``destination``, funded by ``source`` (a charge) if given."""

    def create(destination, amount, source=None, **params):
        return client.v1.transfers.create(
            params={
                "amount": amount,
                "currency": "usd",
                "destination": destination,
                "source_transaction": source,
                **params,
            }
        )

    return create


class Receiver:
    """A local webhook endpoint: records every delivery and answers the queued statuses
    (then 200)."""

    def __init__(self):
        self.requests = queue.Queue()
        self.statuses = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.put((status, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    def next(self, timeout=5):
        """(status answered, headers, raw body) of the next delivery."""
        return self.requests.get(timeout=timeout)

    def events(self):
        """Types of all deliveries received so far."""
        received = []
        while not self.requests.empty():
            received.append(json.loads(self.requests.get()[2])["type"])
        return received

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_receiver():
    made = []

    def make():
        made.append(Receiver())
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def receiver(make_receiver):
    return make_receiver()
