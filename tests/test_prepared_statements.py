"""Hot statements are prepared once per connection (app/repository/prepared.py), and
the server keeps one generic plan for them."""

from __future__ import annotations

import functools
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from app.db import create_engine
from app.repository import invites
from app.repository.prepared import Batch, Prepared

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


def _owned_group(engine) -> tuple[uuid.UUID, uuid.UUID]:
    """A new group and its owner, inserted directly."""
    group_id = uuid.uuid4()
    with engine.begin() as setup:
        owner = setup.execute(
            sa.text("INSERT INTO users (id) VALUES (gen_random_uuid()) RETURNING id")
        ).scalar_one()
        setup.execute(
            sa.text("INSERT INTO groups (id, name, created_by) VALUES (:g, 'Locked', :o)"),
            {"g": group_id, "o": owner},
        )
        setup.execute(
            sa.text(
                "INSERT INTO group_memberships (group_id, user_id, role) VALUES (:g, :o, 'owner')"
            ),
            {"g": group_id, "o": owner},
        )
    return group_id, owner


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
    """The statements run on the psycopg2 cursor; their errors are SQLAlchemy's all the same.
    Here a batch (the group's lock, then the mint) times out waiting for the lock."""
    from app.repository import groups

    group_id, owner = _owned_group(engine)
    mint = functools.partial(
        invites.mint,
        group_id=group_id,
        code_digest=b"\x01" * 32,
        code_sealed=b"\x02" * 39,
        code_key="k1",
        digests=[b"\x01" * 32],
        preset_role="member",
        max_uses=1,
        expires_in_hours=1,
        created_by=owner,
        display_name="Owner",
        may_mint=["owner"],
        max_active=10,
    )
    impatient = create_engine(database_url, pool_size=1, statement_timeout_ms=200)
    try:
        with engine.connect() as holder, impatient.connect() as conn:
            holder.execute(
                sa.text("SELECT 1 FROM groups WHERE id = :g FOR UPDATE"), {"g": group_id}
            )
            conn.begin()
            with pytest.raises(sa.exc.OperationalError) as caught:
                mint(conn)
            assert caught.value.orig.pgcode == "57014"  # statement timeout
            assert str(group_id) not in str(caught.value)
            assert "hidden due to hide_parameters" in str(caught.value)
            conn.rollback()
            holder.rollback()
            assert groups.role_of(conn, group_id, owner) == "owner"  # the connection still serves
            conn.rollback()
    finally:
        impatient.dispose()


def test_a_batch_in_autocommit_is_one_transaction(one_connection):
    """A failure in a later statement of a batch undoes the earlier ones."""
    user_id = uuid.uuid4()
    batch = Batch(
        Prepared("test_insert_user", "INSERT INTO users (id) VALUES (:user_id)"),
        Prepared("test_fail", "SELECT 1 / (count(*) - 1) FROM users WHERE id = :user_id"),
    )
    with one_connection.connect() as conn:
        conn.connection.dbapi_connection.autocommit = True
        with pytest.raises(sa.exc.DataError):  # division by zero: the user was there
            batch.rows(conn, {"user_id": user_id})
        count = conn.execute(sa.text("SELECT count(*) FROM users WHERE id = :u"), {"u": user_id})
        assert count.scalar_one() == 0
        conn.connection.dbapi_connection.autocommit = False


def test_each_statement_of_a_batch_sees_what_committed_while_it_waited(one_connection, engine):
    """The second statement's snapshot is taken after the first got its lock: what the
    lock's holder committed meanwhile is seen (the invite cap relies on this)."""
    from app.repository import groups

    group_id, _ = _owned_group(engine)
    later = uuid.uuid4()
    batch = Batch(
        groups.LOCK_GROUP,
        Prepared("test_count_user", "SELECT count(*) AS n FROM users WHERE id = :user_id"),
    )
    result = {}

    def wait_for_the_lock(conn):
        try:
            result.update(batch.one(conn, {"group_id": group_id, "user_id": later}))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    with engine.connect() as holder, one_connection.connect() as conn:
        conn.connection.dbapi_connection.autocommit = True
        holder.execute(sa.text("SELECT 1 FROM groups WHERE id = :g FOR UPDATE"), {"g": group_id})
        holder.execute(sa.text("INSERT INTO users (id) VALUES (:u)"), {"u": later})
        waiter = threading.Thread(target=wait_for_the_lock, args=(conn,))
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive()  # waiting for the group's lock
        holder.commit()
        waiter.join(timeout=30)
        assert not waiter.is_alive()
        conn.connection.dbapi_connection.autocommit = False
    assert result == {"n": 1}
