"""``make run``: the Stripe emulator (when no real key is set), the worker and the web app together.

Stops all three when any of them stops or on Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from marketplace.config import from_environment

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    settings = from_environment()
    env = dict(os.environ, FLASK_APP="wsgi.py")
    processes: list[subprocess.Popen] = []
    if not settings["STRIPE_SECRET_KEY"] and (ROOT / "devtools" / "stripe_emulator").is_dir():
        port = settings["STRIPE_EMULATOR_PORT"]
        state = Path(settings["INSTANCE_PATH"]) / "stripe-emulator.json"
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "devtools.stripe_emulator", "--port", str(port), "--state", str(state)], env=env
            )
        )
        env.setdefault("STRIPE_API_BASE", f"http://127.0.0.1:{port}")
        print(f"Test payments: the Stripe emulator listens on http://127.0.0.1:{port}", flush=True)
    processes.append(subprocess.Popen([sys.executable, "-m", "flask", "worker"], env=env))
    print(f"The marketplace is at http://127.0.0.1:{settings['PORT']}", flush=True)
    processes.append(
        subprocess.Popen(
            [sys.executable, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(settings["PORT"])], env=env
        )
    )
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
