"""The two proofs that no usable code reaches PostgreSQL: its own log, with every
statement and every error logged, and a dump of every table.

A private PostgreSQL is set to log every statement with its literals
(``log_min_duration_statement = 0``) and the statement of every error
(``log_min_error_statement = error``). The whole flow runs against it through
the app, refusals and a statement timeout included; then the server's log and
``pg_dump`` of the data are searched for every code issued, in every spelling
a person could type.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.code_keys import CodeKeyring
from app.db import create_engine
from app.local import pgserver_binary, start_embedded_postgres
from app.migrate import data_steps, upgrade
from tests.conftest import BASE_CONFIG
from tests.helpers import CODE_KEYS, make_token

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def logged_postgres():
    workdir = Path(tempfile.mkdtemp(prefix="invites-pglog-"))
    workdir.chmod(0o755)
    server = start_embedded_postgres(workdir / "pg", cleanup_mode="stop")
    url = server.get_uri()
    engine = create_engine(url, pool_size=1)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for setting, value in (
            ("log_min_duration_statement", "0"),
            ("log_min_error_statement", "error"),
            ("log_parameter_max_length", "-1"),
            ("log_parameter_max_length_on_error", "-1"),
        ):
            conn.execute(sa.text(f"ALTER SYSTEM SET {setting} = '{value}'"))
        conn.execute(sa.text("SELECT pg_reload_conf()"))
    upgrade(engine, steps=data_steps(CodeKeyring.parse(CODE_KEYS)))
    engine.dispose()
    try:
        yield url, workdir / "pg"
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def _spellings(code: str) -> set[str]:
    compact = code.replace("-", "")
    return {code, code.lower(), compact, compact.lower(), code.replace("-", " ")}


def test_no_code_in_the_server_log_nor_in_a_dump(logged_postgres):
    url, pgdata = logged_postgres
    app = create_app({**BASE_CONFIG, "DATABASE_URL": url, "DB_STATEMENT_TIMEOUT_MS": 500})
    client = app.test_client()

    def as_user(name: str) -> dict:
        return {"Authorization": f"Bearer {make_token(name=name)}"}

    owner, joiner = as_user("Owner"), as_user("Joiner")
    group = client.post("/api/v1/groups", json={"name": "Logged"}, headers=owner).get_json()
    path = f"/api/v1/groups/{group['id']}/invites"
    codes = []
    keyed = {**owner, "Idempotency-Key": "logged-create"}
    for body, headers in (({"max_uses": 2}, keyed), ({"max_uses": 1}, owner), ({}, owner)):
        created = client.post(path, json=body, headers=headers)
        assert created.status_code == 201
        codes.append(created.get_json()["code"])
    assert client.post(path, json={"max_uses": 2}, headers=keyed).status_code == 201  # replay
    live, single, revoked = codes
    # Previews, joins, refusals and a revoke: every statement the service has.
    assert client.get(f"/api/v1/invites/{live.lower().replace('-', '')}").status_code == 200
    assert (
        client.post("/api/v1/groups/join", json={"code": live}, headers=joiner).status_code == 200
    )
    again = client.post("/api/v1/groups/join", json={"code": live}, headers=joiner)
    assert again.status_code == 409
    assert (
        client.post("/api/v1/groups/join", json={"code": single}, headers=as_user("A")).status_code
        == 200
    )
    assert (
        client.post("/api/v1/groups/join", json={"code": single}, headers=as_user("B")).status_code
        == 410
    )
    invite_id = client.get(path, headers=owner).get_json()["data"][0]["id"]
    assert client.get(f"{path}/{invite_id}", headers=owner).status_code == 200
    revoked_id = next(
        i["id"] for i in client.get(path, headers=owner).get_json()["data"] if i["code"] == revoked
    )
    assert client.delete(f"{path}/{revoked_id}", headers=owner).status_code == 204
    assert client.get(f"/api/v1/invites/{revoked}").status_code == 404

    # A statement timeout mid-join: another session holds the invite's row.
    engine = create_engine(url, pool_size=1)
    held = threading.Event()
    release = threading.Event()

    def hold_the_row():
        with engine.begin() as conn:
            conn.execute(
                sa.text("SELECT id FROM group_invites WHERE group_id = :g FOR UPDATE"),
                {"g": group["id"]},
            )
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    assert held.wait(10)
    timed_out = client.post("/api/v1/groups/join", json={"code": live}, headers=as_user("Late"))
    release.set()
    holder.join()
    engine.dispose()
    assert timed_out.status_code == 503
    app.extensions["db_engine"].dispose()
    time.sleep(0.5)  # the server writes its last lines

    log = (pgdata / "log").read_text(errors="replace")
    assert "statement timeout" in log  # the error and its statement were logged
    assert "group_invites" in log
    assert "duration:" in log
    dump = subprocess.run(
        [str(pgserver_binary("pg_dump")), "--data-only", "--dbname", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "group_invites" in dump
    assert "idempotency_keys" in dump
    for code in codes:
        for spelling in _spellings(code):
            assert spelling not in log, f"{spelling} in PostgreSQL's log"
            assert spelling not in dump, f"{spelling} in a dump of the data"
