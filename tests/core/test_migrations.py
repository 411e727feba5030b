"""Alembic migrations are how the schema is made: they reach head on an empty database and
match the models exactly (``alembic check`` finds no drift), on SQLite and on PostgreSQL."""

import os
import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from marketplace.db import normalize_url
from marketplace.models import metadata

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture
def empty_database_url(tmp_path):
    """An empty database of the engine under test: a new SQLite file, or a new PostgreSQL database."""
    test_url = os.environ.get("TEST_DATABASE_URL", "")
    if not test_url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"mp_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(test_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = test_url.rpartition("/")
    yield f"{base}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


# The problems' trigram indexes exist on PostgreSQL only (``problems.models``); SQLite cannot
# reflect expression indexes, so Alembic skips comparing them there, and compares them on PostgreSQL.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_upgrade_to_head_builds_every_table_and_check_finds_no_drift(empty_database_url):
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    engine = create_engine(normalize_url(empty_database_url))
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(metadata.tables) <= tables
    command.check(config)  # Raises if the models and the migrations disagree.


def test_downgrade_to_base_and_upgrade_again(empty_database_url):
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    engine = create_engine(normalize_url(empty_database_url))
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    command.upgrade(config, "head")
