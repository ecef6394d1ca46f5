"""A database outage is logged once when it starts and once when it ends; the
requests in between are 503s, each on its own request line, without a traceback.

The test starts a private PostgreSQL, stops it under the app and starts it
again on the same data directory: real failures, not mocked ones.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.local import start_embedded_postgres
from app.migrate import upgrade
from tests.conftest import BASE_CONFIG
from tests.helpers import make_token

pytestmark = pytest.mark.slow


@pytest.fixture
def own_postgres():
    workdir = Path(tempfile.mkdtemp(prefix="invites-outage-"))
    workdir.chmod(0o755)
    pgdata = workdir / "pg"
    servers = [start_embedded_postgres(pgdata, cleanup_mode="stop")]

    class Control:
        url = servers[0].get_uri()

        @staticmethod
        def stop():
            servers[-1].cleanup()

        @staticmethod
        def start():
            servers.append(start_embedded_postgres(pgdata, cleanup_mode="stop"))

    try:
        yield Control
    finally:
        servers[-1].cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def test_an_outage_is_two_log_lines_and_a_503_per_request(own_postgres, caplog):
    app = create_app({**BASE_CONFIG, "DATABASE_URL": own_postgres.url})
    upgrade(app.extensions["db_engine"])
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_token()}"}

    def create() -> int:
        return client.post("/api/v1/groups", json={"name": "G"}, headers=headers).status_code

    with caplog.at_level(logging.INFO):
        assert create() == 201
        own_postgres.stop()
        during = [create() for _ in range(3)] + [client.get("/readyz").status_code]
        own_postgres.start()
        assert create() == 201
        assert create() == 201
    app.extensions["db_engine"].dispose()

    assert during == [503, 503, 503, 503]
    messages = [r.getMessage() for r in caplog.records]
    went = [m for m in messages if m.startswith("database unreachable (postgresql ")]
    back = [m for m in messages if m.startswith("database reachable again (postgresql ")]
    assert len(went) == 1, messages
    assert "OperationalError" in went[0]
    assert "answering 503 until it returns" in went[0]
    assert len(back) == 1, messages
    request_lines = [r.getMessage() for r in caplog.records if r.name == "app.request"]
    failed = [line for line in request_lines if " 503 " in line]
    assert len(failed) == 4
    assert all(line.endswith(" error=service_unavailable") for line in failed)
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"


def test_a_pooled_connection_the_server_dropped_while_idle_is_replaced(
    make_app, api, engine, monkeypatch
):
    from app import db

    app = make_app(DB_POOL_SIZE=1)
    pool_engine = app.extensions["db_engine"]
    with pool_engine.connect() as conn:  # the pool's one connection, then back to the pool
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    with engine.connect() as admin:
        assert admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # it has been idle long enough
    response = app.test_client().post(
        "/api/v1/groups", json={"name": "After a restart"}, headers=api.user("U").headers
    )
    assert response.status_code == 201, response.get_json()
    with pool_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
