"""The limit store failing never fails a request: a real Redis stopped, frozen and
restarted under a running 4-worker server.

The test starts its own redis-server, points the server at it, and keeps
clients sending previews while it freezes Redis (SIGSTOP: connections hang),
thaws it, stops it (connections refused) and starts it again on the same
port. Every answer must be a 404 (the code is unknown; the limit is far away),
none slow, the log must say once per worker that the store went and came
back, with no traceback, and the counters must be back in Redis at the end.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from tests.helpers import JWT_SECRET, RedisProcess, serving

pytestmark = pytest.mark.slow

WORKERS = 4
CLIENTS = 6
# A request may wait for Redis once (RATELIMIT_STORAGE_TIMEOUT_MS, 50 ms) before
# it counts in memory; this bound leaves room for a loaded 2-core machine.
SLOWEST_ALLOWED_S = 1.0


class Load:
    """Client threads sending previews, each on a fresh connection, until stopped."""

    def __init__(self, server):
        self.server = server
        self.phase = "healthy"
        self.replies: list[tuple[str, int, float]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self) -> None:
        while not self._stop.is_set():
            phase, started = self.phase, time.monotonic()
            try:
                reply = self.server.call("GET", "/api/v1/invites/ZZZ-ZZZ-ZZZ")
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)
                return
            self.replies.append((phase, reply.status, time.monotonic() - started))

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def run_phase(self, name: str, seconds: float) -> None:
        self.phase = name
        time.sleep(seconds)


def test_requests_survive_redis_stopped_frozen_and_restarted(database_url, engine, tmp_path):
    redis_server = RedisProcess(tmp_path / "redis")
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "RATELIMIT_STORAGE_URI": redis_server.url,
        "INVITE_LOOKUP_RATE_LIMIT": "1000000/minute",
        "GUNICORN_THREADS": "4",
    }
    try:
        with (
            serving(settings, tmp_path / "server.log", workers=WORKERS) as server,
            Load(server) as load,
        ):
            load.run_phase("healthy", 1.5)
            assert redis_server.client().dbsize() > 0  # counting is shared
            ready = {"healthy": server.call("GET", "/readyz")}
            redis_server.freeze()
            load.run_phase("frozen", 3.0)
            redis_server.thaw()
            load.run_phase("thawed", 2.5)
            redis_server.stop()
            load.run_phase("stopped", 3.0)
            ready["stopped"] = server.call("GET", "/readyz")
            redis_server.start()
            load.run_phase("restarted", 3.0)
            ready["restarted"] = server.call("GET", "/readyz")
            shared_again = redis_server.client().dbsize()
            log = server.log()
    finally:
        redis_server.stop()

    assert not load.errors, load.errors
    # The instance stays ready through the store's outage, and says it is degraded.
    store = {phase: (r.status, r.body["checks"]["rate_limit_store"]) for phase, r in ready.items()}
    assert store == {
        "healthy": (200, "ok"),
        "stopped": (200, "degraded"),
        "restarted": (200, "ok"),
    }
    by_phase = Counter((phase, status) for phase, status, _ in load.replies)
    for phase in ("healthy", "frozen", "thawed", "stopped", "restarted"):
        assert by_phase[(phase, 404)] > 10, (phase, by_phase)
    assert {status for _, status, _ in load.replies} == {404}, by_phase
    slowest = {
        phase: max(seconds for p, _, seconds in load.replies if p == phase)
        for phase in ("healthy", "frozen", "stopped")
    }
    print(f"\nreplies by phase: {dict(by_phase)}\nslowest (s): {slowest}")  # make test -s
    assert max(slowest.values()) < SLOWEST_ALLOWED_S, slowest

    assert shared_again > 0  # counters are written to the restarted Redis
    went = log.count("rate-limit store unreachable (redis 127.0.0.1:")
    came_back = log.count("rate-limit store reachable again (redis 127.0.0.1:")
    # Two outages: one line per worker that noticed each, and as many recoveries.
    # On a starved 2-core machine a healthy Redis can miss the 50 ms timeout
    # once too, a real (if short) outage for that worker: allow one more each.
    assert 2 <= went <= 3 * WORKERS, log[-3000:]
    assert came_back == went, log[-3000:]
    assert "Traceback" not in log
    assert " 500 " not in log
