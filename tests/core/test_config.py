"""Configuration: typed settings from the environment, an explicit APP_ENV, production refuses to
start without SECRET_KEY, and only development has /dev/mail, the test banner and one shared
generated secret, so that an unsubscribe link in an e-mail the worker sent works on the web."""

import os
import re
import stat
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from marketplace import create_app
from marketplace.config import ConfigurationError, Settings, current_settings, load, override
from marketplace.db import db
from marketplace.notifications import service as notifications
from marketplace.referrals import chains
from marketplace.web.problems import payments_configured

ROOT = Path(__file__).resolve().parents[2]
STRIPE_KEYS = ["", "sk_test_abc", "rk_live_abc", "sk_live_abc"]
MAIL_URLS = ["", "smtp://127.0.0.1:2525"]


@pytest.fixture
def clean_environment(monkeypatch):
    """No APP_ENV or SECRET_KEY from the shell running the tests."""
    for name in ("APP_ENV", "SECRET_KEY", "STRIPE_SECRET_KEY", "MAIL_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_app(tmp_path, clean_environment):
    """``make_app(APP_ENV=..., ...)``: an app on an empty SQLite file in this test's folder."""
    made = []

    def make(**overrides):
        config = {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'config.db'}",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "RATELIMIT_ENABLED": False,
            **overrides,
        }
        app = create_app(config)
        made.append(app)
        return app

    yield make
    if made and db.engine is not None:
        db.dispose()


# Production refuses to start without SECRET_KEY --------------------------------------------------


def test_production_refuses_to_start_without_secret_key(make_app):
    with pytest.raises(ConfigurationError, match="SECRET_KEY is not set") as refused:
        make_app(APP_ENV="production", SECRET_KEY="")
    assert "APP_ENV=production" in str(refused.value)


def test_production_is_the_default(make_app):
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        make_app()
    assert current_settings_of(make_app(SECRET_KEY="s3cret")).production


def test_the_wsgi_entry_point_refuses_to_start_without_secret_key(tmp_path, clean_environment):
    """What gunicorn and ``flask worker`` load: a clear message naming the variable, no app."""
    env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "SECRET_KEY")}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "ConfigurationError" in result.stderr and "SECRET_KEY is not set" in result.stderr


def test_the_wsgi_entry_point_keeps_what_lives_as_long_as_the_process_out_of_the_collectors_sight(tmp_path):
    """A full collection walks only what was made after the app: the modules, their functions and
    the app itself are frozen (``gc.freeze``), so a collection no longer stops every thread of a
    worker for the whole heap (docs/performance.md, "Garbage collection")."""
    env = dict(os.environ, APP_ENV="production", SECRET_KEY="s3cret" * 8)
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    probe = "import gc, wsgi; print(gc.get_freeze_count(), any(o is wsgi.app for o in gc.get_objects()))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    frozen, app_still_walked = result.stdout.split()
    assert int(frozen) > 50_000 and app_still_walked == "False"


def test_an_unknown_app_env_is_refused_by_name(make_app):
    with pytest.raises(ConfigurationError, match="APP_ENV must be one of development, production, test"):
        make_app(APP_ENV="staging", SECRET_KEY="s3cret")


def test_a_malformed_number_is_refused_by_name():
    with pytest.raises(ConfigurationError, match="PORT must be a whole number"):
        load(environ={"PORT": "eighty"})


def test_tests_get_a_random_secret_per_app(make_app):
    first, second = make_app(APP_ENV="test"), make_app(APP_ENV="test")
    assert first.config["SECRET_KEY"] and first.config["SECRET_KEY"] != second.config["SECRET_KEY"]
    assert first.testing


def test_development_makes_one_secret_in_the_instance_folder_and_every_process_reads_it(make_app, tmp_path):
    web, worker = make_app(APP_ENV="development"), make_app(APP_ENV="development")
    path = tmp_path / "instance" / "secret_key"
    assert path.read_text().strip() == web.config["SECRET_KEY"] == worker.config["SECRET_KEY"]
    assert len(web.config["SECRET_KEY"]) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert make_app(APP_ENV="development", SECRET_KEY="given").config["SECRET_KEY"] == "given"


