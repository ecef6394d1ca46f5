"""Hot statements are prepared once per connection (app/repository/prepared.py), and
the server keeps one generic plan for them."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from app.db import create_engine
from app.repository import invites

NO_SUCH_DIGEST = [b"\x00" * 32]


@pytest.fixture
def one_connection(database_url, engine):  # engine: the schema is migrated
    eng = create_engine(database_url, pool_size=1)
    yield eng
    eng.dispose()


def _backend_pid(conn) -> int:
    return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def _prepared(conn) -> list[str]:
    return conn.exec_driver_sql("SELECT name FROM pg_prepared_statements").scalars().all()


def test_a_statement_is_prepared_once_and_outlives_a_rollback(one_connection):
    with one_connection.connect() as conn:
        assert invites.preview(conn, NO_SUCH_DIGEST) is None
        conn.rollback()  # PREPARE is not undone by it; the connection remembers
        for _ in range(3):
            assert invites.preview(conn, NO_SUCH_DIGEST) is None
        assert _prepared(conn) == ["invite_preview"]
        conn.rollback()
    # Back from the pool: the same server session, nothing prepared twice.
    with one_connection.connect() as conn:
        assert invites.preview(conn, NO_SUCH_DIGEST) is None
        assert _prepared(conn) == ["invite_preview"]
        conn.rollback()


def test_a_replaced_connection_prepares_again(one_connection):
    with one_connection.connect() as conn:
        assert invites.preview(conn, NO_SUCH_DIGEST) is None
        pid = _backend_pid(conn)
        conn.invalidate()  # as after a lost connection
        conn.rollback()
        assert invites.preview(conn, NO_SUCH_DIGEST) is None
        assert _backend_pid(conn) != pid
        assert _prepared(conn) == ["invite_preview"]
        conn.rollback()


def test_prepared_statements_keep_one_generic_plan(one_connection):
    with one_connection.connect() as conn:
        assert invites.preview(conn, NO_SUCH_DIGEST) is None
        mode = conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one()
        plans = conn.exec_driver_sql(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
        ).one()
        assert mode == "force_generic_plan"
        assert tuple(plans) == (1, 0)
        conn.rollback()


def test_a_connection_that_lost_its_statements_is_replaced(one_connection):
    with one_connection.connect() as conn:
        assert invites.preview(conn, NO_SUCH_DIGEST) is None
        pid = _backend_pid(conn)
        conn.exec_driver_sql("DEALLOCATE ALL")  # as a pooler's DISCARD ALL would
        with pytest.raises(sa.exc.DBAPIError):
            invites.preview(conn, NO_SUCH_DIGEST)
        assert conn.invalidated
        conn.rollback()
        # The next use gets a fresh session, which prepares again.
        assert invites.preview(conn, NO_SUCH_DIGEST) is None
        assert _backend_pid(conn) != pid
        conn.rollback()


def test_a_failed_execute_is_sqlalchemys_exception_with_its_parameters_hidden(database_url, engine):
    """The statement runs on the psycopg2 cursor; its errors are SQLAlchemy's all the same."""
    from app.repository import groups

    group_id = uuid.uuid4()
    with engine.begin() as setup:
        owner = setup.execute(
            sa.text("INSERT INTO users (id) VALUES (gen_random_uuid()) RETURNING id")
        ).scalar_one()
        setup.execute(
            sa.text("INSERT INTO groups (id, name, created_by) VALUES (:g, 'Locked', :o)"),
            {"g": group_id, "o": owner},
        )
    impatient = create_engine(database_url, pool_size=1, statement_timeout_ms=200)
    try:
        with engine.connect() as holder, impatient.connect() as conn:
            holder.execute(
                sa.text("SELECT 1 FROM groups WHERE id = :g FOR UPDATE"), {"g": group_id}
            )
            conn.begin()
            with pytest.raises(sa.exc.OperationalError) as caught:
                groups.lock_group(conn, group_id)
            assert caught.value.orig.pgcode == "57014"  # statement timeout
            assert str(group_id) not in str(caught.value)
            assert "hidden due to hide_parameters" in str(caught.value)
            conn.rollback()
            holder.rollback()
            assert groups.lock_group(conn, group_id) is True  # the connection still serves
            conn.rollback()
    finally:
        impatient.dispose()
