"""`make bench`: the service against bare floors, in one run, with wrk.

For each scenario the service (gunicorn as `make run` starts it, every
guarantee on: authentication, validation, exact limits counted in the shared
store, idempotency, logging, metrics) and its floor (bench/floors.py: the same
database work in a bare Flask route under gunicorn's sync workers) are
loaded in turn by wrk (c=16, one thread, keep-alive), ROUNDS times each,
alternating, after a warm-up of both. Printed: each side's median req/s and
p99, and the ratio service/floor with its spread over the rounds; then each
side's CPU per request, split between the server, PostgreSQL and Redis.

- ``preview``: GET /api/v1/invites/{code}, a random code of SIZE invites
- ``join``:    POST /api/v1/groups/join, every request a new user
- ``create``:  POST /api/v1/groups/{id}/invites, owners of many groups
- ``list``:    GET /api/v1/groups/{id}/invites, groups of 50 active invites

``--size N`` measures only the service's latency (preview, join, list; the
median of ROUNDS runs each) with SIZE invites, then grows the table to N
(seeded with SQL, then vacuumed and checkpointed) and measures again, and
prints the plan each query runs with at N.

Everything is throwaway: a database is created on BENCH_ADMIN_URL's server
(default: the embedded PostgreSQL, started in a temporary directory) and
dropped at the end. The load generator shares the machine's cores with the
server and the database, so only ratios from one run mean anything.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import io
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from app import liveserver
from app.code_keys import CodeKeyring, new_key_spec
from app.codes import generate_code
from app.db import create_engine
from app.migrate import data_steps, upgrade
from app.token import mint

ROOT = Path(__file__).resolve().parents[1]
WRK_SCRIPT = ROOT / "bench" / "wrk" / "scenario.lua"
CONCURRENCY = 16
LIST_SIZE = 50
JOIN_INVITES = 1000  # x 100 uses: room for every join of a run
CREATE_GROUPS = 2000  # x 100 active invites each (the cap)
UNLIMITED = "1000000000/minute"


# ---------------------------------------------------------------------- seeding


def _copy(conn, table: str, columns: str, rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_value(v) for v in row) + "\n")
    buffer.seek(0)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    return str(value)


@dataclass
class Seeded:
    groups: list[tuple[str, str]]  # (group id, owner id)
    codes: list[str]


def seed(engine: sa.Engine, keys: CodeKeyring, *, groups: int, per_group: int, max_uses: int):
    """``groups`` groups, each with an owner and ``per_group`` live invites, by COPY."""
    made = Seeded([], [])
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).replace(microsecond=0)
    taken: set[str] = set()
    batch = max(1, 20_000 // max(per_group, 1))
    for start in range(0, groups, batch):
        users, group_rows, members, invites = [], [], [], []
        for _ in range(min(batch, groups - start)):
            owner, group = uuid.uuid4(), uuid.uuid4()
            users.append((owner, "Bench owner"))
            group_rows.append((group, "Bench group", "🏡", owner))
            members.append((group, owner, "owner"))
            made.groups.append((str(group), str(owner)))
            for _ in range(per_group):
                code = generate_code()
                while code in taken:
                    code = generate_code()
                taken.add(code)
                key, sealed = keys.seal_code(code, group)
                invites.append(
                    (group, keys.digest(code), sealed, key, max_uses, expires.isoformat(), owner)
                )
                made.codes.append(code)
        with engine.begin() as conn:
            _copy(conn, "users", "id, display_name", users)
            _copy(conn, "groups", "id, name, icon_emoji, created_by", group_rows)
            _copy(conn, "group_memberships", "group_id, user_id, role", members)
            _copy(
                conn,
                "group_invites",
                "group_id, code_digest, code_sealed, code_key, max_uses, expires_at, created_by",
                invites,
            )
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    return made


# ------------------------------------------------------------------------ wrk


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    # CPU milliseconds per request, by process group (CpuMeter), when measured.
    cpu_ms: dict[str, float] | None = None


class CpuMeter:
    """CPU time of a server's process tree, of PostgreSQL's processes and of Redis's
    over a run, read from the kernel's per-process counters (psutil)."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def _groups(self) -> dict[str, list]:
        import psutil

        groups: dict[str, list] = {"server": [], "postgres": [], "redis": []}
        try:
            master = psutil.Process(self.server_pid)
            tree = [master, *master.children(recursive=True)]
        except psutil.Error:
            tree = []
        for process in tree:
            with contextlib.suppress(psutil.Error):
                if not process.name().startswith("redis"):
                    groups["server"].append(process)
        for process in psutil.process_iter(["name"]):
            name = process.info["name"] or ""
            if name.startswith("postgres"):
                groups["postgres"].append(process)
            elif name.startswith("redis"):
                groups["redis"].append(process)
        return groups

    def snapshot(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for group, processes in self._groups().items():
            out[group] = {}
            for process in processes:
                with contextlib.suppress(Exception):
                    times = process.cpu_times()
                    out[group][process.pid] = times.user + times.system
        return out

    @staticmethod
    def per_request(before, after, requests: int) -> dict[str, float]:
        return {
            group: 1000
            * sum(t - before[group].get(pid, 0.0) for pid, t in after[group].items())
            / max(requests, 1)
            for group in after
        }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(
    port: int, scenario: str, data_file: Path, seconds: int, meter: CpuMeter | None = None
) -> Run:
    before = meter.snapshot() if meter else None
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONCURRENCY}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(WRK_SCRIPT),
            f"http://127.0.0.1:{port}",
        ],
        env={**os.environ, "SCENARIO": scenario, "DATA_FILE": str(data_file)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    cpu = None
    if meter:
        requests = int(re.search(r"(\d+) requests in", out)[1])
        cpu = CpuMeter.per_request(before, meter.snapshot(), requests)
    return Run(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        p50_ms=_ms(re.search(r"\s50%\s+(\S+)", out)[1]),
        p99_ms=_ms(re.search(r"\s99%\s+(\S+)", out)[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        errors=sum(int(n) for n in errors.groups()) if errors else 0,
        cpu_ms=cpu,
    )


# ------------------------------------------------------------------ processes


def start_floor(database_url: str, code_keys: str, log_path: Path, workers: int):
    port = liveserver.free_port()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.floors:app",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "CODE_KEYS": code_keys},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                if liveserver.send(conn, "GET", "/api/v1/invites/AAA-AAA-AAA").status == 404:
                    return port, proc
            finally:
                conn.close()
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"the floor did not start: {log_path.read_text()[-2000:]}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def throwaway_database(workdir: Path):
    """A fresh database on BENCH_ADMIN_URL's server, or on an embedded one; dropped after."""
    admin_url = os.environ.get("BENCH_ADMIN_URL", "").strip()
    embedded = None
    if not admin_url:
        from app.local import start_embedded_postgres

        print("starting an embedded PostgreSQL ...", file=sys.stderr, flush=True)
        embedded = start_embedded_postgres(workdir / "pg", cleanup_mode="stop")
        admin_url = embedded.get_uri()
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, pool_size=1)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.engine.make_url(admin_url).set(database=name)
        yield (
            url.render_as_string(hide_password=False),
            ("the embedded PostgreSQL" if embedded else "BENCH_ADMIN_URL's server"),
        )
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        if embedded is not None:
            embedded.cleanup()


# ------------------------------------------------------------------ scenarios


class Bench:
    def __init__(self, args, url: str, workdir: Path):
        self.args, self.url, self.workdir = args, url, workdir
        self.secret = "bench-" + uuid.uuid4().hex * 2
        self.code_keys = new_key_spec("bench")
        self.keys = CodeKeyring.parse(self.code_keys)
        self.engine = create_engine(url, pool_size=2)
        self.files = 0

    def token(self, subject) -> str:
        return mint(self.secret, subject=subject, lifetime=dt.timedelta(hours=2))

    def write(self, lines: list[str]) -> Path:
        self.files += 1
        path = self.workdir / f"data-{self.files}.txt"
        path.write_text("\n".join(lines) + "\n")
        return path

    def service_settings(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.url,
            "JWT_SECRET_KEY": self.secret,
            "CODE_KEYS": self.code_keys,
            "APP_BASE_URL": "https://invites.example",
            "INVITE_LOOKUP_RATE_LIMIT": UNLIMITED,
            "JOIN_RATE_LIMIT": UNLIMITED,
            "CREATE_RATE_LIMIT": UNLIMITED,
            "LOOKUP_FAILURE_LIMIT": UNLIMITED,
            "NETWORK_LOOKUP_FAILURE_LIMIT": UNLIMITED,
        }

    def data(self, rounds: int) -> dict[str, list[Path]]:
        """Seed the database; per scenario, the wrk data file of each run."""
        size = self.args.size_base
        print(f"seeding {size} invites, joins and creates ...", file=sys.stderr, flush=True)
        preview = seed(
            self.engine, self.keys, groups=max(1, size // 100), per_group=100, max_uses=100
        )
        joinable = seed(
            self.engine, self.keys, groups=JOIN_INVITES // 10, per_group=10, max_uses=100
        )
        creators = seed(self.engine, self.keys, groups=CREATE_GROUPS, per_group=0, max_uses=1)
        listed = seed(self.engine, self.keys, groups=20, per_group=LIST_SIZE, max_uses=10)
        runs = 2 * rounds + 2  # each side's warm-up and rounds
        per_run = self.args.seconds * 2000  # more joiners than a run can serve
        preview_file = self.write(preview.codes)
        owners = [f"{g} {self.token(o)}" for g, o in creators.groups]
        list_owners = [f"{g} {self.token(o)}" for g, o in listed.groups]
        joins = []
        for run in range(runs):
            lines = [
                f"{joinable.codes[(run * per_run + i) % len(joinable.codes)]} "
                f"{self.token(uuid.uuid4())}"
                for i in range(per_run)
            ]
            joins.append(self.write(lines))
        return {
            "preview": [preview_file] * runs,
            "join": joins,
            "create": [self.write(owners)] * runs,
            "list": [self.write(list_owners)] * runs,
        }


def compare(args, bench: Bench, service, floor) -> list[tuple]:
    """Each scenario's rounds: (scenario, service runs, floor runs); ``service`` and
    ``floor`` are (port, CpuMeter)."""
    (service_port, service_meter), (floor_port, floor_meter) = service, floor
    files = bench.data(args.rounds)
    rows = []
    for scenario in args.scenarios:
        print(
            f"{scenario}: service and floor, {args.rounds} rounds ...", file=sys.stderr, flush=True
        )
        runs = iter(files[scenario])
        wrk(service_port, scenario, next(runs), 3)  # warm-up
        wrk(floor_port, scenario, next(runs), 3)
        service, floor = [], []
        for _ in range(args.rounds):
            service.append(wrk(service_port, scenario, next(runs), args.seconds, service_meter))
            floor.append(wrk(floor_port, scenario, next(runs), args.seconds, floor_meter))
        rows.append((scenario, service, floor))
    return rows


def report(rows: list[tuple]) -> str:
    lines = [
        "| scenario | service req/s | floor req/s | ratio (min-max) | service p99 ms | floor p99 ms"
        " | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, service, floor in rows:
        ratios = [s.rps / f.rps for s, f in zip(service, floor, strict=True)]
        bad = sum(r.non_2xx + r.errors for r in service + floor)
        lines.append(
            f"| {scenario} | {statistics.median(r.rps for r in service):.0f}"
            f" | {statistics.median(r.rps for r in floor):.0f}"
            f" | {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
            f" | {statistics.median(r.p99_ms for r in service):.1f}"
            f" | {statistics.median(r.p99_ms for r in floor):.1f} | {bad} |"
        )
    lines += [
        "",
        "CPU ms per request (median over the rounds; postgres and redis count every such"
        " process on the machine):",
        "",
        "| scenario | side | server (gunicorn) | postgres | redis |",
        "|---|---|---:|---:|---:|",
    ]
    for scenario, service, floor in rows:
        for side, runs in (("service", service), ("floor", floor)):
            cpu = {g: statistics.median(r.cpu_ms[g] for r in runs) for g in runs[0].cpu_ms}
            lines.append(
                f"| {scenario} | {side} | {cpu['server']:.2f} | {cpu['postgres']:.2f}"
                f" | {cpu['redis']:.2f} |"
            )
    return "\n".join(lines)


def plans(engine: sa.Engine, keys: CodeKeyring, code: str, group_id: str) -> str:
    """The plans of the service's own queries (app/repository) at this size."""
    from app.repository import invites

    digests = keys.digests(code)
    queries = {
        "preview": (invites._PREVIEW, {"digests": digests}),
        "join": (
            invites._REDEEM,
            {"digests": digests, "user_id": uuid.uuid4(), "display_name": None},
        ),
        "list": (
            invites._LIST_LIVE,
            {"group_id": group_id, "user_id": uuid.uuid4(), "roles": ["admin", "owner"]},
        ),
    }
    out = []
    with engine.connect() as conn:
        for name, (query, params) in queries.items():
            rows = query.plan(conn, params)  # the generic plan every request runs
            out.append(f"{name}:\n" + "\n".join(f"    {row}" for row in rows))
        conn.rollback()
    return "\n".join(out)


def settle(engine: sa.Engine) -> None:
    """After a bulk load: vacuumed, analysed and checkpointed, as a table that grew
    over time would be, so the measurement is not of the load's aftermath."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (ANALYZE) group_invites"))
        with contextlib.suppress(sa.exc.DBAPIError):  # needs a superuser or pg_checkpoint
            conn.execute(sa.text("CHECKPOINT"))


def median_run(runs: list[Run]) -> Run:
    return Run(
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        non_2xx=sum(r.non_2xx for r in runs),
        errors=sum(r.errors for r in runs),
    )


def size_comparison(args, bench: Bench, port: int) -> str:
    """Service latency at --size-base invites, then at --size, and the plans there;
    at each size the median of --rounds runs per scenario."""
    files = bench.data(rounds=args.rounds)  # per scenario: 2 * (rounds + 1) data files
    per_size = args.rounds + 1
    lines = [
        "| scenario | invites | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    measured: dict[tuple[str, int], Run] = {}
    for index, size in enumerate((args.size_base, args.size)):
        if index:
            print(f"growing to {size} invites ...", file=sys.stderr, flush=True)
            extra = size - args.size_base
            seed(bench.engine, bench.keys, groups=extra // 100, per_group=100, max_uses=100)
            settle(bench.engine)
        for scenario in ("preview", "join", "list"):
            runs = iter(files[scenario][index * per_size : (index + 1) * per_size])
            wrk(port, scenario, next(runs), 2)  # warm-up
            run = measured[(scenario, size)] = median_run(
                [wrk(port, scenario, next(runs), args.seconds) for _ in range(args.rounds)]
            )
            lines.append(
                f"| {scenario} | {size} | {run.rps:.0f} | {run.p50_ms:.1f} | {run.p99_ms:.1f}"
                f" | {run.non_2xx + run.errors} |"
            )
    lines.append("")
    for scenario in ("preview", "join", "list"):
        small, large = measured[(scenario, args.size_base)], measured[(scenario, args.size)]
        lines.append(
            f"{scenario}: p50 at {args.size} invites / at {args.size_base} = "
            f"{large.p50_ms / small.p50_ms:.2f}, p99 {large.p99_ms / small.p99_ms:.2f}"
        )
    code = files["preview"][0].read_text().split()[0]
    group = files["list"][0].read_text().split()[0]
    lines += ["", f"plans at {args.size} invites:", plans(bench.engine, bench.keys, code, group)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="service/floor alternations (3)")
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run (5)")
    parser.add_argument(
        "--scenarios", nargs="+", default=["preview", "join", "create", "list"], metavar="S"
    )
    parser.add_argument("--size-base", type=int, default=10_000, help="invites to preview (10k)")
    parser.add_argument(
        "--size", type=int, default=None, help="instead: latency at --size-base and at this size"
    )
    parser.add_argument("--floor-workers", type=int, default=4, help="the floor's sync workers")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (`make bench` installs it)")

    workdir = Path(tempfile.mkdtemp(prefix="invites-bench-"))
    workdir.chmod(0o755)  # the embedded PostgreSQL may run as another user
    server = floor = None
    try:
        with throwaway_database(workdir) as (url, where):
            engine = create_engine(url, pool_size=1)
            upgrade(engine, steps=data_steps())
            engine.dispose()
            bench = Bench(args, url, workdir)
            print("starting the service (gunicorn.conf.py) ...", file=sys.stderr, flush=True)
            server = liveserver.start(
                bench.service_settings(), workdir / "service.log", workers=_workers()
            )
            if args.size:
                table = size_comparison(args, bench, server.port)
            else:
                floor_port, floor = start_floor(
                    url, bench.code_keys, workdir / "floor.log", args.floor_workers
                )
                table = report(
                    compare(
                        args,
                        bench,
                        (server.port, CpuMeter(server.proc.pid)),
                        (floor_port, CpuMeter(floor.pid)),
                    )
                )
            bench.engine.dispose()
            server.stop()
            server = None
            stop(floor)
            floor = None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        stop(floor)
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\nwrk -t1 -c{CONCURRENCY}, {args.seconds} s runs; {where}; "
        f"{os.cpu_count()} CPUs shared by server, database and wrk.\n"
    )
    print(table)
    return 0


def _workers() -> int:
    """What `make run` would start (gunicorn.conf.py reads WEB_CONCURRENCY)."""
    return int(os.environ.get("WEB_CONCURRENCY", "0") or 0) or min(4, (os.cpu_count() or 1) * 2)


if __name__ == "__main__":
    sys.exit(main())
