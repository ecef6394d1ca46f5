"""What the gunicorn master does before it binds or forks (``gunicorn.conf.py``).

In this order, so that a start fails whole and early: the configuration is
checked (every problem at once, one line each, and nothing else happens);
then the embedded servers and development secrets are provided where the
environment leaves them out; then the database is reached (one line saying
where and why if it cannot be) and migrated when asked. No step prints a
traceback: each refusal is a log line and an exit status.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import sqlalchemy as sa

from app import config
from app.code_keys import new_key_spec


class Refusal(SystemExit):
    """The service will not start; the reasons are already logged."""


def configuration_problems(env: Mapping[str, str], workers: int) -> list[str]:
    """Everything ``config.check`` would refuse in every worker, decided once, before
    anything happens; what a development start provides itself (the embedded
    PostgreSQL and Redis, the development secrets) is taken as provided."""
    settings, problems = config.read_env(env)
    if settings["APP_ENV"] != "production":
        settings["DATABASE_URL"] = settings["DATABASE_URL"] or "postgresql://embedded"
        if not (settings["JWT_SECRET_KEY"] or settings["JWT_PUBLIC_KEY"]):
            settings["JWT_SECRET_KEY"] = secrets.token_urlsafe(48)  # as .data/ will hold
        settings["CODE_KEYS"] = settings["CODE_KEYS"] or new_key_spec("dev")
    problems += config.check(settings)
    refusal = config.memory_store_refusal(settings["RATELIMIT_STORAGE_URI"], workers)
    if refusal:
        problems.append(refusal)
    return problems


def refuse(log, lines: list[str], status: int) -> NoReturn:
    for line in lines:
        log.error("%s", line)
    raise Refusal(status)


def database_unreachable(url: str, error: BaseException) -> str:
    """One line: where the database was looked for, why it did not answer, what to check."""
    parsed = sa.engine.make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    if parsed.query.get("host"):  # a unix socket directory
        where = f"{parsed.query['host']} (unix socket)"
    original = getattr(error, "orig", None) or error
    reason = " ".join(str(original).split()) or type(original).__name__
    return (
        f"cannot reach the database at {where} (database {parsed.database!r}): {reason[:300]}; "
        "check that PostgreSQL is running there and that DATABASE_URL is right "
        "(unset it to use the embedded server in development)"
    )


def check_database(log, url: str, *, migrate: bool) -> list[str]:
    """Reach the database (and apply pending migrations if ``migrate``, their data
    steps included): the filenames applied. An unreachable database is a refusal
    to start."""
    from app.db import create_engine
    from app.migrate import MigrationError, data_steps, upgrade

    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return upgrade(engine, steps=data_steps()) if migrate else []
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        refuse(log, [database_unreachable(url, exc)], os.EX_UNAVAILABLE)
    except MigrationError as exc:
        refuse(log, [f"migrations not applied: {exc}"], os.EX_DATAERR)
    finally:
        engine.dispose()


METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_directory() -> Path | None:
    """The workers' metrics directory (``app.metrics``), emptied so an earlier run's
    counts are never added to this one's. Made here, and returned to be removed at
    exit, when the environment names none."""
    named = os.environ.get(METRICS_DIR_ENV, "").strip()
    if named:
        directory = Path(named)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return None
    directory = Path(tempfile.mkdtemp(prefix="group-invites-metrics-"))
    os.environ[METRICS_DIR_ENV] = str(directory)
    return directory


def remove_metrics_directory(directory: Path | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """A worker that has gone no longer counts in the live gauges (the pool's use)."""
    if os.environ.get(METRICS_DIR_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
