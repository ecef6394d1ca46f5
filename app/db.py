"""The SQLAlchemy engine: a pool of psycopg2 connections, plain SQL only."""

from __future__ import annotations

import logging
import time

import psycopg2
import sqlalchemy as sa

from app.logs import OutageLog

log = logging.getLogger("app.db")


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    statement_timeout_ms: int = 5000,
    pool_timeout_s: float = 10,
    application_name: str = "group-invites",
) -> sa.Engine:
    """An engine whose sessions speak UTC and give up on runaway statements."""
    parsed = sa.engine.make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        # SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql:// URL.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    # Prepared statements (app/repository/prepared.py) keep one generic plan:
    # PostgreSQL's default re-plans them for their parameters on every call,
    # which is the cost they exist to save. Plain statements are not affected.
    options = (
        f"-c timezone=UTC -c statement_timeout={statement_timeout_ms}"
        " -c plan_cache_mode=force_generic_plan"
    )
    engine = sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        # Not pool_pre_ping: a round trip before every checkout, as dear as the
        # preview's query. A connection idle long enough to have been dropped is
        # pinged instead (below); one that dies in use invalidates the pool.
        pool_pre_ping=False,
        # Exception messages must not carry bound parameters: they include codes.
        hide_parameters=True,
        # Fail fast (503) rather than hold a request until gunicorn's timeout.
        pool_timeout=pool_timeout_s,
        pool_recycle=1800,
        connect_args={
            "options": options,
            "application_name": application_name,
            # Give up on an unreachable server well within gunicorn's timeout,
            # and notice a dead one on an idle connection.
            "connect_timeout": 5,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )
    sa.event.listen(engine, "checkin", _checked_in)
    sa.event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A connection back from the pool within this long was just in use; one idle
# longer is pinged first, so a server restarted meanwhile costs no request.
PING_AFTER_IDLE_S = 1.0


def _checked_in(_dbapi_connection, record) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()  # end the transaction the ping began
    except psycopg2.Error as exc:
        # The pool discards this connection and checks out another (a new one).
        raise sa.exc.DisconnectionError(str(exc)) from exc


def describe(url: sa.URL) -> str:
    """Where the database is, for a log line: ``postgresql db.internal:5432/invites``."""
    host = url.host or url.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    where = host if str(host).startswith("/") else f"{host}:{url.port or 5432}"
    return f"postgresql {where}/{url.database or ''}"


# SQLSTATE classes that mean the server cannot be reached or will not serve:
# connection exceptions, insufficient resources, operator intervention (shutdown).
_UNREACHABLE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03")


class Availability:
    """Whether this process reaches its database, said once each way.

    The HTTP layer reports each database failure it answers 503 for; the
    first of an outage logs one warning with where and why. The first
    connection taken from the pool afterwards (pre-pinged, so it works)
    logs one line that the outage is over.
    """

    def __init__(self, engine: sa.Engine):
        self.outage = OutageLog(
            "database",
            describe(engine.url),
            meanwhile="answering 503 until it returns",
            after="serving again",
        )
        sa.event.listen(engine, "checkout", self._checked_out)

    def _checked_out(self, *_args) -> None:
        self.outage.ended()

    def failed(self, error: Exception) -> None:
        orig = getattr(error, "orig", None) or error
        pgcode = getattr(orig, "pgcode", None)
        if isinstance(error, sa.exc.TimeoutError):
            log.warning("no pooled database connection came free in time: answering 503")
        elif pgcode is None or pgcode.startswith(_UNREACHABLE_SQLSTATES):
            self.outage.began(orig)
        else:  # the server answered: a statement timeout, say
            log.warning(
                "database error %s (SQLSTATE %s): answering 503", type(orig).__name__, pgcode
            )
