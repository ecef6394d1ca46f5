"""SIGTERM drains: the real gunicorn (several gthread workers, real PostgreSQL) takes
no new request, finishes the one it is in the middle of, and exits 0 within
gunicorn.conf.py's graceful_timeout.

The request in flight is a join held up in the database, not by a sleep in the
service: the test's own connection holds the invite's row lock, so the join's
UPDATE waits on it until the test commits.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.liveserver import HOST, ROOT, LiveServer, Reply
from tests.helpers import JWT_SECRET, make_token, scalar, serving

pytestmark = pytest.mark.slow

WORKERS = 3
GRACEFUL_TIMEOUT = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["graceful_timeout"]
# The join waits on the test's lock for a few seconds; the default statement
# timeout (5 s) would answer it 503 first. Still under graceful_timeout, so a
# lock the test never released ends the request before gunicorn kills the worker.
STATEMENT_TIMEOUT_MS = 15_000
# Bounds on what the server does after SIGTERM.
CLOSES_WITHIN = 3.0
# Once the last request is answered, nothing is left to wait for but a kept-alive
# connection's linger (2 s in gunicorn's gthread worker) and the embedded Redis.
EXITS_AFTER_LAST_ANSWER_WITHIN = 8.0
IDLE_EXITS_WITHIN = 5.0

IS_MEMBER = "SELECT count(*) FROM group_memberships WHERE group_id = :g AND user_id = :u"


# --- the server's processes and sockets, read from /proc ---------------------------


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the workers, the embedded Redis)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _workers(srv: LiveServer) -> list[int]:
    def is_gunicorn(pid: int) -> bool:
        try:
            return b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    return [pid for pid in _children(srv.proc.pid) if is_gunicorn(pid)]


def _listener_holders(srv: LiveServer) -> set[int]:
    """Which of the server's processes hold a listening socket on its port open."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == srv.port:  # LISTEN
                    inodes.add(f"socket:[{inode}]")
    holders = set()
    for pid in [srv.proc.pid, *_children(srv.proc.pid)]:
        with contextlib.suppress(OSError):  # a process that exited meanwhile
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        holders.add(pid)
    return holders


def _refused(port: int) -> bool:
    """Whether a new connection to ``port`` is refused (not taken, even into a backlog)."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def _answered(port: int, within: float) -> bool:
    """Whether a new connection gets an answer to GET /readyz within ``within`` seconds."""
    try:
        with socket.create_connection((HOST, port), timeout=within) as sock:
            sock.sendall(f"GET /readyz HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
            return bool(sock.recv(64))
    except (ConnectionRefusedError, ConnectionResetError, TimeoutError):
        return False


def _wait_until(condition: Callable[[], bool], within: float, what: str) -> float:
    """Poll ``condition`` until it holds; how long that took. Fails after ``within`` s."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < within, f"{what}: not within {within}s"
        time.sleep(0.05)
    return time.monotonic() - began


# --- a server, and a join held in flight ---------------------------------------------


