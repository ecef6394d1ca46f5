"""Apply the raw SQL files in migrations/ in order, and remember what was applied.

Usage: ``python -m app.migrate [up|status]`` (``make migrate``). With
DATABASE_URL unset it uses the embedded PostgreSQL under .data/.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import sqlalchemy as sa

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any fixed 64-bit number works; all replicas must agree on it.
ADVISORY_LOCK_KEY = 2_024_110_400_020
FILENAME = re.compile(r"^(?P<version>\d{3,})_(?P<name>[a-z0-9_]+)\.sql$")
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version      text PRIMARY KEY,
    filename     text NOT NULL,
    checksum     text NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    execution_ms integer NOT NULL
)
"""


class MigrationError(RuntimeError):
    """The database and the migrations directory disagree; nothing was applied."""


@dataclass(frozen=True)
class Migration:
    version: str
    filename: str
    sql: str
    checksum: str


@dataclass(frozen=True)
class Status:
    migration: Migration
    applied_at: object | None


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every NNN_name.sql file in ``directory``, ordered by version."""
    found: dict[str, Migration] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: expected a name like 020_group_invites.sql")
        version = match["version"]
        # 020 and 0020 would be the same version, applied twice.
        clash = next((m for v, m in found.items() if int(v) == int(version)), None)
        if clash is not None:
            raise MigrationError(f"{path.name}: version {int(version)} is also {clash.filename}")
        raw = path.read_bytes()
        try:
            sql = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MigrationError(f"{path.name}: not UTF-8 text") from None
        if not _COMMENTS.sub("", sql).strip():
            raise MigrationError(f"{path.name}: has no SQL statements")
        found[version] = Migration(
            version=version,
            filename=path.name,
            sql=sql,
            checksum=hashlib.sha256(raw).hexdigest(),
        )
    return [found[v] for v in sorted(found, key=int)]


def _applied(conn: sa.Connection) -> dict[str, sa.Row]:
    rows = conn.execute(
        sa.text("SELECT version, filename, checksum, applied_at FROM schema_migrations")
    )
    return {row.version: row for row in rows}


def _check_history(migrations: list[Migration], applied: dict[str, sa.Row]) -> None:
    by_version = {m.version: m for m in migrations}
    newest_file = max((int(m.version) for m in migrations), default=-1)
    for version, row in sorted(applied.items(), key=lambda item: int(item[0])):
        migration = by_version.get(version)
        if migration is None and int(version) > newest_file:
            # A newer release migrated this database (a rolling deploy, or a
            # rollback of the code): schema changes must stay compatible with
            # the previous release, so the older code may run; it applies nothing.
            log.warning("%s is applied but newer than this release's migrations", row.filename)
            continue
        if migration is None:
            raise MigrationError(
                f"{row.filename} was applied but is no longer in the migrations directory"
            )
        if migration.checksum != row.checksum:
            raise MigrationError(
                f"{migration.filename} was changed after it was applied "
                f"(recorded {row.checksum[:12]}, file {migration.checksum[:12]}); "
                "add a new migration instead of editing an applied one"
            )
    newest_applied = max((int(v) for v in applied), default=-1)
    for migration in migrations:
        if migration.version not in applied and int(migration.version) < newest_applied:
            raise MigrationError(
                f"{migration.filename} is older than migrations already applied; "
                "give it a version after the newest applied one"
            )


# A step of data work that SQL alone cannot do (it needs a key, say) runs once
# in every upgrade in which its version is in place, before any later file is
# applied, on the same connection (in its own transactions). Such a step must
# be safe to run again and cheap when there is nothing to do; the file after
# it checks that its work is done.
DataStep = Callable[[sa.Connection], object]


def upgrade(
    engine: sa.Engine,
    directory: Path = MIGRATIONS_DIR,
    *,
    steps: Mapping[int, DataStep] | None = None,
) -> list[str]:
    """Apply pending migrations, each in its own transaction; return their filenames.

    ``steps`` maps a version to the data step that follows it (see
    ``data_steps``); without them a file that depends on one refuses to run.
    """
    migrations = discover(directory)
    done: list[str] = []
    with engine.connect() as conn:
        # Waiting for another replica's run, or a long migration, is not a
        # runaway statement: lift the app's statement_timeout for this session.
        conn.execute(sa.text("SET statement_timeout = 0"))
        # A session-level lock, so replicas starting together take turns.
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        conn.commit()
        try:
            with conn.begin():
                conn.execute(sa.text(LEDGER_DDL))
            with conn.begin():
                applied = _applied(conn)
            _check_history(migrations, applied)
            done_versions = {int(v) for v in applied}
            stepped: set[int] = set()

            def run_steps(before: float) -> None:
                # Steps of versions already in place (earlier runs included), once each.
                for version in sorted(steps or {}):
                    if version < before and version in done_versions and version not in stepped:
                        stepped.add(version)
                        steps[version](conn)

            for migration in migrations:
                if migration.version in applied:
                    continue
                run_steps(int(migration.version))
                started = time.perf_counter()
                with conn.begin():
                    # The raw cursor runs the file as-is (several statements, no
                    # parameter interpolation of literal % signs).
                    cursor = conn.connection.dbapi_connection.cursor()
                    try:
                        cursor.execute(migration.sql)
                    finally:
                        cursor.close()
                    conn.execute(
                        sa.text(
                            "INSERT INTO schema_migrations"
                            " (version, filename, checksum, execution_ms)"
                            " VALUES (:version, :filename, :checksum, :ms)"
                        ),
                        {
                            "version": migration.version,
                            "filename": migration.filename,
                            "checksum": migration.checksum,
                            "ms": round((time.perf_counter() - started) * 1000),
                        },
                    )
                log.info("applied %s", migration.filename)
                done.append(migration.filename)
                done_versions.add(int(migration.version))
            run_steps(float("inf"))
        finally:
            conn.rollback()
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
            # Back to the connection's own default before it returns to the pool.
            conn.execute(sa.text("RESET statement_timeout"))
            conn.commit()
    return done


def pending(conn: sa.Connection, versions: list[str]) -> list[str]:
    """Of ``versions``, those the database has not applied."""
    if conn.execute(sa.text("SELECT to_regclass('schema_migrations')")).scalar() is None:
        return list(versions)
    applied = set(conn.execute(sa.text("SELECT version FROM schema_migrations")).scalars())
    return [v for v in versions if v not in applied]


def status(engine: sa.Engine, directory: Path = MIGRATIONS_DIR) -> list[Status]:
    """Each migration file with when it was applied (None if pending)."""
    migrations = discover(directory)
    with engine.connect() as conn:
        exists = conn.execute(sa.text("SELECT to_regclass('schema_migrations')")).scalar()
        applied = _applied(conn) if exists else {}
    _check_history(migrations, applied)
    return [
        Status(m, applied[m.version].applied_at if m.version in applied else None)
        for m in migrations
    ]


def data_steps(keys=None) -> dict[int, DataStep]:
    """The project's data steps: after 040, seal the invite codes stored in the clear.

    ``keys`` is the service's keyring; by default CODE_KEYS (or the development
    keys in .data/), read only if a step has work to do.
    """
    from app import code_keys

    def seal(conn: sa.Connection) -> None:
        plain = conn.execute(
            sa.text("SELECT count(*) FROM group_invites WHERE code_digest IS NULL")
        ).scalar_one()
        conn.commit()
        if plain:
            sealed = code_keys.seal_plain_codes(conn, keys or code_keys.from_environment())
            log.info("sealed %d invite codes stored in the clear", sealed)

    return {40: seal}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.migrate", description=__doc__)
    parser.add_argument("command", nargs="?", default="up", choices=["up", "status"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    from app.db import create_engine
    from app.local import ensure_database_url

    url, _server = ensure_database_url()
    engine = create_engine(url, pool_size=1)
    try:
        if args.command == "status":
            for row in status(engine):
                when = row.applied_at.isoformat() if row.applied_at else "pending"
                print(f"{row.migration.filename:40} {when}")
        else:
            applied = upgrade(engine, steps=data_steps())
            print(
                f"applied {len(applied)} migration(s)"
                + (": " + ", ".join(applied) if applied else "")
            )
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    except (sa.exc.DBAPIError, psycopg2.Error) as exc:
        detail = getattr(exc, "orig", None) or exc
        print(f"migrate: a migration failed and was rolled back: {detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
