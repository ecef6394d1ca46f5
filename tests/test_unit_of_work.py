"""The unit of work: services share the caller's transaction, on real PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import pytest
import sqlalchemy as sa

from app import errors
from app.code_keys import CodeKeyring
from app.db import create_engine
from app.services import Actor
from app.services import groups as group_service
from app.services import invites as invite_service
from app.unit_of_work import RetryTransaction, UnitOfWork, run, run_retrying
from tests.helpers import CODE_KEYS, scalar

KEYS = CodeKeyring.parse(CODE_KEYS)


def _groups_named(engine: sa.Engine, name: str) -> int:
    return scalar(engine, "SELECT count(*) FROM groups WHERE name = :name", name=name)


def _invites_of_groups_named(engine: sa.Engine, name: str) -> int:
    return scalar(
        engine,
        "SELECT count(*) FROM group_invites i JOIN groups g ON g.id = i.group_id"
        " WHERE g.name = :name",
        name=name,
    )


@pytest.fixture
def actor() -> Actor:
    return Actor(id=uuid.uuid4(), display_name="Uma Unit")


@pytest.fixture
def name() -> str:
    return f"UoW {uuid.uuid4().hex[:8]}"


def test_two_service_calls_commit_together(engine, actor, name):
    with UnitOfWork(engine) as uow:
        group = group_service.create_group(uow, actor, name=name)
        invite = invite_service.create_invite(uow, actor, group["id"], keys=KEYS, max_uses=3)
        uow.commit()
    assert _groups_named(engine, name) == 1
    assert _invites_of_groups_named(engine, name) == 1
    with UnitOfWork(engine) as uow:
        assert (
            invite_service.get_invite(uow, actor, group["id"], invite["id"], keys=KEYS)["max_uses"]
            == 3
        )


def test_a_failure_in_the_second_call_rolls_back_the_first(engine, actor, name):
    def group_with_an_invite() -> None:
        with UnitOfWork(engine) as uow:
            group = group_service.create_group(uow, actor, name=name)
            invite_service.create_invite(uow, actor, group["id"], keys=KEYS, max_active=0)
            uow.commit()

    with pytest.raises(errors.InviteLimitReached):
        group_with_an_invite()
    assert _groups_named(engine, name) == 0
    assert _invites_of_groups_named(engine, name) == 0


@pytest.mark.parametrize("ending", ["no commit", "rollback, then commit"])
def test_without_commit_neither_call_is_kept(engine, actor, name, ending):
    with UnitOfWork(engine) as uow:
        group = group_service.create_group(uow, actor, name=name)
        invite_service.create_invite(uow, actor, group["id"], keys=KEYS)
        if ending == "rollback, then commit":
            uow.rollback()
            uow.commit()  # nothing is left to commit
    assert _groups_named(engine, name) == 0
    assert _invites_of_groups_named(engine, name) == 0


def test_run_commits_what_the_use_case_did(engine, actor, name):
    group = run(engine, group_service.create_group, actor, name=name)
    assert group["your_role"] == "owner"
    assert _groups_named(engine, name) == 1


def test_input_refused_before_any_statement_takes_no_connection():
    # Nothing listens on this port: any attempt to connect would fail loudly.
    unreachable = create_engine("postgresql://nobody@127.0.0.1:9/none", pool_size=1)
    try:
        with pytest.raises(errors.InvalidCode), UnitOfWork(unreachable) as uow:
            invite_service.preview_invite(uow, "not a code", keys=KEYS)
        with pytest.raises(sa.exc.OperationalError), UnitOfWork(unreachable) as uow:
            invite_service.preview_invite(uow, "ABC-234-XYZ", keys=KEYS)
    finally:
        unreachable.dispose()


def _insert_user_then(outcomes: list[str], user_id: uuid.UUID):
    """A use case that writes, then retries, fails or succeeds as ``outcomes`` says."""
    calls: list[str] = []

    def use_case(uow: UnitOfWork) -> int:
        uow.conn.execute(sa.text("INSERT INTO users (id) VALUES (:id)"), {"id": user_id})
        outcome = outcomes[len(calls)]
        calls.append(outcome)
        if outcome == "retry":
            raise RetryTransaction
        return len(calls)

    return use_case, calls


def test_a_retried_use_case_starts_from_a_clean_transaction(engine):
    user_id = uuid.uuid4()
    # Each attempt inserts the same user: a leftover from an attempt that
    # asked to retry would make the next one fail on the primary key.
    use_case, calls = _insert_user_then(["retry", "retry", "ok"], user_id)
    assert run_retrying(engine, 3, errors.InviteBusy, use_case) == 3
    assert calls == ["retry", "retry", "ok"]
    assert scalar(engine, "SELECT count(*) FROM users WHERE id = :id", id=user_id) == 1


def test_retries_give_up_and_leave_nothing(engine):
    user_id = uuid.uuid4()
    use_case, calls = _insert_user_then(["retry"] * 3, user_id)
    with pytest.raises(errors.InviteBusy):
        run_retrying(engine, 3, errors.InviteBusy, use_case)
    assert len(calls) == 3
    assert scalar(engine, "SELECT count(*) FROM users WHERE id = :id", id=user_id) == 0


def test_other_database_errors_are_not_retried(engine):
    calls: list[int] = []

    def use_case(uow: UnitOfWork) -> None:
        calls.append(1)
        uow.conn.execute(sa.text("SELECT 1/0"))

    with pytest.raises(sa.exc.DataError):
        run_retrying(engine, 3, errors.InviteBusy, use_case)
    assert calls == [1]


def test_a_read_runs_each_statement_in_its_own_transaction(database_url):
    """No transaction around a read (no COMMIT round trip): two statements, two
    transactions, each with its own start time; and the pooled connection it
    used is transactional again for the next unit of work."""
    from app.unit_of_work import read

    engine = create_engine(database_url, pool_size=1)

    def two_statements(uow):
        first = uow.conn.execute(sa.text("SELECT transaction_timestamp()")).scalar_one()
        uow.conn.execute(sa.text("SELECT pg_sleep(0.01)"))
        second = uow.conn.execute(sa.text("SELECT transaction_timestamp()")).scalar_one()
        return first, second

    try:
        first, second = read(engine, two_statements)
        assert second > first
        # ...while run(), on the same pooled connection, keeps one transaction.
        first, second = run(engine, two_statements)
        assert second == first
        assert engine.pool.checkedin() == 1  # one connection served both
    finally:
        engine.dispose()


def test_a_join_that_waited_for_another_counts_both(engine, api, owner, group):
    """The join's one statement reads the member count in its snapshot; a joiner of
    the same invite that committed while this one waited for the invite's row lock
    is not in it, so the count is read again."""
    code = api.create_invite(owner, group["id"], max_uses=5)["code"]
    first, second = (Actor(id=uuid.uuid4(), display_name=n) for n in ("First", "Second"))
    pool = create_engine(engine.url.render_as_string(hide_password=False), pool_size=2)
    try:
        with UnitOfWork(pool) as uow:
            joined_first = invite_service.join_group(uow, first, code, keys=KEYS)
            assert joined_first["group"]["member_count"] == 2
            with concurrent.futures.ThreadPoolExecutor(1) as executor:
                waiting = executor.submit(
                    run, pool, invite_service.join_group, second, code, keys=KEYS
                )
                _wait_for_a_lock_wait(engine)  # the second holds its snapshot, and waits
                uow.commit()
                joined_second = waiting.result(timeout=30)
    finally:
        pool.dispose()
    assert joined_second["group"]["member_count"] == 3  # owner, first and second


def _wait_for_a_lock_wait(engine: sa.Engine) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = scalar(
            engine,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the second join never waited for the first")


def test_a_committed_join_is_answered_even_if_reading_its_group_again_fails(
    database_url, engine, actor
):
    """In autocommit the join has committed before its group is read again: a failed
    read falls back to what the join's statement saw; in a transaction it fails it."""
    with UnitOfWork(engine) as uow:
        group = group_service.create_group(uow, actor, name="Read again")
        uow.commit()
    impatient = create_engine(database_url, pool_size=1, statement_timeout_ms=200)
    try:
        with engine.connect() as holder:
            holder.execute(sa.text("LOCK TABLE groups IN ACCESS EXCLUSIVE MODE"))
            with UnitOfWork(impatient, autocommit=True) as uow:
                assert invite_service._fresh_summary(uow, group["id"]) is None
            with pytest.raises(sa.exc.OperationalError), UnitOfWork(impatient) as uow:
                invite_service._fresh_summary(uow, group["id"])
            holder.rollback()
        with UnitOfWork(impatient, autocommit=True) as uow:
            summary = invite_service._fresh_summary(uow, group["id"])
        assert summary == {"id": group["id"], "name": "Read again", "member_count": 1}
    finally:
        impatient.dispose()
