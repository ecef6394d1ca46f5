"""The embedded PostgreSQL outlives a gunicorn master killed with SIGKILL, and the
next `make run` takes it over and stops it on exit (app.local.forget_dead_pgserver_handles):
a crash never leaves a server running for good."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from app.liveserver import LiveServer, start
from app.local import pgserver_binary

pytestmark = pytest.mark.slow


def _postmaster(pgdata: Path) -> psutil.Process | None:
    """The running postgres that ``<pgdata>/postmaster.pid`` names, if any."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        process = psutil.Process(pid)
        if process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except (OSError, IndexError, ValueError, psutil.Error):
        pass
    return None


def _stopped_within(pgdata: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _postmaster(pgdata) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _stop_postgres(pgdata: Path) -> None:
    """Stop whatever the test left running there, as pgserver's own cleanup would
    (it runs postgres as the user "pgserver" when we are root)."""
    if _postmaster(pgdata) is None:
        return
    subprocess.run(
        [str(pgserver_binary("pg_ctl")), "-D", str(pgdata), "stop", "-m", "immediate", "-w"],
        user="pgserver" if os.geteuid() == 0 else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )


def test_a_killed_master_leaves_the_embedded_postgres_to_the_next_run(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "RATELIMIT_STORAGE_URI", "TEST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    pgdata = tmp_path / "pg"
    settings = {"APP_DATA_DIR": str(tmp_path), "MIGRATE_ON_START": "1"}
    servers: list[LiveServer] = []
    orphans: list[psutil.Process] = []
    try:
        first = start(settings, tmp_path / "first.log", workers=1)
        servers.append(first)
        assert first.call("GET", "/healthz").status == 200
        assert "using the embedded PostgreSQL" in first.log()
        # The development key is where APP_DATA_DIR says, and the warning says so.
        assert f"sealed with the development key in {tmp_path}" in first.log()
        assert (tmp_path / "dev-code-keys").exists()
        orphans = psutil.Process(first.proc.pid).children(recursive=True)
        first.proc.kill()
        first.proc.wait(timeout=10)
        _, left = psutil.wait_procs(orphans, timeout=30)
        assert not left, f"the killed master's children outlived it: {left}"

        postgres = _postmaster(pgdata)
        assert postgres is not None, "the embedded PostgreSQL died with its master"
        handles = json.loads((pgdata / ".handle_pids.json").read_text())
        assert first.proc.pid in handles  # what used to keep every later run from stopping it

        second = start(settings, tmp_path / "second.log", workers=1)
        servers.append(second)
        assert second.call("GET", "/healthz").status == 200
        assert _postmaster(pgdata) == postgres  # took over the running server
        second.stop()
        assert second.proc.returncode == 0, second.log()
        assert _stopped_within(pgdata, 5), f"the embedded PostgreSQL leaked:\n{second.log()}"
        assert "forgetting handles of dead processes" in second.log()
    finally:
        for server in servers:
            server.stop()
        for process in orphans:
            with contextlib.suppress(psutil.Error):
                process.kill()
        _stop_postgres(pgdata)
