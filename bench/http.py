"""HTTP benchmark: the marketplace's pages under gunicorn beside a one-route Flask app under the
same gunicorn settings, on SQLite and on PostgreSQL (docs/performance.md, "HTTP").

For each engine the script seeds a new database (10k members, 2k open problems, 20k referrals,
100k connections), starts under gunicorn (2 sync workers each) the app, the one-route app
(``bench/one_route.py``) and the member floor app (``bench/member_floor.py``: the smallest page a
logged-in member could be served by this stack, the yardstick the members' pages are read
against), logs a chain member in to the app and to the floor app through their login forms, and
then:

- **throughput**: loads each page with wrk (Debian's ``wrk``; installed with ``apt-get install -y
  wrk`` when missing) for ``--duration`` seconds, alternating the pages and the two yardsticks
  over ``--rounds`` rounds, and prints the median req/s, p50 and p99, the ratio to the one-route
  app measured in the same round and, for a member's page, to the member floor app;
- **latency at a fixed rate**: sends requests at a fixed rate, half of what wrk measured for that
  page, from a threaded client that times each request from the moment it was due (so that a slow
  answer delays no later measurement: no coordinated omission), and prints p50/p99.

A visitor's GET is a plain GET, without If-None-Match: the visitor page cache may serve it, as it
would serve a real visitor (that cache is per worker process by default). Nothing the benchmark
GETs is rate-limited; only the one log-in POST per engine is.

Run: ``make bench`` or ``python -m bench.http [--engine sqlite|postgresql|both] [--postgres URL]
[--quick]``. PostgreSQL needs a server reachable as ``--postgres`` (or ``BENCH_POSTGRES_URL``;
trust auth); the script creates a database and drops it. By default both engines run when that
server answers, SQLite alone otherwise.
"""

import argparse
import http.cookiejar
import itertools
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from marketplace.accounts.addresses import skeleton
from marketplace.accounts.models import Company, Membership, Role, Skill, User, user_skills
from marketplace.db import make_engine, normalize_url, utcnow
from marketplace.models import metadata
from marketplace.network.models import Connection
from marketplace.problems import splits
from marketplace.problems.models import Problem, ProblemStatus, Visibility, problem_skills
from marketplace.referrals import attribution
from marketplace.referrals.chains import compute_chain_hash
from marketplace.referrals.models import AttributionKind, AttributionRecord, Referral, ReferralStatus
from marketplace.workflows import funding

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
PASSWORD = "bench-password-2026"
COMPANIES = 100
CHAINS_PER_PROBLEM = 2
# The member whose pages are measured holds a place on the chains of this many problems.
MEMBER_PLACES = 20
SKILLS = [
    "python", "postgres", "kubernetes", "react", "rust", "go", "terraform", "kafka", "spark", "django",
    "flask", "machine-learning", "security", "networking", "ios", "android", "design", "sales", "finance",
    "legal", "hiring", "marketing", "data-engineering", "sre", "embedded", "fpga", "compilers", "sqlite",
    "elasticsearch", "redis",
]  # fmt: skip
WORDS = ["slow", "flaky", "scaling", "migrating", "securing", "debugging", "tuning", "rewriting", "auditing"]
NOUNS = ["queries", "deploys", "pipeline", "checkout", "search", "billing", "mobile app", "data warehouse"]
SEARCH_WORD = "pipeline"


@dataclass
class Sizes:
    members: int
    problems: int
    referrals: int
    connections: int


FULL = Sizes(members=10_000, problems=2_000, referrals=20_000, connections=100_000)
QUICK = Sizes(members=1_000, problems=200, referrals=2_000, connections=10_000)


@dataclass
class Fixture:
    """What the measured requests need: the member, a problem on their chain, a referral link."""

    member_email: str
    problem_id: int
    landing_token: str
    skill: str


# Seeding ---------------------------------------------------------------------------------------


def _chunks(rows: list[dict], size: int = 5_000):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _bulk(session: Session, table, rows: list[dict]) -> None:
    for chunk in _chunks(rows):
        session.execute(insert(table), chunk)


