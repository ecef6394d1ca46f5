"""The service's Prometheus metrics, counted across every gunicorn worker.

prometheus-client's multiprocess mode: each worker writes its samples to files
in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` (``app.api.metrics``) adds
them up. The gunicorn master owns the directory (``app.startup``): it empties
it at start, so counts from an earlier run are never added to this one's, and
forgets each worker that exits. The master never imports this module: the
variable must be set before these metrics are made, which happens in each
worker. Without it (a single process, the test client) the samples live in
this process.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "http_requests",
    "Requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request reaching the app to its response, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
INVITE_JOINS = Counter(
    "invite_joins",
    "Join attempts decided by the service, by outcome (replays are not counted).",
    ["outcome"],
)
INVITES_CREATED = Counter("invites_created", "Invites created (replays are not counted).")
RATE_LIMITED = Counter(
    "rate_limited", "Requests refused with 429, by the limit they met.", ["limit"]
)
POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections checked out of the pools of the live workers.",
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "db_pool_connections_max",
    "Connections the pools of the live workers may open (pool size plus overflow).",
    multiprocess_mode="livesum",
)


def watch_pool(engine, size: int) -> None:
    """Count the engine's checked-out connections in ``db_pool_connections_in_use``."""
    import sqlalchemy as sa

    POOL_MAX.set(size)
    sa.event.listen(engine, "checkout", lambda *_: POOL_IN_USE.inc())
    sa.event.listen(engine, "checkin", lambda *_: POOL_IN_USE.dec())
