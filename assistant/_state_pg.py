"""The state store in PostgreSQL (``CPC_STATE_URL=postgresql://…``), for worker processes on
several machines or when one SQLite file is not where the state should live.

The same tables and statements as the SQLite store (:class:`~assistant._state.SqlStateStore`);
connections come from a ``psycopg_pool.ConnectionPool``. The short-lived tables are UNLOGGED:
they skip PostgreSQL's write-ahead log (a crash empties them, which costs a few stale buttons
and fresh rate budgets, never a lead).

An outage is met fast, never with a pool's 10 s waits: a call waits at most ``op_timeout`` for a
connection, and once one fails the store is *down* for ``retry_seconds``: calls raise
``StateUnavailableError`` at once (chat answers 503) and callers that can do without it (the rate
budgets) skip it. /readyz pings it with its own short timeout and says when it answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ._state import Run, SqlStateStore, StateUnavailableError, _Runner

log = logging.getLogger("cpc.state")


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
CREATE TABLE IF NOT EXISTS faq (
    id BIGSERIAL PRIMARY KEY,
    updated DOUBLE PRECISION NOT NULL,
    questions TEXT NOT NULL,
    answers TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faq_unanswered (
    id BIGSERIAL PRIMARY KEY,
    created DOUBLE PRECISION NOT NULL,
    lang TEXT NOT NULL,
    text TEXT NOT NULL,
    user_hash TEXT NOT NULL
);
"""
log = logging.getLogger("cpc.state")
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

    errors = (psycopg.OperationalError, OSError, StateUnavailableError)
    remote = True
    contains = "strpos({0}, {1}) > 0"
    lock_row = " FOR UPDATE"
    least, greatest = "LEAST", "GREATEST"
    serial_key, postgres = "BIGSERIAL PRIMARY KEY", True  # staff tables (_staff_state.py)
    serial, blob, real = "BIGSERIAL PRIMARY KEY", "BYTEA", "DOUBLE PRECISION"  # alert tables (members)
    types = {"REAL": "DOUBLE PRECISION"}  # PostgreSQL's REAL is 4 bytes: too coarse for a timestamp

    backend = "postgresql"
    retry_seconds = 1.0  # after a failure, calls fail at once for this long (then one tries again)

    def __init__(self, url: str, ttl_seconds: float = 3600, log_backlog: int = 10_000, log_delay: float = 0.5,
                 pool_size: int = 8, connect_timeout: float = 10.0, op_timeout: float = 2.0):
        super().__init__(ttl_seconds, log_backlog, log_delay)
        self._url, self._where = url, _where(url)
        self.op_timeout = op_timeout
        self._down_until = 0.0
        self._down_since: float | None = None
        self._down_lock = threading.Lock()
        # connect_timeout (libpq's) bounds a connection attempt to a host that does not answer
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False, timeout=op_timeout,
                                    name="cpc-state", kwargs={"autocommit": True, "connect_timeout": max(1, int(op_timeout))})
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

    def describe(self) -> str:
        return f"postgresql {self._where}"

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, exc: BaseException) -> StateUnavailableError:
        with self._down_lock:
            self._down_until = time.monotonic() + self.retry_seconds
            if self._down_since is None:
                self._down_since = time.time()
                log.error("the state database (CPC_STATE_URL) %s does not answer: %s", self._where, exc)
        return StateUnavailableError(f"the state database {self._where} does not answer")

    def _answered(self) -> None:
        if self._down_since is not None:
            with self._down_lock:
                if self._down_since is not None:
                    log.info("the state database %s answers again (down %.1f s)", self._where, time.time() - self._down_since)
                    self._down_since = None
                self._down_until = 0.0

    @contextmanager
    def _tx(self, write: bool = False, shortlived: bool = False, timeout: float | None = None) -> Iterator[Run]:
        if self.down:
            raise StateUnavailableError(f"the state database {self._where} does not answer")
        try:
            # autocommit: each statement commits, unless in a transaction
            with self._pool.connection(timeout=timeout or self.op_timeout) as conn:
                if write:
                    with conn.transaction():  # committed when the block ends, rolled back on an error
                        yield _Runner(conn, "%s")
                else:
                    yield _Runner(conn, "%s")
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise self._failed(exc) from exc
        self._answered()

    def ping(self, timeout: float) -> None:
        """A trivial query within ``timeout``, through the pool, else on a connection of its own
        (the pool may still be waiting to reconnect after an outage): readiness tells the truth."""
        try:
            with self._pool.connection(timeout=timeout) as conn:
                conn.execute("SELECT 1")
        except (PoolTimeout, psycopg.OperationalError):
            try:
                with psycopg.connect(self._url, connect_timeout=max(1, int(timeout)), autocommit=True) as conn:
                    conn.execute("SELECT 1")
            except psycopg.OperationalError as exc:
                raise self._failed(exc) from exc
            self._pool.check()  # the database answers: drop the pool's broken connections and refill it
        self._answered()

    def _columns(self, run: Run, table: str) -> set[str]:
        run("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
        return {r[0] for r in run("SELECT column_name FROM information_schema.columns "
                                  "WHERE table_schema = current_schema() AND table_name = ?", (table,))}

    def _scrub(self) -> None:
        """VACUUM the tables that held the deleted rows: it prunes the dead row versions from their
        pages so the space is reused (it does not rewrite the files, nor empty PostgreSQL's WAL, which
        is recycled after the next checkpoints: see docs/security.md)."""
        try:
            with self._pool.connection() as conn:  # autocommit: VACUUM cannot run in a transaction
                for table in ("leads", "staff_messages", "sessions", "query_log"):
                    conn.execute(f"VACUUM {table}")
        except psycopg.Error:  # the rows are deleted (committed) already: autovacuum comes by later
            log.warning("VACUUM after an erasure or purge failed", exc_info=True)

    def close(self) -> None:
        super().close()
        self._pool.close()
