"""Fixtures: an app on a real database (SQLite file, or PostgreSQL when TEST_DATABASE_URL says so),
the test client with CSRF on, and helpers that act as a browser or an API client."""

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from marketplace import create_app
from marketplace.accounts import passwords
from marketplace.accounts import service as accounts
from marketplace.db import db, make_engine
from marketplace.jobs import service as jobs
from marketplace.models import metadata
from tests import builders as build
from tests.builders import PASSWORD, problem_input  # noqa: F401 (imported from here by many tests)

# One iteration of PBKDF2 instead of scrypt: sign-ups would dominate the run time. The tests about
# the hash itself ask for ``real_password_hashing``.
FAST_PASSWORD_HASH = "pbkdf2:sha256:1"
POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgres")


@pytest.fixture(scope="session")
def postgres_engine():
    """One schema per test run on PostgreSQL; tables are emptied between tests."""
    if not POSTGRES:
        yield None
        return
    engine = make_engine(os.environ["TEST_DATABASE_URL"])
    metadata.drop_all(engine)
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory, postgres_engine):
    """On SQLite, the empty schema is made once per run into a file each test gets a copy of."""
    if postgres_engine is not None:
        return None
    path = tmp_path_factory.mktemp("schema") / "empty.db"
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    return path


@pytest.fixture
def database_url(tmp_path, postgres_engine, sqlite_template):
    if postgres_engine is None:
        shutil.copyfile(sqlite_template, tmp_path / "test.db")
        return f"sqlite:///{tmp_path / 'test.db'}"
    empty_postgres_tables(postgres_engine)
    return os.environ["TEST_DATABASE_URL"]


def empty_postgres_tables(engine, attempts: int = 3) -> None:
    """Empty every table for the next test. A request the previous test's server thread is still
    answering (a page's script fired just before the browser went away) may hold a lock the
    TRUNCATE needs, in another order: such busy connections are ended first, and a deadlock
    found anyway is tried again."""
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND state <> 'idle'"
                    )
                )
                connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise


@pytest.fixture
def app_overrides():
    """Settings a package's tests change. Fraud screening is off: these worlds make every account
    in one second, which is what it looks for; ``tests/fraud`` turns it on."""
    return {"FRAUD_SCREENING": False}


@pytest.fixture
def app(database_url, tmp_path, app_overrides):
    app = create_app(
        {
            "APP_ENV": "test",
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "BASE_URL": "http://localhost",
            "RATELIMIT_ENABLED": False,
            "STRIPE_SECRET_KEY": "",
            "PASSWORD_HASH_METHOD": FAST_PASSWORD_HASH,
            **app_overrides,
        }
    )
    # No app context is held open: each request gets its own, as in production. Test code uses
    # ``db.session`` outside any context (a session of its own, scoped to the test's thread).
    yield app
    db.remove()
    db.dispose()


@pytest.fixture
def real_password_hashing(app):
    """The production hashing method (werkzeug's default, scrypt) for a test about the hash itself."""
    passwords.configure(passwords.DEFAULT_METHOD)
    yield
    passwords.configure(app.config["PASSWORD_HASH_METHOD"])


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    return db.session


class Mailbox(Sequence):
    """The messages the app sent, in order; reading it first lets the worker deliver every due
    e-mail job, as if a worker were always running beside the app."""

    def __init__(self, app):
        self.app = app
        self.sent = app.extensions.setdefault("sent_mail", [])

    def deliver(self):
        db.session.commit()  # The test's own unit of work must not hold the write lock.
        with self.app.app_context():
            jobs.work_once(db.session, "test-worker", kinds={"email.send"})
        return self.sent

    def __getitem__(self, index):
        return self.deliver()[index]

    def __len__(self):
        return len(self.deliver())

    def __eq__(self, other):
        return list(self.deliver()) == list(other)

    def to(self, address: str) -> list:
        return [message for message in self.deliver() if message["To"] == address]


@pytest.fixture
def sent_mail(app):
    return Mailbox(app)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "page has no CSRF token"
    return match.group(1)


class Browser:
    """The test client used like a person: GET a page, then submit its form with the CSRF token."""

    def __init__(self, app):
        self.client = app.test_client()

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def submit(self, page_url, data=None, action=None, follow=True):
        """Load ``page_url``, take its CSRF token, and POST ``data`` to ``action`` (or the page)."""
        page = self.client.get(page_url)
        assert page.status_code == 200, (page_url, page.status_code)
        payload = {"csrf_token": csrf_token(page.text), **(data or {})}
        return self.client.post(action or page_url, data=payload, follow_redirects=follow)

    def signup(self, name, email, password=PASSWORD):
        return self.submit("/signup", {"name": name, "email": email, "password": password})

    def login(self, email, password=PASSWORD):
        return self.submit("/login", {"email": email, "password": password})


@pytest.fixture
def browser(app):
    return lambda: Browser(app)


class ApiClient:
    def __init__(self, client, token=None):
        self.client = client
        self.token = token

    def _headers(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, url, **kwargs):
        return self.client.get("/api/v1" + url, headers=self._headers(), **kwargs)

    def post(self, url, json=None, **kwargs):
        return self.client.post(
            "/api/v1" + url, json=json if json is not None else {}, headers=self._headers(), **kwargs
        )

    def put(self, url, json=None):
        return self.client.put("/api/v1" + url, json=json or {}, headers=self._headers())

    def patch(self, url, json=None):
        return self.client.patch("/api/v1" + url, json=json or {}, headers=self._headers())

    def delete(self, url):
        return self.client.delete("/api/v1" + url, headers=self._headers())


@pytest.fixture
def api(client):
    """``api()`` is anonymous; ``api(user)`` carries a fresh token of that user."""

    def make(user=None):
        if user is None:
            return ApiClient(client)
        _, raw = accounts.create_api_token(db.session, user)
        db.session.commit()
        return ApiClient(client, raw)

    return make


@dataclass
class World:
    """A company with an owner and an employee, three members and an expert."""

    owner: object
    admin: object
    employee: object
    company: object
    ann: object
    bob: object
    cleo: object
    dev: object
    outsider: object


@pytest.fixture
def make_user(session):
    def make(name, email=None, skills="", verified=True):
        return build.user(session, name, email, skills=skills, verified=verified)

    return make


@pytest.fixture
def world(session, make_user):
    owner = make_user("Olivia Owner", "olivia@acme.example.com")
    admin = make_user("Adam Admin", "adam@acme.example.com")
    employee = make_user("Ethan Employee", "ethan@acme.example.com")
    company = build.company(session, owner, name="Acme Data", members={admin: "admin", employee: "employee"})
    return World(
        owner=owner,
        admin=admin,
        employee=employee,
        company=company,
        ann=make_user("Ann Li"),
        bob=make_user("Bob Martins"),
        cleo=make_user("Cleo Duarte"),
        dev=make_user("Dev Sharma", skills="postgres"),
        outsider=make_user("Otto Outsider"),
    )


@pytest.fixture
def open_problem(session, world):
    """A funded, public problem of the world's company (the same funding call the webhook makes)."""

    def make(**overrides):
        return build.problem(session, world.owner, world.company.id, "open", **overrides)

    return make
