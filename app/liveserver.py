"""A real gunicorn serving the app in a subprocess, and a tiny HTTP client.

For the tests that need a live server and for bench/run.py: real processes
and real sockets, which the Flask test client cannot give.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

# Settings from the caller's shell that would change what the server does.
_INHERITED_SETTINGS = (
    "MIGRATE_ON_START",
    "CODE_KEYS",
    "APP_ENV",
    "JWT_ALGORITHM",
    "JWT_PUBLIC_KEY",
    "JWT_DECODE_ISSUER",
    "JWT_DECODE_AUDIENCE",
    "TRUSTED_PROXY_COUNT",
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_KEY_PREFIX",
    "APP_DATA_DIR",
    "LOG_FORMAT",
    "METRICS_ALLOW",
    "PROMETHEUS_MULTIPROC_DIR",
)


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: object
    headers: dict[str, str] = field(default_factory=dict, compare=False)
    text: str = field(default="", compare=False, repr=False)


def send(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: object = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    sent = {"Accept": "application/json", **(headers or {})}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=payload, headers=sent)
    response = conn.getresponse()
    raw = response.read()
    content_type = response.getheader("Content-Type", "")
    parsed = json.loads(raw) if raw and content_type.startswith("application/json") else None
    text = raw.decode("utf-8", "replace")
    return Reply(response.status, content_type, parsed, dict(response.getheaders()), text)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ServerFailed(RuntimeError):
    """gunicorn exited or never became ready; the message carries its log."""


@dataclass
class LiveServer:
    port: int
    log_path: Path
    proc: subprocess.Popen
    # Where the master keeps what it starts itself (the embedded Redis), removed on stop.
    data_dir: Path | None = None

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request on its own connection."""
        conn = self.connection()
        try:
            return send(conn, method, path, body, token, headers)
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def start(
    settings: dict[str, str], log_path: Path, *, workers: int, startup_timeout: float = 60.0
) -> LiveServer:
    """Start gunicorn with ``settings`` on a free port; return once every worker is up."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_SETTINGS}
    env.update(settings)
    env.update(HOST=HOST, PORT=str(port), WEB_CONCURRENCY=str(workers))
    # A short private path: a unix socket's path must fit in 107 bytes.
    data_dir = None if "APP_DATA_DIR" in settings else Path(tempfile.mkdtemp(prefix="invites-"))
    if data_dir is not None:
        env["APP_DATA_DIR"] = str(data_dir)
    env.setdefault("LOG_LEVEL", "INFO")  # the "Worker serving" lines say when all are up
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(port, log_path, proc, data_dir)
    deadline = time.monotonic() + startup_timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            server.stop()
            raise ServerFailed(f"gunicorn exited with {proc.returncode}:\n{server.log()}")
        conn = server.connection(timeout=2)
        try:
            status = send(conn, "GET", "/readyz").status
            # Each worker logs this once its app is loaded (gunicorn.conf.py).
            booted = server.log().count("Worker serving")
            if status == 200 and booted >= workers:
                return server
            last = f"HTTP {status}, {booted} of {workers} workers booted"
        except (http.client.HTTPException, OSError) as exc:
            last = repr(exc)
        finally:
            conn.close()
        time.sleep(0.1)
    server.stop()
    raise ServerFailed(f"gunicorn not ready in {startup_timeout:.0f}s ({last}):\n{server.log()}")
