"""A real HTTP receiver for webhook deliveries, and the worker's round for them."""

import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from marketplace.db import db
from marketplace.jobs import service as jobs

DELIVER = {"webhook.deliver"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A threaded ``http.server`` on a free port that records every request and answers with the
    statuses queued in ``answers`` (200 once they run out). ``hold_next`` makes it keep the next
    request open until ``release`` is set: a worker can be killed while it waits. Given a server
    ``tls`` context, it speaks HTTPS."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.requests: list[Received] = []
        self.answers: list[int] = []
        self.hold_next = False
        self.arrived = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.hold_next:
                    receiver.hold_next = False
                    receiver.arrived.set()
                    receiver.release.wait(60)
                status = receiver.answers.pop(0) if receiver.answers else 200
                answer = b'{"received": true}' if status < 300 else b"down for maintenance"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # The worker that asked is gone.

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hooks", base: str = "http://127.0.0.1") -> str:
        return f"{base}:{self.server.server_port}{path}"

    def to(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture
def deliver(app):
    """One worker round of the due webhook deliveries, with the worker's own functions."""

    def run():
        db.session.commit()  # The test's own reads must not hold the database.
        with app.app_context():
            report = jobs.work_once(db.session, "test-worker", kinds=DELIVER)
        db.session.commit()
        return report

    return run
