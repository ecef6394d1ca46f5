"""How `make run` (gunicorn, gthread, no proxy in front) holds up against slow clients.

Usage: ``.venv/bin/python bench/slow_clients.py [--workers 4] [--threads 4]``.

Starts the service as `make run` does (embedded PostgreSQL in a temporary
directory, WORKERS x THREADS), then for each count of slow clients opens that
many connections that send a request line and one header and then trickle a
header line a second, never finishing; meanwhile an ordinary client sends
GET /healthz on fresh connections and records how long each took (10 s at
most). Prints one row per count. Everything is local and removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from app import liveserver
from app.liveserver import HOST

PROBES = 10
PROBE_TIMEOUT_S = 10.0


def probe(port: int) -> float | None:
    """Seconds for one GET /healthz on a new connection, or None if it did not finish."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=PROBE_TIMEOUT_S)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    return time.monotonic() - started


def measure(port: int, slow_count: int) -> tuple[int, list[float]]:
    slow = []
    stop = threading.Event()
    for _ in range(slow_count):
        sock = socket.create_connection((HOST, port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        slow.append(sock)

    def trickle():
        while not stop.wait(1.0):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")

    ticker = threading.Thread(target=trickle, daemon=True)
    ticker.start()
    try:
        time.sleep(0.5)
        results = [probe(port) for _ in range(PROBES)]
    finally:
        stop.set()
        for sock in slow:
            sock.close()
        ticker.join()
    done = [r for r in results if r is not None]
    return PROBES - len(done), done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--counts", default="0,4,8,15,16,32")
    args = parser.parse_args(argv)

    from app.db import create_engine
    from app.local import start_embedded_postgres
    from app.migrate import upgrade

    workdir = Path(tempfile.mkdtemp(prefix="invites-slow-"))
    workdir.chmod(0o755)
    database = start_embedded_postgres(workdir / "pg", cleanup_mode="stop")
    server = None
    try:
        engine = create_engine(database.get_uri(), pool_size=1)
        upgrade(engine)
        engine.dispose()
        settings = {
            "DATABASE_URL": database.get_uri(),
            "JWT_SECRET_KEY": "slow-clients-" + "x" * 32,
            "GUNICORN_THREADS": str(args.threads),
        }
        server = liveserver.start(settings, workdir / "server.log", workers=args.workers)
        rows = []
        for count in (int(c) for c in args.counts.split(",")):
            unanswered, times = measure(server.port, count)
            slowest = f"{max(times) * 1000:.0f}" if times else "-"
            rows.append(f"| {count} | {PROBES - unanswered} of {PROBES} | {slowest} |")
            time.sleep(1.0)
    finally:
        if server is not None:
            server.stop()
        database.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\n{args.workers} workers x {args.threads} threads (gthread), no proxy; "
        f"{os.cpu_count()} CPUs; each probe waits {PROBE_TIMEOUT_S:.0f} s at most.\n"
    )
    print("| slow clients | probes answered | slowest answered (ms) |")
    print("|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
