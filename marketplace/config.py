"""Configuration from the environment (and a ``.env`` file), as DESIGN.md section 6 lists it."""

import os
import secrets
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def from_environment() -> dict:
    """Read settings once at start-up; tests pass overrides to ``create_app`` instead."""
    load_dotenv(ROOT / ".env")
    instance = Path(os.environ.get("INSTANCE_PATH", ROOT / "instance"))
    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{instance / 'marketplace.db'}"),
        # Without SECRET_KEY a random one is made per process: sessions do not survive a
        # restart, which is the safe failure for a forgotten production setting.
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_hex(32),
        "PORT": _env_int("PORT", 5000),
        "BASE_URL": os.environ.get("BASE_URL", f"http://127.0.0.1:{_env_int('PORT', 5000)}"),
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", ""),
        "STRIPE_EMULATOR_PORT": _env_int("STRIPE_EMULATOR_PORT", 12111),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        # A call slower than this counts as "outcome unknown" and is retried with the same key.
        "STRIPE_TIMEOUT_SECONDS": _env_int("STRIPE_TIMEOUT_SECONDS", 20),
        "MAIL_URL": os.environ.get("MAIL_URL", ""),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Referral Marketplace <noreply@marketplace.local>"),
        "PLATFORM_FEE_BPS": _env_int("PLATFORM_FEE_BPS", 1000),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "AUTH_RATE_LIMIT": os.environ.get("AUTH_RATE_LIMIT", "10 per minute"),
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "") == "1",
        # How long a worker holds a job before another may take it over (it may have died).
        "JOB_LEASE_SECONDS": _env_int("JOB_LEASE_SECONDS", 300),
    }
