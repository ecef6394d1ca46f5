"""The migration runner (app.migrate) against real PostgreSQL.

Each test gets its own fresh schema (the ``db`` fixture in conftest.py), so
runs never see each other's ledgers or tables. The tests use tiny SQL files
in a temporary directory; tests/test_schema.py applies the real ``migrations/``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from app.db import create_engine
from app.migrate import (
    ADVISORY_LOCK_KEY,
    LEDGER_DDL,
    MIGRATIONS_DIR,
    MigrationError,
    status,
    upgrade,
)
from tests.helpers import scalar, table_exists

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _ledger(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        exists = conn.execute(sa.text("SELECT to_regclass('schema_migrations')")).scalar()
        if exists is None:
            return []
        rows = conn.execute(
            sa.text(
                "SELECT version, filename, checksum, applied_at, execution_ms"
                " FROM schema_migrations ORDER BY version::int"
            )
        )
        return [dict(row) for row in rows.mappings()]


def _lock_is_free(database_url: str) -> bool:
    """Whether another session can take the runner's advisory lock.

    Retried briefly: another test run sharing the database may hold it for a moment.
    """
    other = create_engine(database_url, pool_size=1)
    try:
        deadline = time.monotonic() + 5
        with other.connect() as conn:
            while True:
                taken = conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                ).scalar()
                if taken:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
                    )
                conn.commit()
                if taken or time.monotonic() > deadline:
                    return bool(taken)
                time.sleep(0.1)
    finally:
        other.dispose()


# --- applying -----------------------------------------------------------------


def test_applies_in_numeric_order_and_records_each_file(database_url, db, migrations):
    migrations.write("999_second.sql", "INSERT INTO trail (version) VALUES ('999');")
    # Lexically "1000" sorts before "999"; the runner must order by number.
    migrations.write("1000_third.sql", "INSERT INTO trail (version) VALUES ('1000');")
    migrations.write(
        "001_first.sql",
        "CREATE TABLE trail (seq serial PRIMARY KEY, version text NOT NULL);\n"
        "INSERT INTO trail (version) VALUES ('001');\n",
    )
    migrations.write("002_slow.sql", "SELECT pg_sleep(0.2);")
    migrations.write("README.md", "not a migration")
    before = dt.datetime.now(dt.UTC)

    applied = upgrade(db, migrations.path)

    after = dt.datetime.now(dt.UTC)
    assert applied == ["001_first.sql", "002_slow.sql", "999_second.sql", "1000_third.sql"]
    with db.connect() as conn:
        trail = conn.execute(sa.text("SELECT version FROM trail ORDER BY seq")).scalars().all()
    assert trail == ["001", "999", "1000"]

    ledger = _ledger(db)
    assert [int(row["version"]) for row in ledger] == [1, 2, 999, 1000]
    assert [row["filename"] for row in ledger] == applied
    for row in ledger:
        raw = (migrations.path / row["filename"]).read_bytes()
        assert row["checksum"] == hashlib.sha256(raw).hexdigest()
        assert row["applied_at"].tzinfo is not None
        # The database clock and ours may differ slightly.
        assert (
            before - dt.timedelta(seconds=5) <= row["applied_at"] <= after + dt.timedelta(seconds=5)
        )
        assert isinstance(row["execution_ms"], int)
        assert row["execution_ms"] >= 0
    slow = next(row for row in ledger if int(row["version"]) == 2)
    assert slow["execution_ms"] >= 200
    assert _lock_is_free(database_url)


def test_second_run_is_a_no_op(db, migrations):
    migrations.write("001_table.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    migrations.write("002_row.sql", "INSERT INTO things VALUES (1);")
    assert upgrade(db, migrations.path) == ["001_table.sql", "002_row.sql"]
    ledger = _ledger(db)

    assert upgrade(db, migrations.path) == []
    assert upgrade(db, migrations.path) == []

    assert _ledger(db) == ledger
    assert scalar(db, "SELECT count(*) FROM things") == 1


def test_new_files_after_the_applied_ones_are_applied_later(db, migrations):
    migrations.write("001_table.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    assert upgrade(db, migrations.path) == ["001_table.sql"]
    migrations.write("002_row.sql", "INSERT INTO things VALUES (2);")
    migrations.write("003_row.sql", "INSERT INTO things VALUES (3);")

    assert upgrade(db, migrations.path) == ["002_row.sql", "003_row.sql"]
    assert [int(row["version"]) for row in _ledger(db)] == [1, 2, 3]


def test_a_file_with_literal_percent_signs_is_run_as_is(db, migrations):
    migrations.write(
        "001_percent.sql",
        "CREATE TABLE notes (body text NOT NULL);\n"
        "INSERT INTO notes VALUES ('100% sure'), ('%s and %(name)s and %%');\n"
        "-- a comment with a % sign\n"
        "CREATE INDEX notes_like ON notes (body) WHERE body LIKE '%sure';\n",
    )

    assert upgrade(db, migrations.path) == ["001_percent.sql"]
    with db.connect() as conn:
        bodies = conn.execute(sa.text("SELECT body FROM notes ORDER BY body")).scalars().all()
    assert sorted(bodies) == sorted(["100% sure", "%s and %(name)s and %%"])


def test_a_file_with_several_statements_and_non_ascii_text(db, migrations):
    migrations.write(
        "001_many.sql",
        "CREATE TABLE a (v text);\nCREATE TABLE b (v text);\nINSERT INTO a VALUES ('Grüße 🏡');\n",
    )
    upgrade(db, migrations.path)
    assert scalar(db, "SELECT v FROM a") == "Grüße 🏡"
    assert table_exists(db, "b")


def test_an_empty_directory_creates_only_the_ledger(db, migrations):
    assert upgrade(db, migrations.path) == []
    assert table_exists(db, "schema_migrations")
    assert _ledger(db) == []


# --- refusing a history that does not match -------------------------------------


def test_a_changed_applied_file_is_refused_and_nothing_is_applied(db, migrations):
    first = migrations.write("001_table.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    migrations.write("002_row.sql", "INSERT INTO things VALUES (2);")
    upgrade(db, migrations.path)
    ledger = _ledger(db)

    first.write_text("CREATE TABLE things (id bigint PRIMARY KEY);", encoding="utf-8")
    migrations.write("003_other.sql", "CREATE TABLE other (id int);")

    with pytest.raises(MigrationError, match=r"001_table\.sql was changed after it was applied"):
        upgrade(db, migrations.path)
    with pytest.raises(MigrationError, match="changed after it was applied"):
        status(db, migrations.path)
    assert _ledger(db) == ledger
    assert not table_exists(db, "other")


def test_a_whitespace_only_change_counts_as_a_change(db, migrations):
    first = migrations.write("001_table.sql", "CREATE TABLE things (id int);")
    upgrade(db, migrations.path)
    first.write_text("CREATE TABLE things (id int);\n", encoding="utf-8")

    with pytest.raises(MigrationError, match="changed after it was applied"):
        upgrade(db, migrations.path)


@pytest.mark.parametrize("deleted", ["001_table.sql", "002_row.sql"])
def test_a_deleted_applied_file_is_refused(db, migrations, deleted):
    migrations.write("001_table.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    migrations.write("002_row.sql", "INSERT INTO things VALUES (2);")
    upgrade(db, migrations.path)
    ledger = _ledger(db)
    (migrations.path / deleted).unlink()
    migrations.write("003_other.sql", "CREATE TABLE other (id int);")

    with pytest.raises(MigrationError, match=rf"{deleted} was applied but is no longer"):
        upgrade(db, migrations.path)
    assert _ledger(db) == ledger
    assert not table_exists(db, "other")


def test_a_new_file_older_than_the_newest_applied_is_refused(db, migrations):
    migrations.write("001_table.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    migrations.write("003_row.sql", "INSERT INTO things VALUES (3);")
    upgrade(db, migrations.path)
    ledger = _ledger(db)

    migrations.write("002_late.sql", "CREATE TABLE late (id int);")
    migrations.write("004_next.sql", "CREATE TABLE next (id int);")

    with pytest.raises(MigrationError, match=r"002_late\.sql is older than migrations"):
        upgrade(db, migrations.path)
    with pytest.raises(MigrationError, match="older than migrations already applied"):
        status(db, migrations.path)
    assert _ledger(db) == ledger
    assert not table_exists(db, "late")
    assert not table_exists(db, "next")


# --- a failing migration --------------------------------------------------------


def test_a_failing_migration_rolls_back_only_itself(database_url, db, migrations):
    migrations.write("001_ok.sql", "CREATE TABLE kept (id int);")
    broken = migrations.write(
        "002_broken.sql",
        "CREATE TABLE partial (id int);\nINSERT INTO partial VALUES (1);\nSELECT 1 / 0;\n",
    )
    migrations.write("003_after.sql", "CREATE TABLE after_broken (id int);")

    with pytest.raises(psycopg2.errors.DivisionByZero):
        upgrade(db, migrations.path)

    assert [row["filename"] for row in _ledger(db)] == ["001_ok.sql"]
    assert table_exists(db, "kept")
    assert not table_exists(db, "partial")
    assert not table_exists(db, "after_broken")
    # The advisory lock was released although the run failed.
    assert _lock_is_free(database_url)

    # The failed file was never recorded, so it may be fixed in place.
    broken.write_text("CREATE TABLE partial (id int);\n", encoding="utf-8")
    assert upgrade(db, migrations.path) == ["002_broken.sql", "003_after.sql"]
    assert table_exists(db, "partial")
    assert table_exists(db, "after_broken")


def test_a_failing_first_migration_leaves_an_empty_ledger(db, migrations):
    migrations.write("001_bad.sql", "CREATE TABLE t (id int); CREATE TABLE t (id int);")
    with pytest.raises(psycopg2.errors.DuplicateTable):
        upgrade(db, migrations.path)
    assert _ledger(db) == []
    assert not table_exists(db, "t")


# --- the directory itself ---------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        "1_init.sql",  # fewer than three digits
        "01_init.sql",
        "init.sql",
        "001-init.sql",
        "001_Init.sql",
        "001_init-table.sql",
        "001_.sql",
        "001_init.v2.sql",
        "001 init.sql",
        "v001_init.sql",
    ],
)
def test_a_badly_named_file_is_refused_before_anything_runs(db, migrations, filename):
    migrations.write("002_good.sql", "CREATE TABLE good (id int);")
    migrations.write(filename, "CREATE TABLE bad (id int);")

    with pytest.raises(MigrationError, match="expected a name like"):
        upgrade(db, migrations.path)
    with pytest.raises(MigrationError, match="expected a name like"):
        status(db, migrations.path)
    assert not table_exists(db, "schema_migrations")
    assert not table_exists(db, "good")


@pytest.mark.parametrize(
    ("first", "second"),
    [("002_one.sql", "002_two.sql"), ("020_one.sql", "0020_two.sql")],
    ids=["same-spelling", "equal-as-numbers"],
)
def test_duplicate_versions_are_refused(db, migrations, first, second):
    # Versions are ordered as numbers, so 020 and 0020 are the same place too.
    migrations.write(first, "CREATE TABLE one (id int);")
    migrations.write(second, "CREATE TABLE two (id int);")

    with pytest.raises(MigrationError, match=r"\.sql: version \d+ is also"):
        upgrade(db, migrations.path)
    assert not table_exists(db, "one")
    assert not table_exists(db, "two")


def test_a_ledger_with_zero_padded_versions_is_still_understood(db, migrations):
    """Databases migrated so far recorded versions as spelled in the filename ('010')."""
    first = migrations.write("001_table.sql", "CREATE TABLE things (id int);")
    migrations.write("002_row.sql", "INSERT INTO things VALUES (2);")
    checksum = hashlib.sha256(first.read_bytes()).hexdigest()
    with db.begin() as conn:
        conn.execute(sa.text(LEDGER_DDL))
        conn.execute(sa.text("CREATE TABLE things (id int)"))
        conn.execute(
            sa.text(
                "INSERT INTO schema_migrations (version, filename, checksum, execution_ms)"
                " VALUES ('001', '001_table.sql', :checksum, 1)"
            ),
            {"checksum": checksum},
        )

    assert [s.applied_at is not None for s in status(db, migrations.path)] == [True, False]
    assert upgrade(db, migrations.path) == ["002_row.sql"]
    assert upgrade(db, migrations.path) == []
    assert [row["filename"] for row in _ledger(db)] == ["001_table.sql", "002_row.sql"]


# --- status ---------------------------------------------------------------------


def test_status_lists_pending_and_applied(db, migrations):
    migrations.write("001_table.sql", "CREATE TABLE things (id int);")
    migrations.write("002_row.sql", "INSERT INTO things VALUES (2);")

    before = status(db, migrations.path)
    assert [(s.migration.filename, s.applied_at) for s in before] == [
        ("001_table.sql", None),
        ("002_row.sql", None),
    ]
    # Looking does not create the ledger.
    assert not table_exists(db, "schema_migrations")

    upgrade(db, migrations.path)
    migrations.write("003_more.sql", "INSERT INTO things VALUES (3);")

    after = status(db, migrations.path)
    assert [int(s.migration.version) for s in after] == [1, 2, 3]
    assert [s.migration.filename for s in after] == ["001_table.sql", "002_row.sql", "003_more.sql"]
    assert all(isinstance(s.applied_at, dt.datetime) for s in after[:2])
    assert after[2].applied_at is None
    ledger = {row["version"]: row for row in _ledger(db)}
    for item in after[:2]:
        assert item.applied_at == ledger[item.migration.version]["applied_at"]
        assert item.migration.checksum == ledger[item.migration.version]["checksum"]
    # status never applies anything.
    assert scalar(db, "SELECT count(*) FROM things") == 1
    assert len(_ledger(db)) == 2


# --- concurrency ----------------------------------------------------------------


def test_concurrent_runs_apply_each_migration_exactly_once(make_engine, migrations):
    migrations.write("001_trail.sql", "CREATE TABLE trail (version text NOT NULL);")
    migrations.write(
        "002_slow.sql", "SELECT pg_sleep(0.5);\nINSERT INTO trail (version) VALUES ('002');\n"
    )
    migrations.write("003_last.sql", "INSERT INTO trail (version) VALUES ('003');")
    engines = [make_engine(), make_engine()]
    for engine in engines:
        # Connect before the barrier, so both runs really start together.
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    barrier = threading.Barrier(len(engines), timeout=30)
    results: dict[int, list[str]] = {}
    durations: dict[int, float] = {}
    errors: dict[int, BaseException] = {}

    def run(index: int) -> None:
        try:
            barrier.wait()
            started = time.perf_counter()
            results[index] = upgrade(engines[index], migrations.path)
            durations[index] = time.perf_counter() - started
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(engines))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.perf_counter() - started

    assert not any(thread.is_alive() for thread in threads)
    assert errors == {}
    combined = results[0] + results[1]
    assert sorted(combined) == ["001_trail.sql", "002_slow.sql", "003_last.sql"]
    # One run did everything while the other waited for the lock (so they overlapped).
    assert sorted(len(r) for r in results.values()) == [0, 3]
    waiter = next(index for index, done in results.items() if not done)
    assert durations[waiter] >= 0.25, durations
    assert [int(row["version"]) for row in _ledger(engines[0])] == [1, 2, 3]
    with engines[0].connect() as conn:
        trail = conn.execute(
            sa.text("SELECT version, count(*) FROM trail GROUP BY version ORDER BY version")
        ).all()
    assert [tuple(row) for row in trail] == [("002", 1), ("003", 1)]
    assert elapsed >= 0.5


def test_a_waiting_run_is_not_cancelled_by_the_statement_timeout(make_engine, migrations):
    migrations.write("001_slow.sql", "SELECT pg_sleep(0.4);")
    migrations.write("002_slow.sql", "SELECT pg_sleep(0.4);")
    # A short timeout stands in for the default 5 s and a longer migration run.
    engines = [make_engine(statement_timeout_ms=500), make_engine(statement_timeout_ms=500)]
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def run(engine: sa.Engine) -> None:
        try:
            barrier.wait()
            upgrade(engine, migrations.path)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []


def test_a_slow_migration_is_not_cancelled_by_the_statement_timeout(make_engine, migrations):
    # The app's engines cancel statements after 5 s; a migration (an index on a
    # big table) may legitimately take longer.
    migrations.write("001_slow.sql", "SELECT pg_sleep(0.5);")
    engine = make_engine(statement_timeout_ms=200)

    assert upgrade(engine, migrations.path) == ["001_slow.sql"]


def test_the_engine_keeps_its_statement_timeout_after_a_run(make_engine, migrations):
    """Whatever the runner changes for its own session must not stay on a pooled connection."""
    migrations.write("001_table.sql", "CREATE TABLE things (id int);")
    engine = make_engine(statement_timeout_ms=1234)  # pool_size=1: the same connection again

    upgrade(engine, migrations.path)

    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "1234ms"
        assert conn.execute(sa.text("SHOW search_path")).scalar().strip('"').startswith("mig_")


# --- the command line -------------------------------------------------------------


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("APP_ENV", None)
    return subprocess.run(
        [sys.executable, "-m", "app.migrate", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_status_and_up_on_the_migrated_test_database(database_url, engine):
    # ``engine`` (conftest) has already migrated the test database.
    names = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))

    shown = _cli(database_url, "status")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split()[0] for line in lines] == names
    for line in lines:
        assert "pending" not in line
        dt.datetime.fromisoformat(line.split()[1])

    up = _cli(database_url, "up")
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == "applied 0 migration(s)"

    default = _cli(database_url)
    assert default.returncode == 0, default.stderr
    assert default.stdout.strip() == "applied 0 migration(s)"


def test_cli_rejects_an_unknown_command(database_url):
    result = _cli(database_url, "down")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


# --- files that can never apply cleanly, and a database ahead of the code -----------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "has no SQL statements"),
        (b"-- only a comment\n/* and a block */\n", "has no SQL statements"),
        (b"SELECT '\xff\xfe';", "not UTF-8 text"),
    ],
    ids=["empty", "comments-only", "not-utf8"],
)
def test_unusable_files_are_refused_before_anything_runs(db, migrations, content, message):
    migrations.write("001_table.sql", "CREATE TABLE things (id int);")
    (migrations.path / "002_bad.sql").write_bytes(content)
    with pytest.raises(MigrationError, match=message):
        upgrade(db, migrations.path)
    assert not table_exists(db, "things")


def test_a_database_ahead_of_the_code_is_tolerated(db, migrations):
    migrations.write("001_table.sql", "CREATE TABLE things (id int);")
    newer = migrations.write("002_newer.sql", "CREATE TABLE newer (id int);")
    upgrade(db, migrations.path)
    newer.unlink()  # the previous release, started after the new one migrated
    assert upgrade(db, migrations.path) == []
    assert [row.migration.filename for row in status(db, migrations.path)] == ["001_table.sql"]
