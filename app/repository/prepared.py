"""Hot statements planned once per connection: PREPARE the first time a pooled
connection runs one, EXECUTE it by name from then on.

The preview's and the join's statements take longer for PostgreSQL to plan
than to run (the authority and member-count subqueries): a server-side
prepared statement pays that once per connection, not once per request.
PREPARE outlives a rolled-back transaction, so what a connection has
prepared is remembered with the connection (``Connection.info``), however
its transactions end. This needs a session per connection: behind a pooler
in transaction mode (PgBouncer's ``pool_mode = transaction``, whose support
for prepared statements since 1.21 covers the protocol's, not SQL
``PREPARE``) statements would have to be plain ``text()`` again.

EXECUTE goes to the pooled connection's psycopg2 cursor, inside the
SQLAlchemy connection and transaction the caller holds: SQLAlchemy's
execution context and result objects cost more CPU than the preview's
statement itself (about 65 µs of a statement's 105). Nothing else changes:
the statement is fixed SQL with bound parameters; the transaction is
SQLAlchemy's (begun as its own ``execute`` would begin it); and an error goes
through SQLAlchemy's own handling. It comes out as the same
``sqlalchemy.exc`` exception, and a lost server invalidates the connection and
the pool, as a failed ``execute`` would.
"""

from __future__ import annotations

import re

import psycopg2
import sqlalchemy as sa

# ``:name`` bind parameters; not ``::type`` casts.
_PARAM = re.compile(r"(?<![:\w]):(\w+)")
# The session lost a prepared statement (26000: DEALLOCATE or DISCARD ALL, say
# by a pooler), or a plan no longer fits the schema (0A000: "cached plan must
# not change result type", after a column's type changed).
_LOST = frozenset({"26000", "0A000"})


class _Rows:
    name: str

    def rows(self, conn: sa.Connection, params: dict) -> list[dict]:
        raise NotImplementedError

    def one_or_none(self, conn: sa.Connection, params: dict) -> dict | None:
        rows = self.rows(conn, params)
        if len(rows) > 1:
            raise sa.exc.MultipleResultsFound(f"{self.name}: {len(rows)} rows, at most 1 expected")
        return rows[0] if rows else None

    def one(self, conn: sa.Connection, params: dict) -> dict:
        row = self.one_or_none(conn, params)
        if row is None:
            raise sa.exc.NoResultFound(f"{self.name}: no row, 1 expected")
        return row


class Prepared(_Rows):
    """``text()`` SQL with ``:name`` parameters, run as a prepared statement."""

    def __init__(self, name: str, sql: str):
        self.name, self.text = name, sql
        params = list(dict.fromkeys(_PARAM.findall(sql)))
        numbered = _PARAM.sub(lambda m: f"${params.index(m[1]) + 1}", sql)
        self._prepare = f"PREPARE {name} AS {numbered}"
        self._execute = sa.text(f"EXECUTE {name}({', '.join(':' + p for p in params)})")
        # The same, in psycopg2's own parameter style.
        self._execute_sql = f"EXECUTE {name}({', '.join(f'%({p})s' for p in params)})"

    def _ensure(self, conn: sa.Connection) -> None:
        prepared = conn.info.setdefault("prepared_statements", set())
        if self.name not in prepared:
            conn.exec_driver_sql(self._prepare)
            prepared.add(self.name)

    def rows(self, conn: sa.Connection, params: dict) -> list[dict]:
        """Run it; its rows as dicts (none for a statement that returns none)."""
        return _execute(conn, (self,), self._execute_sql, params)

    def plan(self, conn: sa.Connection, params: dict) -> list[str]:
        """The plan PostgreSQL runs it with (EXPLAIN EXECUTE, without running it)."""
        self._ensure(conn)
        explain = sa.text("EXPLAIN (COSTS OFF) " + self._execute.text)
        return list(conn.execute(explain, params).scalars())


class Batch(_Rows):
    """Prepared statements sent together, in one round trip; the last one's rows.

    PostgreSQL runs them in order, each with a snapshot of its own (so a
    statement sees what committed while an earlier one waited for a lock), as
    one transaction: the caller's, or, on a connection in autocommit, an
    implicit one of their own (a failure in any undoes them all). They share
    one set of parameters, each taking the ones it names.
    """

    def __init__(self, *statements: Prepared):
        self.statements = statements
        self.name = "+".join(statement.name for statement in statements)
        self._execute_sql = "; ".join(statement._execute_sql for statement in statements)

    def rows(self, conn: sa.Connection, params: dict) -> list[dict]:
        return _execute(conn, self.statements, self._execute_sql, params)


def _execute(
    conn: sa.Connection, statements: tuple[Prepared, ...], sql: str, params: dict
) -> list[dict]:
    for statement in statements:
        statement._ensure(conn)
    if not conn.in_transaction():
        conn.begin()  # as SQLAlchemy's execute begins one
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, params)
        if cursor.description is None:
            return []
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except BaseException as exc:  # noqa: BLE001 - re-raised below, as SQLAlchemy does
        if isinstance(exc, psycopg2.Error) and exc.pgcode in _LOST:
            # This session can no longer run what it prepared: give up the
            # connection, so the pool opens a fresh one that prepares again,
            # rather than fail on it until it is recycled.
            conn.invalidate()
        # SQLAlchemy's handling of a failed execute: the same exception
        # (sqlalchemy.exc, parameters hidden), and on a lost server the
        # connection and the pool invalidated; an interrupt (SystemExit,
        # KeyboardInterrupt) is raised as it is, its connection dropped.
        conn._handle_dbapi_exception(exc, sql, params, cursor, None)
    finally:
        cursor.close()
