"""Load-test a local multi-worker server and print throughput and latency.

Usage: ``make bench`` or ``.venv/bin/python bench/run.py [--requests N]
[--concurrency C] [--workers W] [--threads T] [--duration S]``.

Everything is throwaway and local: unless BENCH_DATABASE_URL is set, a
private PostgreSQL (pgserver) is started in a temporary directory; the
migrations are applied; gunicorn serves the app on a free port of 127.0.0.1
with the rate limits raised out of the way; and C client threads, each with
its own keep-alive connection, send a bounded number of requests (for at most
S seconds) per scenario:

- ``preview``: GET /api/v1/invites/{code} (public, no token)
- ``join``:    POST /api/v1/groups/join, every request a fresh user, over
               invites with max_uses=100
- ``create``:  POST /api/v1/groups/{id}/invites by one owner into one group
               (the worst case: those creates serialise on the group)
- ``list``:    GET /api/v1/groups/{id}/invites of a group with 50 active invites

The server, the database and the temporary directory are removed at the end,
also on errors and Ctrl-C. With BENCH_DATABASE_URL the rows it creates stay.
The client runs on the same machine, so it competes with the server for CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import math
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app import liveserver
from app.liveserver import HOST, LiveServer, send
from app.token import mint

JOIN_MAX_USES = 100
LIST_SIZE = 50
TIMEOUT = 30.0


# --------------------------------------------------------------------------- HTTP


class Client:
    """A keep-alive connection for set-up calls; each expects one status."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)

    def call(self, method, path, body=None, token=None, expect=200) -> object:
        try:
            reply = send(self.conn, method, path, body, token)
        except (http.client.HTTPException, OSError):
            self.conn.close()  # the server closed an idle connection: once more
            reply = send(self.conn, method, path, body, token)
        if reply.status != expect:
            raise RuntimeError(f"{method} {path}: expected {expect}, got {reply}")
        return reply.body

    def close(self) -> None:
        self.conn.close()


class Tokens:
    def __init__(self, secret: str):
        self.secret = secret

    def mint(self, name: str) -> str:
        return mint(self.secret, subject=uuid.uuid4(), name=name, lifetime=dt.timedelta(hours=1))


# ------------------------------------------------------------------ measurement


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, expected replies only
    errors: int = 0
    wall: float = 0.0
    samples: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1] * 1000


# A request of a scenario: (method, path, body, token) for index i.
RequestFor = Callable[[int], tuple[str, str, object, str | None]]


def load(
    name: str,
    port: int,
    request_for: RequestFor,
    expect: int,
    *,
    requests: int,
    concurrency: int,
    duration: float,
) -> Result:
    """Send ``requests`` requests from ``concurrency`` threads, stopping early
    after ``duration`` seconds; every thread keeps one connection alive."""
    result = Result(name)
    lock = threading.Lock()
    next_index = iter(range(requests))
    start = threading.Barrier(concurrency + 1)
    deadline = [math.inf]

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        latencies: list[float] = []
        errors = 0
        samples: list[str] = []
        try:
            start.wait()
            while time.perf_counter() < deadline[0]:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    break
                method, path, body, token = request_for(i)
                began = time.perf_counter()
                try:
                    reply = send(conn, method, path, body, token)
                except (http.client.HTTPException, OSError) as exc:
                    conn.close()  # reconnects on the next request
                    errors += 1
                    samples.append(f"{method} {path}: {exc!r}")
                    continue
                elapsed = time.perf_counter() - began
                if reply.status == expect:
                    latencies.append(elapsed)
                else:
                    errors += 1
                    samples.append(f"{method} {path}: {reply.status} {reply.body}")
        finally:
            conn.close()
            with lock:
                result.latencies.extend(latencies)
                result.errors += errors
                result.samples.extend(samples[:3])

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + duration
    start.wait()
    for thread in threads:
        thread.join(timeout=duration + TIMEOUT + 5)
    result.wall = time.perf_counter() - began
    return result


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | requests | errors | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rate = r.requests / r.wall if r.wall else 0.0
        lines.append(
            f"| {r.name} | {r.requests} | {r.errors} | {rate:.0f} | "
            f"{r.percentile(50):.1f} | {r.percentile(95):.1f} | {r.percentile(99):.1f} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------- infrastructure


def start_server(args, database_url: str, secret: str, log_path: Path) -> LiveServer:
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": secret,
        "GUNICORN_THREADS": str(args.threads),
        "JOIN_RATE_LIMIT": "1000000000/minute",
        "CREATE_RATE_LIMIT": "1000000000/minute",
        "LOOKUP_FAILURE_LIMIT": "1000000000/minute",
        "NETWORK_LOOKUP_FAILURE_LIMIT": "1000000000/minute",
        "INVITE_LOOKUP_RATE_LIMIT": "1000000000/minute",
        # The create scenario leaves every invite it makes active in one group.
        "MAX_ACTIVE_INVITES_PER_GROUP": str(args.requests + 1000),
        "LOG_LEVEL": args.log_level,
    }
    return liveserver.start(settings, log_path, workers=args.workers)


