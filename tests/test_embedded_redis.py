"""The embedded Redis: started by the gunicorn master when RATELIMIT_STORAGE_URI is
unset, stopped with it, never left running after a crash; and memory:// refused
where it cannot count for the whole service."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from app.liveserver import ServerFailed, start
from tests.helpers import CODE_KEYS, JWT_SECRET, serving

pytestmark = pytest.mark.slow


def _redis_pids(data_dir: Path) -> list[int]:
    """redis-server processes serving the socket under ``data_dir``."""
    socket = str(data_dir / "redis" / "redis.sock")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "redis-server" in cmdline and socket in cmdline:
            pids.append(int(entry.name))
    return pids


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def settings(database_url, engine) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "JWT_SECRET_KEY": JWT_SECRET, "CODE_KEYS": CODE_KEYS}


def test_the_master_starts_one_and_stops_it_on_exit(settings, tmp_path):
    with serving(settings, tmp_path / "server.log", workers=2) as server:
        pids = _redis_pids(server.data_dir)
        assert len(pids) == 1
        assert "using the embedded Redis" in server.log()
        assert server.call("GET", "/api/v1/invites/ZZZ-ZZZ-ZZZ").status == 404
        data_dir = server.data_dir
    assert _gone_within(pids, 5)
    assert not _redis_pids(data_dir)


def test_a_killed_master_leaves_no_redis_running(settings, tmp_path):
    server = start(settings, tmp_path / "server.log", workers=1)
    try:
        pids = _redis_pids(server.data_dir)
        assert len(pids) == 1
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        assert _gone_within(pids, 5), "the embedded Redis outlived its master"
    finally:
        server.stop()


def test_memory_store_with_several_workers_does_not_start(settings, tmp_path):
    with pytest.raises(ServerFailed) as failed:
        start({**settings, "RATELIMIT_STORAGE_URI": "memory://"}, tmp_path / "log", workers=3)
    assert "3 times looser" in str(failed.value)
    assert "Traceback" not in str(failed.value)


def test_memory_store_with_one_worker_is_accepted(settings, tmp_path):
    memory = {**settings, "RATELIMIT_STORAGE_URI": "memory://"}
    with serving(memory, tmp_path / "server.log", workers=1) as server:
        assert server.call("GET", "/healthz").status == 200
        assert not _redis_pids(server.data_dir)
