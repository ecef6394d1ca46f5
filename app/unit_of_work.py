"""The unit of work: one transaction around one use case, owned by its caller.

Services receive a ``UnitOfWork`` and do their work in ``uow.conn``; they
never begin, commit or roll back. Whoever calls them (the HTTP layer, a
script, a test) decides what shares the transaction::

    with UnitOfWork(engine) as uow:
        group = groups.create_group(uow, actor, name="Smith Family")
        invite = invites.create_invite(uow, actor, group["id"])
        uow.commit()

Leaving the block without ``commit()`` rolls everything back, so a failure
halfway, or a forgotten commit, never leaves half a use case behind.

A unit of work in autocommit runs each statement as its own transaction: no
BEGIN or COMMIT round trips. It is for use cases whose every statement is a
whole decision by itself: reads (``read``), and the hot writes that are one
statement, or one ``Batch`` of statements that PostgreSQL runs as one
transaction (``run_statements_retrying``: creating an invite, joining with a code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa

P = ParamSpec("P")
T = TypeVar("T")

# PostgreSQL rolled the transaction back and says trying again may succeed.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure


class RetryTransaction(Exception):
    """Raised inside a unit of work: roll it back and run the use case again."""


class UnitOfWork:
    """One transaction, or with ``autocommit`` one per statement; the connection
    is taken from the pool at first use, so a request refused on its input
    alone never holds one."""

    def __init__(self, engine: sa.Engine, *, autocommit: bool = False):
        self._engine = engine
        self.autocommit = autocommit
        self._conn: sa.Connection | None = None

    @property
    def conn(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
            if self.autocommit:
                # psycopg2's own switch, which stays in the client; SQLAlchemy's
                # isolation_level="AUTOCOMMIT" would send a SET each way.
                self._conn.connection.dbapi_connection.autocommit = True
            else:
                self._conn.begin()
        return self._conn

    def commit(self) -> None:
        if self._conn is not None and not self.autocommit:
            self._conn.commit()

    def rollback(self) -> None:
        if self._conn is not None and not self.autocommit:
            self._conn.rollback()

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._conn is not None:
            try:
                if self.autocommit:
                    self._end_autocommit()
                else:
                    self._conn.rollback()  # a no-op after commit()
            finally:
                self._conn.close()
                self._conn = None

    def _end_autocommit(self) -> None:
        if self._conn.invalidated:
            return  # its DBAPI connection is gone, never to be pooled again
        raw = self._conn.connection.dbapi_connection
        if raw is not None and not raw.closed:
            raw.autocommit = False  # back to the pool as every connection is


def run(
    engine: sa.Engine,
    use_case: Callable[Concatenate[UnitOfWork, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run ``use_case(uow, *args, **kwargs)`` in its own unit of work and commit."""
    with UnitOfWork(engine) as uow:
        result = use_case(uow, *args, **kwargs)
        uow.commit()
    return result


def read(
    engine: sa.Engine,
    use_case: Callable[Concatenate[UnitOfWork, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run ``use_case(uow, *args, **kwargs)``, which only reads, without a transaction
    of its own around it: each statement sees the database as it commits."""
    with UnitOfWork(engine, autocommit=True) as uow:
        return use_case(uow, *args, **kwargs)


def run_retrying(
    engine: sa.Engine,
    attempts: int,
    give_up: Callable[[], Exception],
    use_case: Callable[Concatenate[UnitOfWork, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``run``, again in a fresh unit of work (up to ``attempts`` in all) when the use
    case asks to (``RetryTransaction``) or PostgreSQL rolled it back for a deadlock
    or a serialization failure; then raise ``give_up()``."""
    return _retrying(lambda: UnitOfWork(engine), attempts, give_up, use_case, args, kwargs)


def run_statements_retrying(
    engine: sa.Engine,
    attempts: int,
    give_up: Callable[[], Exception],
    use_case: Callable[Concatenate[UnitOfWork, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``run_retrying`` in a unit of work in autocommit, for a use case each of whose
    statements (or batches) is a whole decision: a deadlock or a serialization
    failure undid the one statement it broke."""
    return _retrying(
        lambda: UnitOfWork(engine, autocommit=True), attempts, give_up, use_case, args, kwargs
    )


def _retrying(unit, attempts, give_up, use_case, args, kwargs):
    for _ in range(attempts):
        try:
            with unit() as uow:
                result = use_case(uow, *args, **kwargs)
                uow.commit()
            return result
        except RetryTransaction:
            continue
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "pgcode", None) not in RETRYABLE_SQLSTATES:
                raise
    raise give_up()