# ------------------------------------------------------------------- scenarios


def run_scenarios(args, port: int, tokens: Tokens) -> list[Result]:
    setup = Client(port)
    owner = tokens.mint("Bench Owner")

    def new_group(name: str) -> str:
        return setup.call("POST", "/api/v1/groups", {"name": name}, owner, expect=201)["id"]

    def new_invite(group_id: str, **body) -> dict:
        path = f"/api/v1/groups/{group_id}/invites"
        return setup.call("POST", path, body, owner, expect=201)

    # preview: one invite, looked up over and over.
    preview_code = new_invite(new_group("Preview"), max_uses=100)["code"]
    # join: one group and one invite per JOIN_MAX_USES joiners, one fresh user each.
    join_codes = [
        new_invite(new_group(f"Join {i}"), max_uses=JOIN_MAX_USES)["code"]
        for i in range(math.ceil(args.requests / JOIN_MAX_USES))
    ]
    joiners = [tokens.mint(f"Joiner {i}") for i in range(args.requests)]
    # create: every create into one group, by its owner.
    create_group = new_group("Create")
    # list: a group with LIST_SIZE active invites.
    list_group = new_group("List")
    for _ in range(LIST_SIZE):
        new_invite(list_group, max_uses=10)
    listed = setup.call("GET", f"/api/v1/groups/{list_group}/invites", token=owner)
    assert len(listed["data"]) == LIST_SIZE, len(listed["data"])
    setup.close()

    common = {"concurrency": args.concurrency, "duration": args.duration}

    # Warm up every worker's connection pool and code paths (not measured).
    load(
        "warm-up",
        port,
        lambda i: ("GET", f"/api/v1/invites/{preview_code}", None, None),
        200,
        requests=args.concurrency * 20,
        **common,
    )

    scenarios = [
        (
            "preview GET /invites/{code}",
            lambda i: ("GET", f"/api/v1/invites/{preview_code}", None, None),
            200,
        ),
        (
            "join POST /groups/join",
            lambda i: (
                "POST",
                "/api/v1/groups/join",
                {"code": join_codes[i // JOIN_MAX_USES]},
                joiners[i],
            ),
            200,
        ),
        (
            "create POST /groups/{id}/invites",
            lambda i: ("POST", f"/api/v1/groups/{create_group}/invites", {"max_uses": 5}, owner),
            201,
        ),
        (
            f"list GET /groups/{{id}}/invites ({LIST_SIZE} active)",
            lambda i: ("GET", f"/api/v1/groups/{list_group}/invites", None, owner),
            200,
        ),
    ]
    results = []
    for name, request_for, expect in scenarios:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        result = load(name, port, request_for, expect, requests=args.requests, **common)
        for sample in result.samples[:5]:
            print(f"  unexpected: {sample}", file=sys.stderr)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="per scenario (2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (16)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (4)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (4)")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="stop a scenario after this many s (60)"
    )
    parser.add_argument("--log-level", default="info", help="the server's LOG_LEVEL (info)")
    args = parser.parse_args(argv)
    for name in ("requests", "concurrency", "workers", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")

    from app.db import create_engine
    from app.migrate import upgrade

    workdir = Path(tempfile.mkdtemp(prefix="invites-bench-"))
    workdir.chmod(0o755)  # the embedded PostgreSQL may run as another user
    database = None
    server = None
    try:
        url = os.environ.get("BENCH_DATABASE_URL", "").strip()
        if url:
            where = "BENCH_DATABASE_URL"
        else:
            from app.local import start_embedded_postgres

            print("starting an embedded PostgreSQL ...", file=sys.stderr, flush=True)
            database = start_embedded_postgres(workdir / "pg", cleanup_mode="stop")
            url = database.get_uri()
            where = "embedded PostgreSQL (pgserver)"
        engine = create_engine(url, pool_size=1)
        try:
            upgrade(engine)
        finally:
            engine.dispose()

        secret = secrets.token_urlsafe(48)
        log_path = workdir / "server.log"
        print("starting gunicorn ...", file=sys.stderr, flush=True)
        server = start_server(args, url, secret, log_path)
        results = run_scenarios(args, server.port, Tokens(secret))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        if database is not None:
            database.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\n{args.workers} workers x {args.threads} threads, {args.concurrency} client threads "
        f"(keep-alive), up to {args.requests} requests or {args.duration:.0f} s per scenario; "
        f"{where}; {os.cpu_count()} CPUs shared by server, database and client.\n"
    )
    print(table(results))
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
