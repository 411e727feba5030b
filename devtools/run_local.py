"""``make run``: the Stripe emulator (when no Stripe key is set), the worker and the web app.

Without ``STRIPE_SECRET_KEY`` it starts the emulator with its state in
``instance/stripe-emulator.json``, registers the app's webhook endpoints with it (the platform's
and the Connect one) and points the app and the worker at it. Stops everything when any part
stops, or on Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from marketplace.config import from_environment

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_KEY = "sk_test_local_emulator"


def wait_for(url: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url + "/v1/balance", auth=(EMULATOR_KEY, ""), timeout=1)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def register_webhooks(emulator_url: str, app_url: str) -> str:
    """Fresh endpoints for this run (Stripe shows a secret only when an endpoint is created)."""
    auth = (EMULATOR_KEY, "")
    endpoint = app_url + "/webhooks/stripe"
    listed = requests.get(emulator_url + "/v1/webhook_endpoints", params={"limit": 100}, auth=auth, timeout=5).json()
    for old in listed.get("data", []):
        if old["url"] == endpoint:
            requests.delete(f"{emulator_url}/v1/webhook_endpoints/{old['id']}", auth=auth, timeout=5)
    secrets = []
    for connect in ("false", "true"):
        created = requests.post(
            emulator_url + "/v1/webhook_endpoints",
            data={"url": endpoint, "enabled_events[]": "*", "connect": connect},
            auth=auth,
            timeout=5,
        )
        created.raise_for_status()
        secrets.append(created.json()["secret"])
    return ",".join(secrets)


def main() -> int:
    settings = from_environment()
    env = dict(os.environ, FLASK_APP="wsgi.py")
    app_url = f"http://127.0.0.1:{settings['PORT']}"
    processes: list[subprocess.Popen] = []
    if not settings["STRIPE_SECRET_KEY"]:
        port = settings["STRIPE_EMULATOR_PORT"]
        emulator_url = f"http://127.0.0.1:{port}"
        state = Path(settings["INSTANCE_PATH"]) / "stripe-emulator.json"
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "devtools.stripe_emulator", "--port", str(port), "--state", str(state)], env=env
        ))  # fmt: skip
        wait_for(emulator_url)
        env.update(
            STRIPE_SECRET_KEY=EMULATOR_KEY,
            STRIPE_API_BASE=emulator_url,
            STRIPE_WEBHOOK_SECRET=register_webhooks(emulator_url, app_url),
            BASE_URL=settings["BASE_URL"],
        )
        print(
            f"Test payments: Stripe is the local emulator at {emulator_url}; pay with 4242 4242 4242 4242.", flush=True
        )
    processes.append(subprocess.Popen([sys.executable, "-m", "flask", "worker"], env=env))
    print(f"The marketplace is at {app_url}", flush=True)
    processes.append(subprocess.Popen(
        [sys.executable, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(settings["PORT"])], env=env
    ))  # fmt: skip
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
    return max((p.returncode or 0) for p in processes)


if __name__ == "__main__":
    sys.exit(main())
