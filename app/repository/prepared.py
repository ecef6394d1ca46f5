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
"""

from __future__ import annotations

import re

import sqlalchemy as sa

# ``:name`` bind parameters; not ``::type`` casts.
_PARAM = re.compile(r"(?<![:\w]):(\w+)")
# The session lost a prepared statement (26000: DEALLOCATE or DISCARD ALL, say
# by a pooler), or a plan no longer fits the schema (0A000: "cached plan must
# not change result type", after a column's type changed).
_LOST = frozenset({"26000", "0A000"})


class Prepared:
    """``text()`` SQL with ``:name`` parameters, run as a prepared statement."""

    def __init__(self, name: str, sql: str):
        self.name, self.text = name, sql
        params = list(dict.fromkeys(_PARAM.findall(sql)))
        numbered = _PARAM.sub(lambda m: f"${params.index(m[1]) + 1}", sql)
        self._prepare = f"PREPARE {name} AS {numbered}"
        self._execute = sa.text(f"EXECUTE {name}({', '.join(':' + p for p in params)})")

    def _ensure(self, conn: sa.Connection) -> None:
        prepared = conn.info.setdefault("prepared_statements", set())
        if self.name not in prepared:
            conn.exec_driver_sql(self._prepare)
            prepared.add(self.name)

    def execute(self, conn: sa.Connection, params: dict) -> sa.CursorResult:
        self._ensure(conn)
        try:
            return conn.execute(self._execute, params)
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) in _LOST:
                # This session can no longer run what it prepared: give up the
                # connection, so the pool opens a fresh one that prepares again,
                # rather than fail on it until it is recycled.
                conn.invalidate()
            raise

    def plan(self, conn: sa.Connection, params: dict) -> list[str]:
        """The plan PostgreSQL runs it with (EXPLAIN EXECUTE, without running it)."""
        self._ensure(conn)
        explain = sa.text("EXPLAIN (COSTS OFF) " + self._execute.text)
        return list(conn.execute(explain, params).scalars())
