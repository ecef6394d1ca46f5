"""Shared fixtures: one real PostgreSQL per run, migrated by the project's runner.

With TEST_DATABASE_URL set, that database is used (and migrated); otherwise a
throwaway embedded PostgreSQL (pgserver) is started in a temporary directory.
Every test creates its own users and groups, so tests never share data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.db import create_engine
from app.limiter import limiter
from app.migrate import upgrade
from tests.helpers import JWT_SECRET, Api, User


@pytest.fixture(scope="session")
def database_url():
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        yield url
        return
    from app.local import start_embedded_postgres

    workdir = Path(tempfile.mkdtemp(prefix="invites-test-"))
    workdir.chmod(0o755)
    server = start_embedded_postgres(workdir / "pg", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def engine(database_url):
    engine = create_engine(database_url, pool_size=2)
    upgrade(engine)
    yield engine
    engine.dispose()


BASE_CONFIG = {
    "JWT_SECRET_KEY": JWT_SECRET,
    "APP_BASE_URL": "https://invites.example",
    "INVITE_LOOKUP_RATE_LIMIT": "100000/minute",
    "JOIN_RATE_LIMIT": "100000/minute",
    "RATELIMIT_STORAGE_URI": "memory://",
}


@pytest.fixture(scope="session")
def make_app(database_url, engine):
    """Build an app against the test database with config overrides."""
    apps = []

    def factory(**overrides):
        app = create_app({"DATABASE_URL": database_url, **BASE_CONFIG, **overrides})
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["db_engine"].dispose()


@pytest.fixture(scope="session")
def app(make_app):
    return make_app()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Limits live in the shared Limiter's storage; no test inherits another's hits.
    # (Before any app has initialised the limiter there is nothing to reset.)
    with contextlib.suppress(AttributeError, AssertionError):
        limiter.reset()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client, engine):
    return Api(client, engine)


@pytest.fixture
def owner(api) -> User:
    return api.user("Olivia Owner")


@pytest.fixture
def group(api, owner) -> dict:
    return api.create_group(owner, name=f"Family {uuid.uuid4().hex[:6]}")


@pytest.fixture
def sql(engine):
    """Run one statement in its own transaction and return the result rows."""

    def run(statement: str, **params):
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return result.mappings().all() if result.returns_rows else result.rowcount

    return run
