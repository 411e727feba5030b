"""``make run``: the Stripe emulator (when no Stripe key is set), the worker and the web app.

Everything it starts runs with ``APP_ENV=development`` and the one development secret in
``<instance>/secret_key`` (made here if missing, unless ``SECRET_KEY`` is set), so the web app
checks exactly what the worker signs (unsubscribe links in e-mails, for one).

Without ``STRIPE_SECRET_KEY`` it starts the emulator with its state in
``instance/stripe-emulator.json``, registers the app's webhook endpoints with it (the platform's
and the Connect one; kept in ``instance/stripe-webhooks.json`` and reused on the next run, so
webhooks queued while the app was down are still delivered) and points the app and the worker at
it.

Each child runs in a process group of its own. When any part stops, or on SIGINT (Ctrl-C),
SIGTERM or SIGHUP (also forwarded by ``make``), or when the parent (``make``) dies, every group is
sent SIGTERM, then SIGKILL if it has not exited within ``STOP_SECONDS``, and waited for.
"""

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from marketplace.config import Settings, load

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_KEY = "sk_test_local_emulator"
WEBHOOKS_FILE = "stripe-webhooks.json"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_SECONDS = 10


class Stop(Exception):
    """A stop signal arrived (or the parent died) before everything was running."""


class Runner:
    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self.stop_signal: int | None = None
        self.parent = os.getppid()

    def on_signal(self, number: int, frame) -> None:
        self.stop_signal = number

    def stopping(self) -> bool:
        if self.stop_signal is None and os.getppid() != self.parent:
            self.stop_signal = signal.SIGHUP  # Our parent is gone: nobody would stop us.
        return self.stop_signal is not None

    def check(self) -> None:
        if self.stopping():
            raise Stop

    def start(self, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.check()
        process = subprocess.Popen(command, env=env, cwd=ROOT, process_group=0)
        self.processes.append(process)
        return process

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check()
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def stop_all(self) -> None:
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        # A child's own children (if any) live in its group: make sure none outlives it.
        for process in self.processes:
            _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, number)


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM here if ``make`` is killed outright (SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def wait_for(runner: Runner, url: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url + "/v1/balance", auth=(EMULATOR_KEY, ""), timeout=1)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            runner.sleep(0.1)


def register_webhooks(emulator_url: str, app_url: str, instance_path: str) -> str:
    """The app's two webhook endpoints (the platform's and the Connect one), kept across restarts;
    returns their signing secrets, comma-separated, for ``STRIPE_WEBHOOK_SECRET``.

    Stripe shows an endpoint's secret only when it is created, so the ids and secrets are kept in
    ``<instance>/stripe-webhooks.json`` (0600) and reused while the emulator still has those
    endpoints: replacing an endpoint would drop the deliveries queued for it, the news of payments
    made while the app was down. Only when the emulator lost them (its state file was deleted) are
    new ones made, after removing any other endpoint at the app's address.
    """
    auth = (EMULATOR_KEY, "")
    endpoint = app_url + "/webhooks/stripe"
    saved_file = Path(instance_path) / WEBHOOKS_FILE
    listed = requests.get(emulator_url + "/v1/webhook_endpoints", params={"limit": 100}, auth=auth, timeout=5)
    listed.raise_for_status()
    existing = {e["id"]: e for e in listed.json().get("data", [])}
    saved = _saved_endpoints(saved_file)
    if saved and all(existing.get(e["id"], {}).get("url") == endpoint for e in saved):
        return ",".join(e["secret"] for e in saved)
    for old in existing.values():
        if old["url"] == endpoint:
            requests.delete(f"{emulator_url}/v1/webhook_endpoints/{old['id']}", auth=auth, timeout=5)
    created = []
    for connect in ("false", "true"):
        response = requests.post(
            emulator_url + "/v1/webhook_endpoints",
            data={"url": endpoint, "enabled_events[]": "*", "connect": connect},
            auth=auth,
            timeout=5,
        )
        response.raise_for_status()
        created.append({"id": response.json()["id"], "secret": response.json()["secret"]})
    _save_endpoints(saved_file, created)
    return ",".join(e["secret"] for e in created)


def _saved_endpoints(path: Path) -> list[dict[str, str]]:
    """The endpoints of the last run, or none if the file is missing or unreadable."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    valid = isinstance(saved, list) and len(saved) == 2
    return saved if valid and all(isinstance(e, dict) and {"id", "secret"} <= set(e) for e in saved) else []


def _save_endpoints(path: Path, endpoints: list[dict[str, str]]) -> None:
    """Written whole (a temporary file renamed over it), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(endpoints, file)
    os.replace(partial, path)


def run(runner: Runner, settings: Settings) -> None:
    env = dict(os.environ, FLASK_APP="wsgi.py", APP_ENV="development", INSTANCE_PATH=settings.instance_path)
    app_url = f"http://127.0.0.1:{settings.port}"
    if not settings.stripe_secret_key:
        port = settings.stripe_emulator_port
        emulator_url = settings.stripe_emulator_url
        state = Path(settings.instance_path) / "stripe-emulator.json"
        runner.start(
            [sys.executable, "-m", "devtools.stripe_emulator", "--port", str(port), "--state", str(state)], env
        )
        wait_for(runner, emulator_url)
        env.update(
            STRIPE_SECRET_KEY=EMULATOR_KEY,
            STRIPE_API_BASE=emulator_url,
            STRIPE_WEBHOOK_SECRET=register_webhooks(emulator_url, app_url, settings.instance_path),
            BASE_URL=settings.base_url,
        )
        print(
            f"Test payments: Stripe is the local emulator at {emulator_url}; pay with 4242 4242 4242 4242.", flush=True
        )
    runner.start([sys.executable, "-m", "flask", "worker"], env)
    runner.start([sys.executable, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(settings.port)], env)
    print(f"The marketplace is at {app_url} (development; outgoing mail at {app_url}/dev/mail)", flush=True)
    while all(p.poll() is None for p in runner.processes):
        runner.sleep(0.5)


def main() -> int:
    runner = Runner()
    for number in STOP_SIGNALS:
        signal.signal(number, runner.on_signal)
    _die_with_parent()
    # Made once, before any child starts, so they all read the same development secret.
    settings = load({"APP_ENV": "development"})
    try:
        run(runner, settings)
    except Stop:
        pass
    finally:
        runner.stop_all()
    if runner.stop_signal is not None:
        print(f"Stopped ({signal.Signals(runner.stop_signal).name}).", file=sys.stderr, flush=True)
        return 0
    return max((p.returncode or 0) for p in runner.processes)


if __name__ == "__main__":
    sys.exit(main())
