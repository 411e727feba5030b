"""CI: ``make run`` works from a fresh clone, and one SIGTERM to make stops everything it started.

Clones the repository's committed HEAD into a temporary folder, runs ``make run`` there on free
ports (its own session, so every process it starts can be found), waits for the app's home page
to answer 200, checks that development mode is on (``/dev/mail``) and that an unsubscribe link
from an e-mail the worker sent works on the web (GET, and RFC 8058 one-click POST), sends one
SIGTERM to make's process, and fails if any process of that session, or any process running
from the clone, is left, or if the ports still listen. Standard library only: it runs before any
virtualenv exists.

    python3 devtools/check_fresh_start.py [--start-seconds 300] [--keep]
"""

import argparse
import contextlib
import email
import email.policy
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def processes() -> list[tuple[int, int, str]]:
    """(pid, session id, command line) of every process we can see (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        found.append((int(entry.name), int(fields[3]), command))
    return found


def leftovers(session: int, clone: Path) -> list[tuple[int, int, str]]:
    me = os.getpid()
    return [p for p in processes() if p[0] != me and (p[1] == session or str(clone) in p[2])]


def check_unsubscribe(mail_folder: Path, app_url: str, seconds: float = 60) -> list[str]:
    """The worker's e-mail (the demo seed queues some) carries an unsubscribe link the web
    process accepts: by GET (a confirmation page) and by RFC 8058 one-click POST."""
    deadline = time.monotonic() + seconds
    link = None
    while link is None and time.monotonic() < deadline:
        for path in sorted(mail_folder.glob("*.eml")) if mail_folder.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["List-Unsubscribe"]:
                link = message["List-Unsubscribe"].strip("<>")
                break
        else:
            time.sleep(0.5)
    if link is None:
        return [f"no e-mail with a List-Unsubscribe header in {mail_folder} within {seconds:.0f} s"]
    path = link[link.index("/notifications/unsubscribe/") :]
    found = []
    if status_of(app_url + path) != 200:
        found.append(f"GET of the unsubscribe link from the worker's e-mail answered {status_of(app_url + path)}")
    one_click = urllib.request.Request(app_url + path, data=b"List-Unsubscribe=One-Click", method="POST")
    one_click.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(one_click, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if status != 200:
        found.append(f"one-click POST of the unsubscribe link from the worker's e-mail answered {status}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start-seconds", type=float, default=300, help="install + migrate + seed + start limit")
    parser.add_argument("--stop-seconds", type=float, default=30, help="limit for everything to stop after SIGTERM")
    parser.add_argument("--keep", action="store_true", help="keep the clone (to read its log)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mp-fresh-start-"))
    clone = workdir / "clone"
    log_path = workdir / "make-run.log"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    assert not (clone / "instance").exists(), "a fresh clone has no instance folder"
    port, emulator_port = free_port(), free_port()
    while emulator_port == port:
        emulator_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "APP_ENV", "SECRET_KEY", "VIRTUAL_ENV"))}
    env.update(PORT=str(port), STRIPE_EMULATOR_PORT=str(emulator_port))
    for name in ("DATABASE_URL", "INSTANCE_PATH", "MAIL_URL", "BASE_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    app_url = f"http://127.0.0.1:{port}"

    failures: list[str] = []
    with open(log_path, "wb") as log:
        make = subprocess.Popen(
            ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        session = make.pid  # start_new_session: make leads a session of its own
        started = time.monotonic()
        try:
            while status_of(app_url + "/") != 200:
                if make.poll() is not None:
                    failures.append(f"make run exited with {make.returncode} before the app answered")
                    break
                if time.monotonic() - started > args.start_seconds:
                    failures.append(f"{app_url}/ did not answer 200 within {args.start_seconds:.0f} s")
                    break
                time.sleep(0.5)
            else:
                print(f"{app_url}/ answered 200 after {time.monotonic() - started:.1f} s")
                if status_of(app_url + "/dev/mail") != 200:
                    failures.append("/dev/mail is not there: make run is not in development mode")
                if not (clone / "instance" / "secret_key").is_file():
                    failures.append("make run kept no development secret in instance/secret_key")
                failures.extend(check_unsubscribe(clone / "instance" / "mail", app_url))
                running = leftovers(session, clone)
                print(f"{len(running)} processes of make run before SIGTERM")

            if make.poll() is None:
                os.kill(make.pid, signal.SIGTERM)  # one SIGTERM, to make only
                try:
                    make.wait(timeout=args.stop_seconds)
                except subprocess.TimeoutExpired:
                    failures.append(f"make did not exit within {args.stop_seconds:.0f} s of SIGTERM")
            deadline = time.monotonic() + 5  # the kernel reaps the last exits
            while leftovers(session, clone) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = leftovers(session, clone)
            for pid, _, command in left:
                failures.append(f"left running after SIGTERM: {pid} {command}")
            for name, value in (("PORT", port), ("STRIPE_EMULATOR_PORT", emulator_port)):
                if listening(value):
                    failures.append(f"port {value} ({name}) still listens after SIGTERM")
        finally:
            for pid, _, _ in leftovers(session, clone):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if make.poll() is None:
                make.kill()
                make.wait()

    if failures:
        print(f"make run from a fresh clone FAILED (log: {log_path}):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        print("---- last lines of the log ----", file=sys.stderr)
        print("\n".join(log_path.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
        return 1
    print("make run from a fresh clone: started, answered 200, and one SIGTERM stopped every process")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
