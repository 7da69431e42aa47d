"""The state store in PostgreSQL (``CPC_STATE_URL=postgresql://…``), for worker processes on
several machines or when one SQLite file is not where the state should live.

The same tables and statements as the SQLite store (:class:`~assistant._state.SqlStateStore`);
connections come from a ``psycopg_pool.ConnectionPool``. The short-lived tables are UNLOGGED:
they skip PostgreSQL's write-ahead log (a crash empties them, which costs a few stale buttons
and fresh rate budgets, never a lead).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ._state import Run, SqlStateStore, _Runner


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    version BIGINT NOT NULL DEFAULT 0
);
CREATE UNLOGGED TABLE IF NOT EXISTS shortlived (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE UNLOGGED TABLE IF NOT EXISTS budgets (
    key TEXT PRIMARY KEY,
    balance DOUBLE PRECISION NOT NULL,
    stamp DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    short DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS leads (
    id BIGSERIAL PRIMARY KEY,
    created DOUBLE PRECISION NOT NULL,
    session_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    org_id TEXT NOT NULL,
    org_name TEXT NOT NULL,
    lang TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new'
);
CREATE TABLE IF NOT EXISTS query_log (
    id BIGSERIAL PRIMARY KEY,
    created DOUBLE PRECISION NOT NULL,
    channel TEXT NOT NULL,
    lang TEXT NOT NULL,
    query TEXT NOT NULL,
    results INTEGER NOT NULL,
    user_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS query_log_created ON query_log(created);
CREATE INDEX IF NOT EXISTS query_log_user ON query_log(user_hash);
CREATE TABLE IF NOT EXISTS staff_messages (
    id BIGSERIAL PRIMARY KEY,
    lead_id BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    delivery TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS staff_messages_session ON staff_messages(session_id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
"""
_SCHEMA_LOCK = 0x637063  # advisory lock: workers starting together create the tables one at a time


def _where(url: str) -> str:
    """The database a URL names, for messages: host, port, database and user, never the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unreadable URL)"
    return "at {host}:{port}, database {dbname}, user {user}".format(
        **{k: parts.get(k) or "(default)" for k in ("host", "port", "dbname", "user")})


class PostgresStateStore(SqlStateStore):
    """The state in a PostgreSQL database; every worker of every machine pointing at it shares it."""

    errors = (psycopg.OperationalError, OSError)
    remote = True
    contains = "strpos({0}, {1}) > 0"
    lock_row = " FOR UPDATE"
    least, greatest = "LEAST", "GREATEST"
    serial, blob, real = "BIGSERIAL PRIMARY KEY", "BYTEA", "DOUBLE PRECISION"  # alert tables (members)
    types = {"REAL": "DOUBLE PRECISION"}  # PostgreSQL's REAL is 4 bytes: too coarse for a timestamp

    def __init__(self, url: str, ttl_seconds: float = 3600, log_backlog: int = 10_000, log_delay: float = 0.5,
                 pool_size: int = 8, connect_timeout: float = 10.0):
        super().__init__(ttl_seconds, log_backlog, log_delay)
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False, timeout=connect_timeout,
                                    name="cpc-state", kwargs={"autocommit": True})
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise RuntimeError(f"could not connect to the state database (CPC_STATE_URL) {_where(url)} "
                               f"within {connect_timeout:g} s") from exc
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(_SCHEMA)
        self._migrate()
        self._start()

    @contextmanager
    def _tx(self, write: bool = False, shortlived: bool = False) -> Iterator[Run]:
        with self._pool.connection() as conn:  # autocommit: each statement commits, unless in a transaction
            if write:
                with conn.transaction():  # committed when the block ends, rolled back on an error
                    yield _Runner(conn, "%s")
            else:
                yield _Runner(conn, "%s")

    def _columns(self, run: Run, table: str) -> set[str]:
        run("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
        return {r[0] for r in run("SELECT column_name FROM information_schema.columns "
                                  "WHERE table_schema = current_schema() AND table_name = ?", (table,))}

    def close(self) -> None:
        super().close()
        self._pool.close()
