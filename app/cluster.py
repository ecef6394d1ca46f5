"""``make cluster``: replicas of the service behind nginx, in the foreground.

N gunicorn replicas (``--replicas``, default 3) share one PostgreSQL and one
Redis (the embedded ones under .data/, or DATABASE_URL and
RATELIMIT_STORAGE_URI), each with TRUSTED_PROXY_COUNT=1 behind nginx on
127.0.0.1:8080, configured from deploy/nginx/group-invites.conf. Every
process writes to this one terminal, each line tagged with its source and
redacted; a replica that dies is started again; Ctrl-C stops everything this
started. ``--state-file`` writes the ports and pids once all answer (tests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from app.db import create_engine
from app.local import (
    DATA_DIR,
    dev_code_keys,
    dev_jwt_secret,
    die_with_parent,
    ensure_database_url,
    ensure_limit_store_url,
)
from app.logs import redact
from app.migrate import data_steps, upgrade

ROOT = Path(__file__).resolve().parent.parent
NGINX_SITE = ROOT / "deploy" / "nginx" / "group-invites.conf"
READY_TIMEOUT_S = 60
RESTART_DELAY_S = 1.0

_print_lock = threading.Lock()


def say(source: str, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{source:<10} | {redact(line.rstrip())}\n")
        sys.stdout.flush()


def _pump(source: str, stream) -> None:
    for raw in iter(stream.readline, b""):
        say(source, raw.decode(errors="replace"))
    stream.close()


class Child:
    """One supervised process; its output goes to the shared stream."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.name, self.argv, self.env = name, argv, env
        self.proc: subprocess.Popen | None = None
        self.stopping = False

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own argv
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),  # a killed cluster leaves nothing behind
        )
        threading.Thread(target=_pump, args=(self.name, self.proc.stdout), daemon=True).start()

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 25) -> None:
        self.stopping = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        raise SystemExit("make cluster: nginx is not installed; `make nginx` installs Debian's")
    return found


def write_nginx_config(workdir: Path, port: int, replica_ports: list[int]) -> Path:
    """The site config with this cluster's addresses, and a main config around it."""
    servers = "\n".join(
        f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in replica_ports
    )
    site = NGINX_SITE.read_text()
    site = site.replace("@UPSTREAM_SERVERS@", servers).replace("@LISTEN@", f"127.0.0.1:{port}")
    (workdir / "group-invites.conf").write_text(site)
    temp_dirs = {
        name: workdir / "tmp" / name for name in ("body", "proxy", "fcgi", "uwsgi", "scgi")
    }
    user = ""
    for directory in temp_dirs.values():
        directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # workers drop to nobody; let them write their temp files
        nobody = pwd.getpwnam("nobody")
        user = f"user nobody {'nogroup' if _group_exists('nogroup') else 'nobody'};"
        for directory in temp_dirs.values():
            os.chown(directory, nobody.pw_uid, nobody.pw_gid)
    main = f"""{user}
worker_processes auto;
pid {workdir / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {temp_dirs["body"]};
    proxy_temp_path {temp_dirs["proxy"]};
    fastcgi_temp_path {temp_dirs["fcgi"]};
    uwsgi_temp_path {temp_dirs["uwsgi"]};
    scgi_temp_path {temp_dirs["scgi"]};
    include {workdir / "group-invites.conf"};
}}
"""
    config = workdir / "nginx.conf"
    config.write_text(main)
    return config


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cluster", description=__doc__)
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS", "3")))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8080")))
    parser.add_argument(
        "--replica-ports", default="", help="comma-separated; default 8001, 8002, ..."
    )
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args(argv)
    ports = (
        [int(p) for p in args.replica_ports.split(",")]
        if args.replica_ports
        else [8001 + i for i in range(args.replicas)]
    )
    nginx = nginx_binary()

    database_url, embedded_pg = ensure_database_url()
    store, embedded_redis = ensure_limit_store_url()
    secret = os.environ.get("JWT_SECRET_KEY")
    if not secret and not os.environ.get("JWT_PUBLIC_KEY"):
        secret = dev_jwt_secret(create=True)
    code_keys = os.environ.get("CODE_KEYS") or dev_code_keys(create=True)
    if code_keys:
        os.environ["CODE_KEYS"] = code_keys
    engine = create_engine(database_url, pool_size=1)
    try:
        applied = upgrade(engine, steps=data_steps())
    finally:
        engine.dispose()
    say("cluster", f"migrations: {', '.join(applied) or 'up to date'}")

    workdir = DATA_DIR / "cluster"
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_nginx_config(workdir, args.port, ports)
    base_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RATELIMIT_STORAGE_URI": store,
        "TRUSTED_PROXY_COUNT": "1",
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": str(args.workers),
        "APP_BASE_URL": os.environ.get("APP_BASE_URL") or f"http://127.0.0.1:{args.port}",
    }
    base_env.pop("MIGRATE_ON_START", None)
    if secret:
        base_env["JWT_SECRET_KEY"] = secret
    gunicorn = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
    replicas = [
        Child(f"replica-{i + 1}", gunicorn, {**base_env, "PORT": str(port)})
        for i, port in enumerate(ports)
    ]
    gateway = Child(
        "nginx",
        [nginx, "-p", str(workdir), "-c", str(config), "-g", "daemon off;"],
        dict(os.environ),
    )

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        for replica in replicas:
            replica.start()
        gateway.start()
        if not _wait_ready(ports, args.port, [*replicas, gateway], stop):
            return 1
        say("cluster", f"gateway ready on http://127.0.0.1:{args.port} ({len(replicas)} replicas)")
        if args.state_file:
            state = {
                "gateway": args.port,
                "nginx_pid": gateway.proc.pid,
                "replicas": [
                    {"name": r.name, "port": p, "pid": r.proc.pid}
                    for r, p in zip(replicas, ports, strict=True)
                ],
            }
            args.state_file.write_text(json.dumps(state))
        return _supervise(replicas, gateway, ports, args.state_file, stop)
    finally:
        gateway.stop(signal.SIGQUIT, timeout=15)
        for replica in replicas:
            replica.stop()
        if embedded_redis is not None:
            embedded_redis.stop()
        if embedded_pg is not None:
            with contextlib.suppress(Exception):
                embedded_pg.cleanup()
        say("cluster", "stopped")


def _wait_ready(ports, gateway_port, children, stop) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not stop.is_set():
        if any(child.exited() for child in children):
            say("cluster", "a process exited while starting; stopping")
            return False
        if all(_answers(f"http://127.0.0.1:{p}/readyz") for p in ports) and _answers(
            f"http://127.0.0.1:{gateway_port}/healthz"
        ):
            return True
        time.sleep(0.2)
    say("cluster", "not ready in time; stopping")
    return False


def _supervise(replicas, gateway, ports, state_file, stop) -> int:
    while not stop.wait(0.2):
        if gateway.exited():
            say("cluster", f"nginx exited with {gateway.proc.returncode}; stopping")
            return 1
        for index, replica in enumerate(replicas):
            if replica.exited() and not replica.stopping:
                say("cluster", f"{replica.name} exited with {replica.proc.returncode}; restarting")
                time.sleep(RESTART_DELAY_S)
                replica.start()
                if state_file:
                    state = json.loads(state_file.read_text())
                    state["replicas"][index]["pid"] = replica.proc.pid
                    state_file.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