# Typed settings ------------------------------------------------------------------------------------


def current_settings_of(app) -> Settings:
    with app.app_context():
        return current_settings()


def test_settings_are_typed_and_app_config_keeps_the_upper_case_keys(make_app, tmp_path):
    app = make_app(
        APP_ENV="test", PORT="5055", SESSION_COOKIE_SECURE="1", JOB_LEASE_SECONDS=7, PROPAGATE_UNEXPECTED=False
    )
    settings = current_settings_of(app)
    assert settings is app.extensions["settings"]
    assert (settings.port, settings.session_cookie_secure, settings.job_lease_seconds) == (5055, True, 7)
    assert settings.base_url == "http://127.0.0.1:5055"
    assert settings.instance_path == str(tmp_path / "instance")
    for name, value in settings.as_config().items():
        assert app.config[name] == value
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["PROPAGATE_UNEXPECTED"] is False  # not a setting: passed through as given
    with pytest.raises(AttributeError):
        settings.port = 1  # frozen

    changed = override(app, mail_url="smtp://127.0.0.1:2525")
    assert current_settings_of(app) is changed and app.config["MAIL_URL"] == "smtp://127.0.0.1:2525"


def test_settings_come_from_the_environment():
    settings = load(
        environ={"APP_ENV": "Production", "SECRET_KEY": "k", "PLATFORM_FEE_BPS": "750", "STRIPE_SECRET_KEY": "sk_x"}
    )
    assert (settings.app_env, settings.platform_fee_bps, settings.stripe_secret_key) == ("production", 750, "sk_x")
    assert settings.database_url.endswith("/instance/marketplace.db")
    assert not settings.session_cookie_secure and settings.unsafe() == []


# /dev/mail and the banner: development only, whatever the Stripe key and the mail settings ---------


def write_mail(app) -> str:
    folder = Path(app.config["INSTANCE_PATH"]) / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "m1_marketplace.local.eml").write_bytes(
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: Hello there\r\n\r\nBody\r\n"
    )
    return "m1_marketplace.local"


@pytest.mark.parametrize("mail_url", MAIL_URLS)
@pytest.mark.parametrize("stripe_key", STRIPE_KEYS)
def test_dev_mail_is_not_found_in_production(make_app, stripe_key, mail_url):
    app = make_app(APP_ENV="production", SECRET_KEY="s3cret", STRIPE_SECRET_KEY=stripe_key, MAIL_URL=mail_url)
    name = write_mail(app)
    client = app.test_client()
    assert client.get("/dev/mail").status_code == 404
    assert client.get(f"/dev/mail/{name}").status_code == 404


def test_dev_mail_is_not_found_in_tests(make_app):
    app = make_app(APP_ENV="test")
    assert app.test_client().get("/dev/mail").status_code == 404


@pytest.mark.parametrize("stripe_key", ["", "sk_test_abc"])
def test_dev_mail_is_there_in_development(make_app, stripe_key):
    app = make_app(APP_ENV="development", STRIPE_SECRET_KEY=stripe_key)
    name = write_mail(app)
    client = app.test_client()
    page = client.get("/dev/mail")
    assert page.status_code == 200 and "Hello there" in page.text
    assert client.get(f"/dev/mail/{name}").status_code == 200


@pytest.mark.parametrize("stripe_key", STRIPE_KEYS)
def test_the_test_payments_banner_is_shown_only_in_development(make_app, stripe_key):
    production = make_app(APP_ENV="production", SECRET_KEY="s3cret", STRIPE_SECRET_KEY=stripe_key)
    page = production.test_client().get("/login")
    assert page.status_code == 200 and "test-banner" not in page.text and "/dev/mail" not in page.text
    testing = make_app(APP_ENV="test", STRIPE_SECRET_KEY=stripe_key)
    assert "test-banner" not in testing.test_client().get("/login").text
    development = make_app(APP_ENV="development", STRIPE_SECRET_KEY=stripe_key)
    page = development.test_client().get("/login")
    assert "test-banner" in page.text and 'href="/dev/mail"' in page.text


