"""Typed configuration: one frozen ``Settings``, read from the environment (and a ``.env`` file).

``APP_ENV`` says which kind of run this is, and nothing else guesses it:

- ``production`` (the default): ``SECRET_KEY`` is required; no development conveniences.
- ``development`` (``make run``): without ``SECRET_KEY`` one secret is generated once into
  ``<instance>/secret_key`` and shared by every process (web, worker, CLI); ``/dev/mail``, the
  "test payments" banner and the local Stripe emulator fallback are on.
- ``test``: without ``SECRET_KEY`` a random one per process; no development pages.

The app factory stores the settings in ``app.extensions["settings"]`` (``current_settings()``
returns them) and copies them into ``app.config`` under the same upper-case names as always.
Change the settings of a running app with ``override()`` (tests do): a write to ``app.config``
alone is not seen by code that reads the typed settings.
"""

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from flask import Flask, current_app, has_app_context

ROOT = Path(__file__).resolve().parent.parent
APP_ENVS = ("development", "production", "test")
AppEnv = Literal["development", "production", "test"]
SECRET_KEY_FILE = "secret_key"


class ConfigurationError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    app_env: AppEnv
    instance_path: str
    database_url: str
    secret_key: str
    port: int
    base_url: str
    stripe_secret_key: str
    stripe_api_base: str
    stripe_emulator_port: int
    stripe_webhook_secret: str
    # A call slower than this counts as "outcome unknown" and is retried with the same key.
    stripe_timeout_seconds: int
    mail_url: str
    mail_from: str
    platform_fee_bps: int
    ratelimit_storage_uri: str
    # Where rendered pages for visitors are kept (redis://...); empty keeps them in each process.
    cache_url: str
    auth_rate_limit: str
    session_cookie_secure: bool
    # How long a worker holds a job before another may take it over (it may have died).
    job_lease_seconds: int
    # Proxies in front of the app (nginx, a load balancer) whose X-Forwarded-For/-Proto/-Host it
    # trusts; 0 (direct) ignores those headers, which a client could otherwise make up.
    proxy_hops: int

    @property
    def development(self) -> bool:
        return self.app_env == "development"

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @property
    def testing(self) -> bool:
        return self.app_env == "test"

    @property
    def dev_mail(self) -> bool:
        """``/dev/mail`` shows the mail written to the instance folder: development only."""
        return self.development

    @property
    def stripe_emulator_url(self) -> str:
        """Where ``make run`` starts the local Stripe emulator."""
        return f"http://127.0.0.1:{self.stripe_emulator_port}"

    @property
    def stripe_emulator_fallback(self) -> bool:
        """Without a Stripe key, talk to the local emulator (development and tests only)."""
        return not self.production

    def as_config(self) -> dict[str, Any]:
        """The upper-case ``app.config`` keys the rest of the code reads, and Flask-Caching's."""
        config = {field.name.upper(): getattr(self, field.name) for field in fields(self)}
        if self.cache_url:
            config.update(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=self.cache_url)
        else:
            config.update(CACHE_TYPE="SimpleCache")
        return config

    def unsafe(self) -> list[str]:
        """What makes these settings unsafe to start with (empty when they are fine)."""
        found = []
        if self.production and not self.secret_key:
            found.append(
                "SECRET_KEY is not set. It signs sessions, CSRF tokens and unsubscribe "
                "links, and every process (web workers, the job worker) must share it. Set SECRET_KEY "
                "to a long random value, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`, "
                "or set APP_ENV=development for a local run."
            )
        return found


