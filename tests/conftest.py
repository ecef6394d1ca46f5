"""Shared fixtures: one real PostgreSQL per run, migrated by the project's runner.

With TEST_DATABASE_URL set, that database is used (and migrated); otherwise a
throwaway embedded PostgreSQL (pgserver) is started in a temporary directory.
Every test creates its own users and groups, so tests never share data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.code_keys import CodeKeyring
from app.db import create_engine
from app.migrate import data_steps, upgrade
from tests.helpers import CODE_KEYS, JWT_SECRET, ApiDriver, User


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
    upgrade(engine, steps=data_steps(CodeKeyring.parse(CODE_KEYS)))
    yield engine
    engine.dispose()


BASE_CONFIG = {
    "JWT_SECRET_KEY": JWT_SECRET,
    "CODE_KEYS": CODE_KEYS,
    "APP_BASE_URL": "https://invites.example",
    "INVITE_LOOKUP_RATE_LIMIT": "100000/minute",
    "JOIN_RATE_LIMIT": "100000/minute",
    "CREATE_RATE_LIMIT": "100000/minute",
    "LOOKUP_FAILURE_LIMIT": "100000/minute",
    "NETWORK_LOOKUP_FAILURE_LIMIT": "100000/minute",
    "RATELIMIT_STORAGE_URI": "memory://",
}


# Every app the tests built, for _fresh_rate_limits.
_APPS: list = []


@pytest.fixture(scope="session")
def make_app(database_url, engine):
    """Build an app against the test database with config overrides."""
    apps = []

    def factory(**overrides):
        app = create_app({"DATABASE_URL": database_url, **BASE_CONFIG, **overrides})
        app.config["TESTING"] = True
        apps.append(app)
        _APPS.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["db_engine"].dispose()


@pytest.fixture(scope="session")
def app(make_app):
    return make_app()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Apps outlive tests (the session's ``app``): no test inherits another's hits.
    for app in _APPS:
        app.extensions["limits"].store.reset()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client, engine):
    return ApiDriver(client, engine)


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


# --- a private schema: for tests that create tables or break constraints ----------


def _engine_in_schema(url: str, schema: str, **kwargs) -> sa.Engine:
    """The app's engine (same options, pool and timeouts) with ``schema`` as search_path."""
    engine = create_engine(url, pool_size=1, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _use_schema(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET search_path TO "{schema}"')
        # A SET inside a transaction that is later rolled back would be undone.
        dbapi_connection.commit()

    return engine


@pytest.fixture
def schema(database_url):
    """A fresh, empty schema, dropped with everything in it afterwards."""
    name = f"mig_{uuid.uuid4().hex[:16]}"
    admin = create_engine(database_url, pool_size=1)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    yield name
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture
def make_engine(database_url, schema):
    """Engines pointed at this test's schema, disposed of afterwards."""
    engines: list[sa.Engine] = []

    def factory(**kwargs) -> sa.Engine:
        engine = _engine_in_schema(database_url, schema, **kwargs)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.dispose()


@pytest.fixture
def db(make_engine):
    """An engine whose connections see only this test's fresh schema."""
    return make_engine()


@pytest.fixture
def migrations(tmp_path):
    """A migrations directory; ``migrations.write(name, sql)`` adds a file."""
    directory = tmp_path / "migrations"
    directory.mkdir()

    class Dir:
        path = directory

        @staticmethod
        def write(name: str, sql: str) -> Path:
            file = directory / name
            file.write_text(sql, encoding="utf-8")
            return file

    return Dir
