"""A cluster as `make cluster` runs it: 3 replicas behind nginx, on the test database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.liveserver import LiveServer, free_port
from tests.helpers import CODE_KEYS, JWT_SECRET

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = 3
START_TIMEOUT_S = 120

# Settings from the caller's shell that would change what the cluster does.
_INHERITED = (
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_KEY_PREFIX",
    "APP_ENV",
    "APP_BASE_URL",
    "JWT_ALGORITHM",
    "JWT_PUBLIC_KEY",
    "JWT_DECODE_ISSUER",
    "JWT_DECODE_AUDIENCE",
    "MIGRATE_ON_START",
    "WEB_CONCURRENCY",
)


@dataclass
class Cluster:
    gateway: LiveServer
    replicas: list[LiveServer]
    state_file: Path
    data_dir: Path

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def log(self) -> str:
        return self.gateway.log()


def _pids_under(root: int) -> list[int]:
    """``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


@pytest.fixture(scope="module")
def cluster(database_url, engine):
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("nginx is not installed: `make nginx` (make test-gateway does it)")
    data_dir = Path(tempfile.mkdtemp(prefix="inv-gw-"))
    ports = [free_port() for _ in range(REPLICAS)]
    gateway_port = free_port()
    state_file = data_dir / "state.json"
    log_path = data_dir / "cluster.log"
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update(
        APP_DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        JWT_SECRET_KEY=JWT_SECRET,
        CODE_KEYS=CODE_KEYS,
        INVITE_LOOKUP_RATE_LIMIT="5/minute",
        JOIN_RATE_LIMIT="3/minute",
        CREATE_RATE_LIMIT="100000/minute",
        LOOKUP_FAILURE_LIMIT="1000000/minute",
        NETWORK_LOOKUP_FAILURE_LIMIT="1000000/minute",
        GUNICORN_THREADS="4",
        LOG_LEVEL="INFO",
    )
    argv = [sys.executable, "-m", "app.cluster", "--port", str(gateway_port)]
    argv += ["--replica-ports", ",".join(map(str, ports)), "--workers", "2"]
    argv += ["--state-file", str(state_file)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the cluster did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.2)
    gateway = LiveServer(gateway_port, log_path, proc)
    replicas = [LiveServer(port, log_path, proc) for port in ports]
    started = _pids_under(proc.pid)
    try:
        yield Cluster(gateway, replicas, state_file, data_dir)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        time.sleep(0.5)
        left = [pid for pid in started if Path(f"/proc/{pid}").exists()]
        shutil.rmtree(data_dir, ignore_errors=True)
        assert not left, f"processes left running after Ctrl-C: {left}"