_FIELDS = {field.name.upper(): field for field in fields(Settings)}
_last_installed: Settings | None = None


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a whole number, not {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {value!r}") from None


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be 1 or 0, not {value!r}")


def development_secret(instance_path: str | Path) -> str:
    """The development secret in ``<instance>/secret_key``, made once (0600) and then reused, so
    that every process of a local run signs and checks with the same key."""
    path = Path(instance_path) / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{SECRET_KEY_FILE}.{os.getpid()}")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        try:
            os.link(partial, path)  # Atomic: whichever process links first wins, the rest read it.
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise ConfigurationError(f"{path} is empty; delete it to make a new development SECRET_KEY")
    return secret


def load(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``environ`` (default: ``.env`` under the process environment), then
    ``overrides`` (upper-case names, as ``create_app`` takes them). Keys that are not settings are
    ignored here; ``create_app`` passes them on to ``app.config``."""
    if environ is None:
        environ = {**{k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}, **os.environ}
    raw: dict[str, Any] = {name: environ[name] for name in _FIELDS if name in environ}
    raw.update({name: value for name, value in (overrides or {}).items() if name in _FIELDS})

    app_env = str(raw.get("APP_ENV") or "production").strip().lower()
    if app_env not in APP_ENVS:
        raise ConfigurationError(f"APP_ENV must be one of {', '.join(APP_ENVS)}, not {raw['APP_ENV']!r}")
    instance = str(Path(raw.get("INSTANCE_PATH") or ROOT / "instance").absolute())
    port = _as_int("PORT", raw.get("PORT") or 5000)
    secret_key = str(raw.get("SECRET_KEY") or "")
    if not secret_key and app_env == "development":
        secret_key = development_secret(instance)
    elif not secret_key and app_env == "test":
        secret_key = secrets.token_hex(32)

    def text(name: str, default: str = "") -> str:
        value = raw.get(name)
        return default if value is None else str(value)

    def number(name: str, default: int) -> int:
        value = raw.get(name)
        return default if value in (None, "") else _as_int(name, value)

    return Settings(
        app_env=app_env,  # type: ignore[arg-type]
        instance_path=instance,
        database_url=text("DATABASE_URL") or f"sqlite:///{Path(instance) / 'marketplace.db'}",
        secret_key=secret_key,
        port=port,
        base_url=text("BASE_URL") or f"http://127.0.0.1:{port}",
        stripe_secret_key=text("STRIPE_SECRET_KEY"),
        stripe_api_base=text("STRIPE_API_BASE"),
        stripe_emulator_port=number("STRIPE_EMULATOR_PORT", 12111),
        stripe_webhook_secret=text("STRIPE_WEBHOOK_SECRET"),
        stripe_timeout_seconds=number("STRIPE_TIMEOUT_SECONDS", 20),
        mail_url=text("MAIL_URL"),
        mail_from=text("MAIL_FROM") or "Referral Marketplace <noreply@marketplace.local>",
        platform_fee_bps=number("PLATFORM_FEE_BPS", 1000),
        ratelimit_storage_uri=text("RATELIMIT_STORAGE_URI") or "memory://",
        cache_url=text("CACHE_URL"),
        auth_rate_limit=text("AUTH_RATE_LIMIT") or "10 per minute",
        session_cookie_secure=_as_bool("SESSION_COOKIE_SECURE", raw.get("SESSION_COOKIE_SECURE") or False),
        job_lease_seconds=number("JOB_LEASE_SECONDS", 300),
        proxy_hops=number("PROXY_HOPS", 0),
    )


def is_setting(name: str) -> bool:
    return name in _FIELDS


def install(app: Flask, settings: Settings) -> None:
    """Make ``settings`` the app's: typed in ``app.extensions``, upper-case in ``app.config``."""
    global _last_installed
    app.extensions["settings"] = settings
    _last_installed = settings
    app.config.update(settings.as_config())
    app.config["REMEMBER_COOKIE_SECURE"] = settings.session_cookie_secure


def override(app: Flask, **changes: Any) -> Settings:
    """Change settings of a running app (tests), keeping the typed and upper-case views equal."""
    settings = dataclasses.replace(settings_of(app), **changes)
    install(app, settings)
    return settings


def settings_of(app: Flask) -> Settings:
    return app.extensions["settings"]


def current_settings() -> Settings:
    """The typed settings of the current app; outside an app context (a service called from a
    script or a test with the session alone), those of the app last created in this process."""
    if has_app_context():
        return settings_of(current_app)
    if _last_installed is None:
        raise RuntimeError("no app has been created in this process")
    return _last_installed
