"""The public entry point: run the emulator in a thread and drive it from tests."""

import threading
import time

from . import idempotency
from .errors import invalid
from .faults import Fault, Faults
from .lifecycle import tick
from .resources import checkout, disputes, refunds
from .resources.common import Context
from .resources.event_endpoints import create_endpoint
from .server import App, Server
from .state import DEFAULT_SETTINGS, Store
from .webhooks import Dispatcher


class Emulator:
    """A stateful Stripe API on 127.0.0.1.

    ``state_file``: load the whole state from this JSON file and save it after every
    change (None keeps it in memory). ``auto_deliver``: a background thread sends webhooks
    as they are queued and retries failures after ``webhook_retry_base * 2**(n-1)`` s;
    with False, webhooks go out only when ``deliver_pending()`` is called.
    """

    def __init__(
        self,
        state_file=None,
        *,
        auto_deliver=True,
        webhook_retry_base=1.0,
        webhook_max_attempts=8,
        webhook_timeout=5.0,
        **settings,
    ):
        self.store = Store(state_file)
        self.configure(**settings)
        idempotency.forget_unfinished(self.store)
        self.faults = Faults(self.store.lock)
        self.dispatcher = Dispatcher(
            self.store,
            retry_base=webhook_retry_base,
            max_attempts=webhook_max_attempts,
            timeout=webhook_timeout,
        )
        self.auto_deliver = auto_deliver
        self._server = None
        self._threads = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.store.on_event = self._wake.set

    def start(self, port=0):
        """Listen on 127.0.0.1:``port`` (a free port for 0); the socket is bound on return."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._server = Server(App(self), "127.0.0.1", port)
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name="stripe-emulator-http",
                daemon=True,
            ),
            threading.Thread(target=self._background, name="stripe-emulator-clock", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    @property
    def url(self):
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self):
        if self._server is None:
            return
        self._stopping.set()
        self._wake.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._server = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def _background(self):
        """Keep clock-driven state current and, with auto_deliver, send due webhooks."""
        while not self._stopping.is_set():
            due = self.dispatcher.next_due() if self.auto_deliver else None
            self._wake.wait(1.0 if due is None else min(max(due - time.time(), 0.0), 1.0))
            self._wake.clear()
            if self._stopping.is_set():
                break
            with self.store.transaction():
                tick(self.store)
            if self.auto_deliver:
                self.dispatcher.deliver(due_only=True)

    def add_webhook_endpoint(self, url, enabled_events=("*",), *, connect=False):
        """Same as ``POST /v1/webhook_endpoints``; returns the ``whsec_`` signing secret.
        ``connect=True`` subscribes to connected accounts' events instead, as on Stripe."""
        params = {"url": url, "enabled_events": list(enabled_events), "connect": connect}
        with self.store.transaction():
            ctx = Context(self.store, self.store.platform_id)
            return create_endpoint(ctx, params)["secret"]

    def deliver_pending(self):
        """Send every queued webhook now, in order, each failing one once; the attempts."""
        return self.dispatcher.deliver()

    def pending_webhooks(self):
        return self.dispatcher.pending()

    def now(self):
        return self.store.now()

    def advance_time(self, seconds):
        """Move the emulator clock forward: sessions expire, pending funds become
        available, idempotency keys age. Returns the new time."""
        with self.store.transaction():
            now = self.store.advance(seconds)
            tick(self.store)
        self._wake.set()
        return now

    def fail_next(self, path, times=1, status=500, method=None):
        """The next ``times`` calls whose path starts with ``path`` answer ``status``
        without running."""
        self.faults.add(Fault("fail", path, method, times, status=status))

    def delay_next(self, path, seconds, times=1, method=None):
        """The next calls wait ``seconds`` and then run (a client timeout, seen from Stripe)."""
        self.faults.add(Fault("delay", path, method, times, seconds=seconds))

    def drop_next(self, path, times=1, method=None):
        """The next calls run, then the connection closes without an answer."""
        self.faults.add(Fault("drop", path, method, times))

    def trigger_dispute(self, charge_id, reason="fraudulent"):
        """Open a dispute on a charge (emits ``charge.dispute.created``); the dispute."""
        with self.store.transaction():
            return self.store.snapshot(disputes.trigger(self.store, charge_id, reason))

    def settle_refund(self, refund_id, succeed=True):
        """Finish a pending refund: ``refund.updated`` (succeeded) or ``refund.failed``."""
        with self.store.transaction():
            return self.store.snapshot(refunds.settle(self.store, refund_id, succeed))

    def settle_checkout(self, session_id, succeed=True):
        """Finish a Checkout Session paid by a delayed method (bank debit)."""
        with self.store.transaction():
            return self.store.snapshot(checkout.settle_async(self.store, session_id, succeed, self.url))

    def configure(self, **settings):
        """Change behaviour switches (see ``DEFAULT_SETTINGS``); returns them all."""
        with self.store.transaction():
            unknown = settings.keys() - DEFAULT_SETTINGS.keys()
            if unknown:
                raise invalid(f"Unknown settings: {', '.join(sorted(unknown))}")
            self.store.settings.update({key: bool(value) for key, value in settings.items()})
            return dict(self.store.settings)

    def reset(self):
        """Forget everything: objects, events, webhook endpoints, clock, faults."""
        self.faults.clear()
        with self.store.transaction():
            self.store.reset()