def test_the_banner_does_not_point_at_dev_mail_when_mail_goes_out(make_app):
    page = make_app(APP_ENV="development", MAIL_URL="smtp://127.0.0.1:2525").test_client().get("/login")
    assert "test-banner" in page.text and 'href="/dev/mail"' not in page.text


# Unsubscribe: a link from an e-mail the worker sent under make run's configuration ---------------


def unsubscribe_path(message) -> str:
    match = re.fullmatch(r"<https?://[^/]+(/notifications/unsubscribe/\S+)>", message["List-Unsubscribe"])
    assert match, message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return match.group(1)


def referral_mail_to_bob(session, world, open_problem) -> None:
    problem = open_problem()
    chains.pick_from_board(session, world.ann, problem.id)
    chains.forward(session, world.ann, problem.id, to_user_id=world.bob.id)
    session.commit()


def bobs_preference(session, world) -> str:
    session.expire_all()
    value = notifications.preferences(session, world.bob)["referral_received"].value
    session.rollback()
    return value


@pytest.fixture
def mail_from_development_worker(database_url, tmp_path, session, world, open_problem, clean_environment):
    """E-mail sent by a real ``flask worker`` process configured as ``make run`` configures it:
    APP_ENV=development, no SECRET_KEY, no MAIL_URL (mail lands in the instance folder)."""
    instance = tmp_path / "dev-instance"
    referral_mail_to_bob(session, world, open_problem)
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "MAIL_URL", "BASE_URL")}
    env.update(APP_ENV="development", DATABASE_URL=database_url, INSTANCE_PATH=str(instance), FLASK_APP="wsgi.py")
    worker = subprocess.run(
        [sys.executable, "-m", "flask", "worker", "--once"], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert worker.returncode == 0, worker.stderr.decode()
    sent = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in (instance / "mail").glob("*.eml")]
    to_bob = [m for m in sent if m["To"] == world.bob.email]
    assert len(to_bob) == 1, [m["To"] for m in sent]
    # The web process of the same run: a separate app on the same instance folder and database.
    web = create_app({"APP_ENV": "development", "DATABASE_URL": database_url, "INSTANCE_PATH": str(instance)})
    return web, to_bob[0]


def test_unsubscribe_link_from_the_worker_opens_a_confirmation_page(mail_from_development_worker, session, world):
    web, message = mail_from_development_worker
    path = unsubscribe_path(message)
    assert path in message.get_body(("plain",)).get_content()  # "Stop these e-mails" in the footer
    page = web.test_client().get(path)
    assert page.status_code == 200 and "Stop e-mails about" in page.text
    assert bobs_preference(session, world) != "off"  # a GET (a link scanner) changes nothing

    confirmed = web.test_client().post(
        path, data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)}
    )
    assert confirmed.status_code == 200 and "no more e-mails" in confirmed.text
    assert bobs_preference(session, world) == "off"


def test_unsubscribe_link_from_the_worker_works_by_one_click_post(mail_from_development_worker, session, world):
    web, message = mail_from_development_worker
    assert web.config["WTF_CSRF_ENABLED"] is not False
    response = web.test_client().post(unsubscribe_path(message), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "no more e-mails" in response.text
    assert bobs_preference(session, world) == "off"


def test_one_click_unsubscribe_needs_no_csrf_token_but_a_valid_signature(
    app, client, sent_mail, session, world, open_problem
):
    referral_mail_to_bob(session, world, open_problem)
    path = unsubscribe_path(sent_mail.to(world.bob.email)[-1])
    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    assert client.post(forged, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert bobs_preference(session, world) != "off"
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert bobs_preference(session, world) == "off"


@pytest.mark.parametrize("app_env, free", [("production", False), ("development", True), ("test", True)])
def test_a_bounty_is_funded_without_payment_only_outside_production(make_app, app_env, free):
    """Without a Stripe key, development's "fund" button marks a bounty paid; production never does."""
    app = make_app(APP_ENV=app_env, SECRET_KEY="s3cret", STRIPE_SECRET_KEY="", STRIPE_API_BASE="")
    with app.test_request_context():
        assert payments_configured() is not free