def seed(engine, sizes: Sizes, rng: random.Random) -> Fixture:
    """Bulk rows written as the services would write them: chain hashes and claim records are
    computed by the same functions, and the problems are funded through the funding workflow (so
    their escrow is in the ledger)."""
    metadata.create_all(engine)
    now = utcnow()
    password_hash = generate_password_hash(PASSWORD)
    member_ids = range(COMPANIES + 1, sizes.members + 1)  # Users 1..COMPANIES own the companies.
    member_id = COMPANIES + 1
    with Session(engine) as session:
        _bulk(session, Skill.__table__, [{"id": n, "slug": s, "name": s.title()} for n, s in enumerate(SKILLS, 1)])
        users = []
        for n in range(1, sizes.members + 1):
            email = f"member{n}@bench.example"
            users.append(
                {
                    "id": n,
                    "email": email,
                    "email_skeleton": skeleton(email),
                    "name": f"Member {n}",
                    "headline": "",
                    "password_hash": password_hash,
                    "is_platform_admin": False,
                    "show_name_on_chains": True,
                    "session_version": 1,
                    "email_verified_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        _bulk(session, User.__table__, users)
        _bulk(
            session,
            user_skills,
            [
                {"user_id": n, "skill_id": s}
                for n in range(1, sizes.members + 1)
                for s in rng.sample(range(1, len(SKILLS) + 1), 3)
            ],
        )
        _bulk(
            session,
            Company.__table__,
            [{"id": n, "name": f"Company {n}", "description": "", "created_at": now} for n in range(1, COMPANIES + 1)],
        )
        _bulk(
            session,
            Membership.__table__,
            [{"company_id": n, "user_id": n, "role": Role.OWNER, "created_at": now} for n in range(1, COMPANIES + 1)],
        )
        params = splits.normalize_params(splits.DEFAULT_RULE, None, max_depth=6)
        problems = []
        for n in range(1, sizes.problems + 1):
            posted = now - timedelta(minutes=n)
            skill = SKILLS[n % len(SKILLS)]
            problems.append(
                {
                    "id": n,
                    "company_id": (n - 1) % COMPANIES + 1,
                    "created_by_id": (n - 1) % COMPANIES + 1,
                    "title": f"{rng.choice(WORDS).title()} {rng.choice(NOUNS)} on {skill}",
                    "description": f"We need someone who has fixed {rng.choice(NOUNS)} before. " * 5,
                    "bounty_amount": rng.randrange(50_000, 1_000_000, 100),
                    "currency": "usd",
                    "split_rule": splits.DEFAULT_RULE,
                    "split_params": params,
                    "platform_fee_bps": 1000,
                    "candidate_share_bps": 0,
                    "max_depth": 6,
                    "guarantee_days": 30,
                    "visibility": Visibility.PUBLIC,
                    "status": ProblemStatus.AWAITING_PAYMENT,
                    "expires_at": now + timedelta(days=30),
                    "created_at": posted,
                    "updated_at": posted,
                    "published_at": posted,
                }
            )
        _bulk(session, Problem.__table__, problems)
        _bulk(
            session,
            problem_skills,
            [
                {"problem_id": n, "skill_id": s}
                for n in range(1, sizes.problems + 1)
                for s in {n % len(SKILLS) + 1, rng.randrange(1, len(SKILLS) + 1)}
            ],
        )
        session.commit()
        for n in range(1, sizes.problems + 1):
            funding.fund_problem(session, n)
        session.commit()

        referrals, records = [], []
        links = sizes.referrals // sizes.problems // CHAINS_PER_PROBLEM
        landing_token = ""
        next_id = 1
        for problem_id in range(1, sizes.problems + 1):
            holders = rng.sample(member_ids, links * CHAINS_PER_PROBLEM)
            if problem_id <= MEMBER_PLACES:  # The measured member: second link of the first chain.
                if member_id in holders:
                    holders.remove(member_id)
                holders.insert(1, member_id)
                holders = holders[: links * CHAINS_PER_PROBLEM]
            head, seq = "", 0
            for chain in range(CHAINS_PER_PROBLEM):
                parent: Referral | None = None
                for depth in range(1, links + 1):
                    # The last link of the last chain is a link sent and not yet claimed.
                    claimed = not (chain == CHAINS_PER_PROBLEM - 1 and depth == links)
                    recipient = holders[chain * links + depth - 1]
                    referral = Referral(
                        id=next_id,
                        problem_id=problem_id,
                        parent_id=parent.id if parent else None,
                        sender_id=parent.holder_id if parent else None,
                        recipient_user_id=recipient,
                        recipient_email=None,
                        note="",
                        token=secrets.token_urlsafe(24),
                        depth=depth,
                        created_at=utcnow(),
                        updated_at=utcnow(),
                        status=ReferralStatus.CLAIMED if claimed else ReferralStatus.SENT,
                        holder_id=recipient if claimed else None,
                    )
                    referral.claimed_at = referral.created_at if claimed else None
                    referral.chain_hash = compute_chain_hash(referral, parent.chain_hash if parent else "")
                    next_id += 1
                    referrals.append({c.key: getattr(referral, c.key) for c in Referral.__table__.columns})
                    if not claimed:
                        if problem_id == 1:
                            landing_token = referral.token
                        continue
                    seq += 1
                    content = attribution.canonical(
                        {
                            "kind": AttributionKind.CLAIM.value,
                            "problem_id": problem_id,
                            "seq": seq,
                            "referral_id": referral.id,
                            "introduction_id": None,
                            **attribution.claim_facts(referral),
                        }
                    )
                    prev_hash, head = head, attribution.record_hash(head, content)
                    records.append(
                        {
                            "problem_id": problem_id,
                            "seq": seq,
                            "kind": AttributionKind.CLAIM,
                            "referral_id": referral.id,
                            "introduction_id": None,
                            "content": content,
                            "prev_hash": prev_hash,
                            "hash": head,
                            "recorded_at": referral.claimed_at,
                        }
                    )
                    parent = referral
        _bulk(session, Referral.__table__, referrals)
        _bulk(session, AttributionRecord.__table__, records)

        pairs: set[tuple[int, int]] = set()
        while len(pairs) < sizes.connections:
            a, b = rng.randrange(1, sizes.members + 1), rng.randrange(1, sizes.members + 1)
            if a != b:
                pairs.add((min(a, b), max(a, b)))
        _bulk(
            session,
            Connection.__table__,
            [
                {"user_id": x, "peer_id": y, "note": "", "created_at": now}
                for a, b in pairs
                for x, y in ((a, b), (b, a))
            ],
        )
        if engine.dialect.name == "postgresql":
            for table in ("users", "skills", "companies", "problems", "referrals"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"))
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))  # The planner's statistics, as a live database has them.
    return Fixture(
        member_email=f"member{member_id}@bench.example", problem_id=1, landing_token=landing_token, skill=SKILLS[1]
    )


# Servers ---------------------------------------------------------------------------------------

GUNICORN_SETTINGS = ["--workers", "2", "--worker-class", "sync", "--log-level", "warning"]


def use_workers(count: int) -> None:
    """Both apps get ``count`` sync workers (``--workers``; 2 by default, one per core here)."""
    GUNICORN_SETTINGS[1] = str(count)


class Server:
    """A gunicorn serving ``app`` on ``port``, stopped (by its own pid) on exit."""

    def __init__(self, app: str, port: int, env: dict[str, str]):
        command = [str(GUNICORN), *GUNICORN_SETTINGS, "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT), app]
        self.port = port
        self.process = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"gunicorn for {app} exited with {self.process.returncode}") from None
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn for {app} did not start on port {port}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def free_port(low: int, high: int) -> int:
    for port in range(low, high + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


# Every client here sends this, as a browser sends its own on every request. Flask-Login keeps a
# digest of the address and User-Agent a session logged in from; a request from another one
# marks the session no longer fresh, which rewrites its cookie on every request of a client
# that never stores the new cookie (wrk), a cost no member's browser pays.
USER_AGENT = "bench/http.py"


def log_in(server: Server, email: str, home: str = "/dashboard") -> str:
    """The session cookie a browser holds after the real login form (GET the form, POST it),
    checked on the member's ``home`` page."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", USER_AGENT)]
    form = opener.open(server.url("/login")).read().decode()
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', form
    )
    if match is None:
        raise RuntimeError("no CSRF token on the login form")
    body = urllib.parse.urlencode({"csrf_token": match.group(1), "email": email, "password": PASSWORD}).encode()
    opener.open(server.url("/login"), data=body).read()
    session_cookie = next((c for c in jar if c.name == "session"), None)
    if session_cookie is None:
        raise RuntimeError("the login form set no session cookie")
    page = opener.open(server.url(home))
    if page.url.rstrip("/").endswith("/login") or page.status != 200:
        raise RuntimeError("the session cookie does not reach the dashboard")
    return f"session={session_cookie.value}"


# Load ------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    path: str
    cookie: str = ""
    group: str = ""  # which target the page is held to: anonymous, api, member


@dataclass
class Measure:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    # Fixed rate only: how late the client itself started the 99th percentile request (a large
    # figure means the client, not the server, could not keep the schedule).
    send_lag_ms: float = 0.0


def ensure_tool(command: str) -> str:
    """The path of a Debian tool the benchmarks drive (wrk, valgrind), installed with apt-get
    when missing; the package has the command's name."""
    found = shutil.which(command)
    if found:
        return found
    print(f"{command} is missing: apt-get install -y {command}", flush=True)
    if subprocess.run(["apt-get", "install", "-y", command], stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)  # a fresh machine's lists
        subprocess.run(["apt-get", "install", "-y", command], check=True, stdout=subprocess.DEVNULL)
    found = shutil.which(command)
    if not found:
        raise RuntimeError(f"{command} could not be installed")
    return found


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise RuntimeError(f"wrk printed a latency of {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(binary: str, url: str, cookie: str, seconds: float, connections: int = 4) -> Measure:
    command = [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"User-Agent: {USER_AGENT}", url]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    if "Latency Distribution" not in out or "Requests/sec" not in out:
        raise RuntimeError(f"wrk measured nothing at {url}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    count = int(bad.group(1)) if bad else 0
    count += sum(int(n) for n in errors.groups()) if errors else 0
    return Measure(rate, p50, p99, count)


def fixed_rate(port: int, path: str, cookie: str, rate: float, seconds: float, threads: int = 64) -> Measure:
    """Requests sent on a schedule at ``rate``, each timed from when it was due.

    Blocking sockets on a pool of threads: each closes its connection the moment the response
    ends, as wrk does (gunicorn's sync worker waits for the client to close before it takes the
    next request, so a client slow to close would throttle the server). A request that starts
    late because every thread was busy is still timed from when it was due."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n"
    if cookie:
        request += f"Cookie: {cookie}\r\n"
    payload = (request + "\r\n").encode()
    count = int(rate * seconds)
    numbers = itertools.count()
    latencies: list[float] = []
    lags: list[float] = []
    failures: list[int] = []
    start = time.perf_counter() + 0.05

    def send() -> None:
        while (n := next(numbers)) < count:
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            lags.append(time.perf_counter() - due)
            try:
                with socket.create_connection(("127.0.0.1", port)) as connection:
                    connection.sendall(payload)
                    first = connection.recv(65536)
                    while connection.recv(65536):
                        pass
                if not first.startswith(b"HTTP/1.1 200 "):
                    failures.append(n)
            except OSError:
                failures.append(n)
            latencies.append(time.perf_counter() - due)

    pool = [threading.Thread(target=send) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    cut = statistics.quantiles(latencies, n=100, method="inclusive")
    lag = statistics.quantiles(lags, n=100, method="inclusive")[98]
    return Measure(len(latencies) / elapsed, cut[49] * 1000, cut[98] * 1000, len(failures), lag * 1000)


# The run ---------------------------------------------------------------------------------------


@dataclass
class Results:
    throughput: dict[str, list[Measure]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)
    fixed: dict[str, Measure] = field(default_factory=dict)


BASELINE = "one-route app"


def floor_target(cookie: str) -> Target:
    """The smallest member's page the stack allows (``bench/member_floor.py``): what the targets
    of the members' pages are to be read against, beside the one-route app."""
    return Target("member floor app (stack only)", "/", cookie, group="floor")


def targets_for(fixture: Fixture, cookie: str) -> list[Target]:
    problem = f"/problems/{fixture.problem_id}"
    return [
        Target("board, page 1", "/problems", group="anonymous"),
        Target(f"board, search '{SEARCH_WORD}'", f"/problems?q={SEARCH_WORD}", group="anonymous"),
        Target(f"board, skill '{fixture.skill}'", f"/problems?skill={fixture.skill}", group="anonymous"),
        Target("problem page, anonymous", problem, group="anonymous"),
        Target("landing /r/<token>", f"/r/{fixture.landing_token}", group="anonymous"),
        Target("GET /api/v1/problems", "/api/v1/problems", group="api"),
        Target("problem page, chain member", problem, cookie, group="member"),
        Target("dashboard, member", "/dashboard", cookie, group="member"),
        # One of the dashboard's lists whole: every referral the member sent.
        Target("referrals sent (whole list), member", "/dashboard/sent", cookie, group="member"),
        # The lightest logged-in page (the layout, the navigation and an empty list): the floor
        # under every member's page, which the targets of the two above are to be read against.
        Target("notifications, member", "/notifications", cookie, group="member"),
    ]


def check_ok(server: Server, target: Target) -> None:
    headers = {"User-Agent": USER_AGENT} | ({"Cookie": target.cookie} if target.cookie else {})
    request = urllib.request.Request(server.url(target.path), headers=headers)
    with urllib.request.urlopen(request) as response:
        if response.status != 200 or response.url != server.url(target.path):
            raise RuntimeError(f"{target.name}: {response.status} at {response.url}")
        if target.cookie and response.headers.get("Set-Cookie"):
            raise RuntimeError(f"{target.name}: the session cookie is rewritten on each request (see USER_AGENT)")


def run_engine(label: str, database_url: str, args, wrk_binary: str) -> Results:
    engine = make_engine(database_url)
    started = time.perf_counter()
    fixture = seed(engine, QUICK if args.quick else FULL, random.Random(2026))
    engine.dispose()
    print(f"{label}: seeded in {time.perf_counter() - started:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as instance:
        env = {
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": instance,
        }
        app_port = free_port(args.port, args.port + 49)
        base_port = free_port(app_port + 1, args.port + 99)
        floor_port = free_port(base_port + 1, args.port + 99)
        with (
            Server("wsgi:app", app_port, env) as app,
            Server("bench.one_route:app", base_port, {}) as baseline,
            Server("bench.member_floor:app", floor_port, env) as floor,
        ):
            cookie = log_in(app, fixture.member_email)
            # Each page with the server that serves it; the yardsticks first.
            served = [
                (baseline, Target(BASELINE, "/")),
                (floor, floor_target(log_in(floor, fixture.member_email, "/"))),
            ]
            served += [(app, target) for target in targets_for(fixture, cookie)]
            for server, target in served:
                check_ok(server, target)
                wrk(wrk_binary, server.url(target.path), target.cookie, 1)  # warm both workers
            results = Results()
            for round_number in range(args.rounds):
                base = None
                for server, target in served:
                    measure = wrk(wrk_binary, server.url(target.path), target.cookie, args.duration)
                    base = base or measure
                    results.throughput.setdefault(target.name, []).append(measure)
                    results.ratios.setdefault(target.name, []).append(measure.rate / base.rate)
                print(f"{label}: round {round_number + 1} of {args.rounds} done", flush=True)
            for server, target in served:
                rate = statistics.median(m.rate for m in results.throughput[target.name]) / 2
                results.fixed[target.name] = fixed_rate(server.port, target.path, target.cookie, rate, args.duration)
    return results


GOALS = {"anonymous": 0.35, "api": 0.45, "member": 0.15}


def report(label: str, results: Results, targets: list[Target]) -> None:
    groups = {t.name: t.group for t in targets}
    floor_rate = statistics.median(m.rate for m in results.throughput[floor_target("").name])
    print(f"\n{label}")
    print(
        f"{'page':<30} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} {'target':>7} {'floor':>6}"
        f"   {'fixed rate':>10} {'p50 ms':>7} {'p99 ms':>7} {'≤100':>4} {'lag ms':>6}  errors"
    )
    for name, measures in results.throughput.items():
        rate = statistics.median(m.rate for m in measures)
        p50 = statistics.median(m.p50_ms for m in measures)
        p99 = statistics.median(m.p99_ms for m in measures)
        ratio = statistics.median(results.ratios[name]) if name in results.ratios else 1.0
        goal = GOALS.get(groups.get(name, ""))
        mark = "" if goal is None else f"≥{goal:.0%}" + (" ok" if ratio >= goal else " NO")
        of_floor = f"{rate / floor_rate:6.0%}" if groups.get(name) == "member" else ""
        fixed = results.fixed[name]
        errors = sum(m.errors for m in measures) + fixed.errors
        print(
            f"{name:<30} {rate:7.0f} {p50:7.1f} {p99:7.1f} {ratio:6.1%} {mark:>7} {of_floor:>6}"
            f"   {fixed.rate:8.0f}/s {fixed.p50_ms:7.1f} {fixed.p99_ms:7.1f} {'ok' if fixed.p99_ms <= 100 else 'NO':>4}"
            f" {fixed.send_lag_ms:6.1f}  {errors}"
        )


def postgres_reachable(url: str) -> bool:
    try:
        with create_engine(normalize_url(url), connect_args={"connect_timeout": 3}).connect():
            return True
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default=None)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/postgres"),
        help="a PostgreSQL server's URL (trust auth); a database is created there and dropped",
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, 1 round of 2 s")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds per page per round")
    parser.add_argument("--port", type=int, default=5100, help="first port of 100 the servers may take")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers, for both apps")
    args = parser.parse_args()
    use_workers(args.workers)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (2 if args.quick else 5)
    engines = args.engine or ("both" if postgres_reachable(args.postgres) else "sqlite")
    wrk_binary = ensure_tool("wrk")
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    runs = []
    if engines in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as directory:
            runs.append(("SQLite", run_engine("SQLite", f"sqlite:///{Path(directory) / 'bench.db'}", args, wrk_binary)))
    if engines in ("postgresql", "both"):
        admin = create_engine(normalize_url(args.postgres), isolation_level="AUTOCOMMIT")
        name = f"bench_http_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = f"{args.postgres.rpartition('/')[0]}/{name}"
            runs.append(("PostgreSQL", run_engine("PostgreSQL", url, args, wrk_binary)))
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    sizes = QUICK if args.quick else FULL
    print(
        f"\n{sizes.members} members, {sizes.problems} open problems, {sizes.referrals} referrals, "
        f"{sizes.connections} connections; gunicorn {' '.join(GUNICORN_SETTINGS)}; wrk -t1 -c4, "
        f"{args.rounds} rounds of {args.duration:g} s per page; ratio = req/s over the one-route app's "
        "in the same round (median of rounds); floor = a member's page's req/s over the member floor app's "
        "(bench/member_floor.py, the smallest member's page the stack allows); fixed rate = half the "
        "page's own req/s; lag = the client's own p99 delay in starting a request"
    )
    placeholder = targets_for(Fixture("", 1, "", SKILLS[1]), "")
    for label, results in runs:
        report(label, results, placeholder)


if __name__ == "__main__":
    main()
