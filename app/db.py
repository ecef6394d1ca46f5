"""The SQLAlchemy engine: a pool of psycopg2 connections, plain SQL only."""

from __future__ import annotations

import sqlalchemy as sa


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
    options = f"-c timezone=UTC -c statement_timeout={statement_timeout_ms}"
    return sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
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
