"""Instructions per request: what each page of ``bench/http.py`` costs the CPU, counted by
Valgrind's callgrind instead of timed, beside the one-route Flask app and the member floor app
(``bench/member_floor.py``, the smallest member's page the stack allows) counted in the same
process (docs/performance.md, "Instructions per request").

Timings on a shared machine move by a third from one minute to the next; the number of
instructions a request executes does not (hash seeds fixed, the same data, the same requests).
So this is the figure to judge a change to a page by: run it before and after, and compare.

The script seeds a new SQLite database (``bench.http.seed``, a tenth of the HTTP benchmark's data
by default), then starts one Python process under callgrind that builds the app in production
mode, logs the chain member in through the real form with Flask's test client (and into the
member floor app through its own), and for each page
makes a few warming requests, asks to have the counters zeroed, makes ``--requests`` requests and
asks for them to be dumped. This script zeroes and dumps with ``callgrind_control`` from outside,
so nothing but the measured requests is counted. No server and no socket: what gunicorn adds
(accept, parse, write, close) is in the HTTP benchmark, not here.

Run: ``python -m bench.instructions [--full] [--requests N] [--only TEXT]`` (about 4 minutes; Debian's
``valgrind`` is installed with ``apt-get install -y valgrind`` when missing).
"""

import argparse
import os
import pickle
import random
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import http
from bench.http import FULL, PASSWORD, QUICK, ROOT, Fixture, Target, ensure_tool, floor_target, seed, targets_for
from marketplace.db import make_engine

# The logged-in client keeps its own session cookie; ``targets_for`` only needs to mark its pages.
LOGGED_IN = "the member's client"
BASELINE = Target(http.BASELINE, "/")
# The smallest member's page the stack allows (``bench/member_floor.py``), logged in as the member.
FLOOR = floor_target(LOGGED_IN)


def log_in(client, email: str) -> None:
    """Through the app's own login form, as a browser would (both apps name their fields alike)."""
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    if token is None:
        raise RuntimeError("no CSRF token on the login form")
    client.post("/login", data={"csrf_token": token.group(1), "email": email, "password": PASSWORD})


def child(workdir: Path, requests: int, only: str) -> None:
    """Runs under callgrind: the requests, phase by phase, in step with the parent on stdin/stdout."""
    fixture: Fixture = pickle.loads((workdir / "fixture.pickle").read_bytes())
    import wsgi
    from bench.member_floor import app as member_floor
    from bench.one_route import app as one_route

    client = wsgi.app.test_client()
    log_in(client, fixture.member_email)
    floor = member_floor.test_client()
    log_in(floor, fixture.member_email)
    visitor = wsgi.app.test_client()
    phases = [(BASELINE, one_route.test_client()), (FLOOR, floor)]
    phases += [
        (target, client if target.cookie else visitor)
        for target in targets_for(fixture, LOGGED_IN)
        if only.casefold() in target.name.casefold()
    ]

    def step(message: str) -> None:
        print(message, flush=True)
        if sys.stdin.readline().strip() != "go":
            raise RuntimeError("the parent stopped")

    step("attach")  # the first zeroing attaches the debugger, which counts; nothing is measured yet
    for target, browser in phases:
        for _ in range(3):
            response = browser.get(target.path)
            if response.status_code != 200:
                raise RuntimeError(f"{target.name}: {response.status_code}")
        step(f"zero {target.name}")
        for _ in range(requests):
            browser.get(target.path)
        step(f"dump {target.name}")
    print("end", flush=True)


def callgrind_total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {path}")


def measure(workdir: Path, requests: int, only: str) -> dict[str, float]:
    """Millions of instructions per request, by page name."""
    out = workdir / "callgrind.out"
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    command += ["-m", "bench.instructions", "--child", str(workdir), "--requests", str(requests), "--only", only]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    figures: dict[str, float] = {}
    for line in process.stdout:
        message = line.strip()
        if message == "end":
            break
        action, _, name = message.partition(" ")
        if action in ("attach", "zero"):
            subprocess.run(["callgrind_control", "--zero", str(process.pid)], check=True, capture_output=True)
        elif action == "dump":
            before = set(workdir.glob("callgrind.out.*"))
            subprocess.run(["callgrind_control", "--dump", str(process.pid)], check=True, capture_output=True)
            (dumped,) = set(workdir.glob("callgrind.out.*")) - before
            figures[name] = callgrind_total(dumped) / requests / 1e6
            print(f"{name}: {figures[name]:.2f} M instructions per request", flush=True)
        else:
            continue  # anything the app printed
        process.stdin.write("go\n")
        process.stdin.flush()
    if process.wait() != 0:
        raise RuntimeError("the measured process failed")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the HTTP benchmark's full data (10k members)")
    parser.add_argument("--requests", type=int, default=20, help="measured requests per page")
    parser.add_argument("--only", default="", help="measure only the pages whose name contains this text")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.requests, args.only)
    ensure_tool("valgrind")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        database_url = f"sqlite:///{workdir / 'bench.db'}"
        engine = make_engine(database_url)
        fixture = seed(engine, FULL if args.full else QUICK, random.Random(2026))
        engine.dispose()
        (workdir / "fixture.pickle").write_bytes(pickle.dumps(fixture))
        os.environ.update(
            APP_ENV="production", SECRET_KEY=secrets.token_hex(32), DATABASE_URL=database_url, INSTANCE_PATH=scratch
        )
        figures = measure(workdir, args.requests, args.only)
    groups = {target.name: target.group for target in [FLOOR, *targets_for(Fixture("", 1, "", ""), LOGGED_IN)]}
    baseline = figures.pop(BASELINE.name)
    floor = figures[FLOOR.name]
    print(f"\n{'page':45} {'M instructions':>15} {'one-route app / page':>21} {'member floor / page':>20}")
    print(f"{BASELINE.name:45} {baseline:15.2f} {'100%':>21}")
    for name, value in figures.items():
        print(f"{name:45} {value:15.2f} {baseline / value:21.1%}", end="")
        print(f" {floor / value:20.1%}" if groups.get(name) in ("member", "floor") else "")


if __name__ == "__main__":
    main()
