"""A start that fails whole and early: gunicorn's master checks the configuration
before it migrates or binds, says every problem at once, one line each, and
exits without a traceback; an unreachable database is one line with a hint."""

from __future__ import annotations

import os
import re
import uuid

import pytest
import sqlalchemy as sa

from app.db import create_engine
from app.liveserver import ServerFailed, start
from app.startup import configuration_problems
from tests.helpers import CODE_KEYS, JWT_SECRET

pytestmark = pytest.mark.slow


def _failed_start(settings: dict, tmp_path) -> tuple[int, str]:
    with pytest.raises(ServerFailed) as failed:
        start(settings, tmp_path / "server.log", workers=2, startup_timeout=60)
    status = int(re.match(r"gunicorn exited with (-?\d+)", str(failed.value))[1])
    return status, (tmp_path / "server.log").read_text()


@pytest.fixture
def empty_database(database_url):
    """A database nothing has touched, dropped afterwards."""
    name = f"startup_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url, pool_size=1)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(database_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_bad_production_configuration_is_refused_whole_before_anything(empty_database, tmp_path):
    status, log = _failed_start(
        {
            "APP_ENV": "production",
            "DATABASE_URL": empty_database,
            "CODE_KEYS": CODE_KEYS,
            "MIGRATE_ON_START": "1",
            # No JWT key, no APP_BASE_URL, no RATELIMIT_STORAGE_URI.
        },
        tmp_path,
    )
    assert status == os.EX_CONFIG
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 4, log
    assert "JWT_SECRET_KEY is required" in errors[0]
    assert "RATELIMIT_STORAGE_URI is required in production" in errors[1]
    assert "APP_BASE_URL is required in production" in errors[2]
    assert "not started: 3 configuration problem(s)" in errors[3]
    for never in ("Traceback", "Listening at", "Booting worker", "migrations:"):
        assert never not in log, never
    engine = create_engine(empty_database, pool_size=1)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('schema_migrations')")).scalar() is None
    finally:
        engine.dispose()


def test_an_unreachable_database_is_one_line_with_a_hint(tmp_path):
    status, log = _failed_start(
        {
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/invites",
            "JWT_SECRET_KEY": JWT_SECRET,
            "CODE_KEYS": CODE_KEYS,
            "MIGRATE_ON_START": "1",
        },
        tmp_path,
    )
    assert status == os.EX_UNAVAILABLE
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert "cannot reach the database at 127.0.0.1:1 (database 'invites'): " in errors[0]
    assert "Connection refused" in errors[0]
    assert "check that PostgreSQL is running there" in errors[0]
    assert "Traceback" not in log
    assert "Listening at" not in log


def test_every_problem_is_named_at_once():
    problems = configuration_problems(
        {
            "MAX_ACTIVE_INVITES_PER_GROUP": "many",
            "JOIN_RATE_LIMIT": "lots",
            "LOG_FORMAT": "xml",
            "METRICS_ALLOW": "the office",
            "RATELIMIT_STORAGE_URI": "memory://",
        },
        workers=4,
    )
    assert len(problems) == 5, problems
    for expected in (
        "MAX_ACTIVE_INVITES_PER_GROUP must be an integer",
        "JOIN_RATE_LIMIT is not a rate limit",
        "LOG_FORMAT must be text or json",
        "METRICS_ALLOW must list addresses or networks",
        "RATELIMIT_STORAGE_URI=memory:// counts in each process",
    ):
        assert sum(expected in p for p in problems) == 1, (expected, problems)
    assert all("\n" not in p for p in problems)


def test_a_development_start_needs_nothing_configured():
    assert configuration_problems({}, workers=4) == []
