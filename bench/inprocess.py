"""CPU per request in one process: the service's WSGI app against its floor's.

`make bench` measures whole servers with wrk, which is what callers see, but
on a shared 2-core machine its ratios move by several per cent from run to
run. A change worth a few per cent is measured better here: each app is
called directly (no gunicorn, no sockets of its own) with N prepared
requests, one at a time, and the CPU time this process spends is divided by
N (``time.process_time``: waiting for PostgreSQL or Redis is not counted,
the client's side of each round trip is). The best of three runs is kept.

Same set-up as `make bench`: a throwaway database (BENCH_ADMIN_URL's server,
or an embedded one), seeded with SQL; a Redis for the limits (the embedded
one, or RATELIMIT_STORAGE_URI); every limit set high enough never to refuse.

    .venv/bin/python -m bench.inprocess [--requests 2000] [--scenarios preview join create]

Prints per scenario: service ms, floor ms, and floor/service (the share of
the floor's CPU the service would need to be as cheap).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import io
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from werkzeug.test import EnvironBuilder

from app.db import create_engine
from app.migrate import data_steps, upgrade
from app.token import mint
from bench.run import Bench, seed, throwaway_database

ROUNDS = 3
CREATORS = 400


def _requests(scenario: str, n: int, seeded: dict, secret: str) -> list[dict]:
    """``n`` WSGI environs of ``scenario``."""
    owners: dict[str, str] = {}
    out = []
    for i in range(n):
        if scenario == "preview":
            builder = EnvironBuilder(
                path=f"/api/v1/invites/{random.choice(seeded['preview'].codes)}",
                environ_base={"REMOTE_ADDR": f"10.0.0.{i % 250}"},
            )
        elif scenario == "join":
            token = mint(secret, subject=uuid.uuid4(), lifetime=dt.timedelta(hours=1))
            builder = EnvironBuilder(
                path="/api/v1/groups/join",
                method="POST",
                json={"code": random.choice(seeded["join"].codes)},
                headers={"Authorization": f"Bearer {token}"},
            )
        else:  # create: owners reuse their tokens, as clients do
            group, owner = seeded["create"].groups[i % len(seeded["create"].groups)]
            if owner not in owners:
                owners[owner] = mint(secret, subject=owner, lifetime=dt.timedelta(hours=1))
            builder = EnvironBuilder(
                path=f"/api/v1/groups/{group}/invites",
                method="POST",
                json={"max_uses": 5},
                headers={"Authorization": f"Bearer {owners[owner]}"},
            )
        out.append(builder.get_environ())
    return out


def _drive(app, environs: list[dict]) -> float:
    """CPU seconds per request for answering ``environs`` (each must be a 2xx)."""
    status = []

    def start_response(line, _headers, _exc_info=None):
        status.append(line)

    started = time.process_time()
    for environ in environs:
        body = app(environ, start_response)
        b"".join(body)
        if hasattr(body, "close"):
            body.close()
    spent = time.process_time() - started
    failed = [line for line in status if not line.startswith("2")]
    if failed:
        raise SystemExit(f"{len(failed)} requests failed, first: {failed[0]}")
    return spent / len(environs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per run (2000)")
    parser.add_argument(
        "--scenarios", nargs="+", default=["preview", "join", "create"], metavar="S"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="invites-inprocess-"))
    workdir.chmod(0o755)  # the embedded PostgreSQL may run as another user
    redis = None
    try:
        with throwaway_database(workdir) as (url, where), contextlib.ExitStack() as stack:
            engine = create_engine(url, pool_size=1)
            upgrade(engine, steps=data_steps())
            engine.dispose()
            bench = Bench(argparse.Namespace(size_base=10_000), url, workdir)
            store = os.environ.get("RATELIMIT_STORAGE_URI", "").strip()
            if not store:
                from app.local import EmbeddedRedis

                redis = EmbeddedRedis(workdir / "redis")
                store = redis.uri
            os.environ.update(
                {**bench.service_settings(), "RATELIMIT_STORAGE_URI": store, "LOG_LEVEL": "INFO"}
            )
            print("seeding ...", file=sys.stderr, flush=True)
            seeded = {
                "preview": seed(bench.engine, bench.keys, groups=100, per_group=100, max_uses=100),
                "join": seed(bench.engine, bench.keys, groups=100, per_group=100, max_uses=100),
                "create": seed(bench.engine, bench.keys, groups=CREATORS, per_group=0, max_uses=1),
            }
            from app import create_app

            service = create_app()
            # Each request line is formatted in full, then written to /dev/null.
            sink = stack.enter_context(open(os.devnull, "w"))
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(sink)
            floors = importlib.import_module("bench.floors")
            rows = []
            for scenario in args.scenarios:
                best = {}
                for name, app in (("service", service.wsgi_app), ("floor", floors.app.wsgi_app)):
                    _drive(app, _requests(scenario, 200, seeded, bench.secret))  # warm-up
                    best[name] = min(
                        _drive(app, _requests(scenario, args.requests, seeded, bench.secret))
                        for _ in range(ROUNDS)
                    )
                rows.append((scenario, best["service"], best["floor"]))
            service.extensions["db_engine"].dispose()
            floors.engine.dispose()
            bench.engine.dispose()
    finally:
        if redis is not None:
            redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    out = io.StringIO()
    print(f"\nCPU per request in-process, best of {ROUNDS} x {args.requests}; {where}.\n", file=out)
    print("| scenario | service ms | floor ms | floor/service |\n|---|---:|---:|---:|", file=out)
    for scenario, service_s, floor_s in rows:
        print(
            f"| {scenario} | {service_s * 1000:.3f} | {floor_s * 1000:.3f}"
            f" | {floor_s / service_s:.2f} |",
            file=out,
        )
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