@contextlib.contextmanager
def _server(database_url: str, log_path: Path) -> Iterator[LiveServer]:
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "GUNICORN_THREADS": "4",
        "DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
        "JOIN_RATE_LIMIT": "100000/minute",
        "CREATE_RATE_LIMIT": "100000/minute",
        "INVITE_LOOKUP_RATE_LIMIT": "100000/minute",
    }
    with serving(settings, log_path, workers=WORKERS) as srv:
        try:
            yield srv
        finally:
            # A test that failed half way: no graceful wait, kill what is left.
            if srv.proc.poll() is None:
                for pid in [*_children(srv.proc.pid), srv.proc.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                srv.proc.wait(timeout=10)


@dataclass
class HeldJoin:
    """A POST /api/v1/groups/join in flight, waiting on the test's row lock."""

    group_id: str
    joiner_id: uuid.UUID
    holder_pid: int
    thread: threading.Thread
    release: Callable[[], None]
    outcome: dict[str, Reply | BaseException] = field(default_factory=dict)


def _blocked_by(engine: sa.Engine, holder_pid: int) -> int:
    """How many backends wait on a lock that ``holder_pid`` holds."""
    return scalar(
        engine,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND :holder = ANY(pg_blocking_pids(pid))",
        holder=holder_pid,
    )


@contextlib.contextmanager
def _join_held_in_database(srv: LiveServer, engine: sa.Engine) -> Iterator[HeldJoin]:
    owner = make_token(str(uuid.uuid4()), name="Owner")
    group = srv.call("POST", "/api/v1/groups", {"name": "Draining"}, owner)
    assert group.status == 201, group
    path = f"/api/v1/groups/{group.body['id']}/invites"
    invite = srv.call("POST", path, {"max_uses": 5}, owner)
    assert invite.status == 201, invite
    joiner_id = uuid.uuid4()
    joiner = make_token(str(joiner_id), name="Joiner")

    holder = engine.connect()
    lock = holder.begin()
    thread = None
    try:
        holder.execute(
            sa.text("SELECT 1 FROM group_invites WHERE id = :id FOR UPDATE"),
            {"id": invite.body["id"]},
        )
        holder_pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        outcome: dict[str, Reply | BaseException] = {}

        def join() -> None:
            try:
                outcome["reply"] = srv.call(
                    "POST", "/api/v1/groups/join", {"code": invite.body["code"]}, joiner
                )
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                outcome["error"] = exc

        thread = threading.Thread(target=join, daemon=True)
        thread.start()
        _wait_until(lambda: _blocked_by(engine, holder_pid) == 1, 10, "the join waits on the lock")
        yield HeldJoin(group.body["id"], joiner_id, holder_pid, thread, lock.commit, outcome)
    finally:
        if lock.is_active:
            lock.rollback()
        holder.close()
        if thread is not None:
            thread.join(timeout=STATEMENT_TIMEOUT_MS / 1000)


# --- the tests ---------------------------------------------------------------------


def test_sigterm_finishes_the_request_in_flight_then_exits_zero(database_url, engine, tmp_path):
    with (
        _server(database_url, tmp_path / "server.log") as srv,
        _join_held_in_database(srv, engine) as held,
    ):
        srv.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        # The master lets go of the port at once; the workers with nothing to do leave.
        _wait_until(
            lambda: srv.proc.pid not in _listener_holders(srv),
            CLOSES_WITHIN,
            "the master closes its listening socket",
        )
        _wait_until(lambda: len(_workers(srv)) == 1, CLOSES_WITHIN, "idle workers exit")
        # No new request is served while the last one drains.
        assert not _answered(srv.port, within=1.0), "a new request was served after SIGTERM"
        # The join is still waiting, and the master waits for it.
        assert held.thread.is_alive(), held.outcome
        assert _blocked_by(engine, held.holder_pid) == 1
        time.sleep(1)
        assert srv.proc.poll() is None, "the master exited with a request in flight"
        assert held.thread.is_alive(), held.outcome
        assert scalar(engine, IS_MEMBER, g=held.group_id, u=held.joiner_id) == 0

        held.release()
        held.thread.join(timeout=GRACEFUL_TIMEOUT)
        assert not held.thread.is_alive(), "the join was never answered"
        answered = time.monotonic()
        assert "error" not in held.outcome, held.outcome
        reply = held.outcome["reply"]
        assert reply.status == 200, reply
        assert reply.body["group"]["id"] == held.group_id
        assert scalar(engine, IS_MEMBER, g=held.group_id, u=held.joiner_id) == 1

        left = min(
            GRACEFUL_TIMEOUT - (answered - signalled),
            EXITS_AFTER_LAST_ANSWER_WITHIN,
        )
        assert left > 0, "the join was answered only after graceful_timeout"
        assert srv.proc.wait(timeout=left) == 0, srv.log()
        log = srv.log()
        assert "SIGKILL" not in log, log  # no worker outlived graceful_timeout
        assert "Shutting down: Master" in log, log
        assert _refused(srv.port)


def test_new_connections_are_refused_while_a_request_drains(database_url, engine, tmp_path):
    with (
        _server(database_url, tmp_path / "server.log") as srv,
        _join_held_in_database(srv, engine) as held,
    ):
        srv.proc.send_signal(signal.SIGTERM)
        _wait_until(lambda: _refused(srv.port), CLOSES_WITHIN, "new connections refused")
        assert held.thread.is_alive(), held.outcome
        held.release()
        held.thread.join(timeout=GRACEFUL_TIMEOUT)
        assert held.outcome["reply"].status == 200, held.outcome
        assert srv.proc.wait(timeout=GRACEFUL_TIMEOUT) == 0, srv.log()


def test_an_idle_server_exits_promptly_on_sigterm(database_url, engine, tmp_path):
    with _server(database_url, tmp_path / "server.log") as srv:
        assert srv.call("GET", "/readyz").status == 200
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=IDLE_EXITS_WITHIN) == 0, srv.log()
        assert "SIGKILL" not in srv.log()
        assert _refused(srv.port)
