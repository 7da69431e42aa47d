"""Conversation state, leads and the query log in one SQLite file (WAL).

Sessions expire after a configurable idle time; leads are written and committed before
the user is told they were recorded, so an acknowledged lead survives a crash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corpus import open_sqlite, write_transaction

log = logging.getLogger("cpc.state")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS leads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    session_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    org_id TEXT NOT NULL,
    org_name TEXT NOT NULL,
    lang TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new'
);
CREATE TABLE IF NOT EXISTS query_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    channel TEXT NOT NULL,
    lang TEXT NOT NULL,
    query TEXT NOT NULL,
    results INTEGER NOT NULL,
    user_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS query_log_created ON query_log(created);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


@dataclass
class SessionState:
    """What a conversation remembers between turns."""

    lang: str | None = None
    query: str | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)
    page: int = 0
    shown: list[str] = field(default_factory=list)  # ids in the order shown; number n is shown[n-1]
    focus: str | None = None  # the organisation last shown in detail
    turns: int = 0

    @classmethod
    def from_json(cls, text: str) -> "SessionState":
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def user_hash(salt: bytes, channel: str, user: str) -> str:
    """A stable pseudonym for the query log. Keyed with the store's secret salt: an unsalted hash
    of an IPv4 address or a numeric chat id is undone by trying them all."""
    return hmac.new(salt, f"{channel}:{user}".encode(), hashlib.sha256).hexdigest()[:16]


_LOG_INSERT = "INSERT INTO query_log(created, channel, lang, query, results, user_hash) VALUES (?, ?, ?, ?, ?, ?)"


class StateStore:
    def __init__(self, path: str | Path, ttl_seconds: float = 3600, log_backlog: int = 10_000,
                 log_delay: float = 0.5):
        self.path = Path(path)
        self.ttl = ttl_seconds
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, _SCHEMA)
        self._salt = self._secret_salt()
        # The query log is written by its own thread, in batches at most ``log_delay`` apart:
        # a search never waits for an fsync, and busy traffic costs one transaction a batch.
        self._log_rows: queue.Queue[tuple | None] = queue.Queue(maxsize=log_backlog)
        self._log_now = threading.Event()  # a reader (or close) wants the queued rows written
        self._log_delay = log_delay
        self._log_writer = threading.Thread(target=self._write_query_log, name="query-log", daemon=True)
        self._log_writer.start()

    def _secret_salt(self) -> bytes:
        """The salt for user pseudonyms: made once per state file and kept in it, so they stay stable."""
        return self.secret("user_salt")

    def secret(self, name: str) -> bytes:
        """A random 32-byte key made once per state file under ``name`` and kept in it, so what it
        signed or keyed stays valid across restarts (user pseudonyms, web chat session tokens)."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (name, secrets.token_bytes(32)))
            return bytes(self._db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()[0])

    def close(self) -> None:
        """Writes what the query log still holds, then closes the file."""
        if self._log_writer.is_alive():
            self._log_rows.put(None)
            self._log_now.set()
            self._log_writer.join(timeout=30)
        with self._lock:
            self._db.close()

    # -- sessions -----------------------------------------------------------------------
    def load(self, session_id: str, now: float | None = None) -> SessionState:
        """The session's state, or a fresh one when unknown or idle longer than the TTL."""
        now = time.time() if now is None else now
        with self._lock:
            row = self._db.execute("SELECT state, updated FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None or now - row[1] > self.ttl:
            return SessionState()
        return SessionState.from_json(row[0])

    def save(self, session_id: str, state: SessionState, now: float | None = None) -> bool:
        """Remember the session; False when it could not be written (a full disk): the reply
        still goes out, the conversation only forgets this turn."""
        now = time.time() if now is None else now
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO sessions(id, state, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated = excluded.updated",
                    (session_id, json.dumps(asdict(state), ensure_ascii=False), now),
                )
                self._db.execute("DELETE FROM sessions WHERE updated < ?", (now - self.ttl,))
        except (sqlite3.OperationalError, OSError) as exc:
            log.warning("session not saved: %s", exc)
            return False
        return True

    # -- leads --------------------------------------------------------------------------
    def add_lead(self, session_id: str, channel: str, org_id: str, org_name: str, lang: str, message: str) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO leads(created, session_id, channel, org_id, org_name, lang, message) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), session_id, channel, org_id, org_name, lang, message),
            )
            return int(cur.lastrowid)

    def leads(self, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        sql = "SELECT id, created, session_id, channel, org_id, org_name, lang, message, status FROM leads"
        args: tuple = ()
        if status:
            sql += " WHERE status = ?"
            args = (status,)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, args + (limit,)).fetchall()
        keys = ("id", "created", "session_id", "channel", "org_id", "org_name", "lang", "message", "status")
        return [dict(zip(keys, r)) for r in rows]

    def set_lead_status(self, lead_id: int, status: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE leads SET status = ? WHERE id = ?", (status, lead_id))
            return cur.rowcount == 1

    # -- query log ----------------------------------------------------------------------
    def log_query(self, channel: str, lang: str, query: str, results: int, user: str) -> None:
        """Queue one row for the writer thread; when the backlog is full the row is dropped, not waited for."""
        row = (time.time(), channel, lang, query[:1000], results, user_hash(self._salt, channel, user))
        try:
            self._log_rows.put_nowait(row)
        except queue.Full:
            log.warning("query log backlog full: one query not logged")

    def flush_query_log(self) -> None:
        """Wait until every queued row is in the file (reads of the log call this first)."""
        if self._log_writer.is_alive():
            self._log_now.set()
            self._log_rows.join()

    def _write_query_log(self) -> None:
        while True:
            rows = [self._log_rows.get()]
            if rows[0] is not None:
                self._log_now.wait(self._log_delay)  # let a batch gather, unless someone is waiting
                self._log_now.clear()
            while len(rows) < 1000:
                try:
                    rows.append(self._log_rows.get_nowait())
                except queue.Empty:
                    break
            stop = None in rows
            batch = [r for r in rows if r is not None]
            try:
                if batch:
                    with self._lock, write_transaction(self._db) as db:
                        db.executemany(_LOG_INSERT, batch)
            except sqlite3.Error:
                log.warning("could not write %d query log rows", len(batch), exc_info=True)
            finally:
                for _ in rows:
                    self._log_rows.task_done()
            if stop:
                return

    def queries(self, limit: int = 100, zero_only: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT created, channel, lang, query, results, user_hash FROM query_log"
        if zero_only:
            sql += " WHERE results = 0"
        sql += " ORDER BY id DESC LIMIT ?"
        self.flush_query_log()
        with self._lock:
            rows = self._db.execute(sql, (limit,)).fetchall()
        keys = ("created", "channel", "lang", "query", "results", "user_hash")
        return [dict(zip(keys, r)) for r in rows]

    def query_counts(self) -> dict[str, dict[str, int]]:
        self.flush_query_log()
        with self._lock:
            by_lang = dict(self._db.execute("SELECT lang, COUNT(*) FROM query_log GROUP BY lang").fetchall())
            by_channel = dict(self._db.execute("SELECT channel, COUNT(*) FROM query_log GROUP BY channel").fetchall())
            zero = self._db.execute("SELECT COUNT(*) FROM query_log WHERE results = 0").fetchone()[0]
            total = self._db.execute("SELECT COUNT(*) FROM query_log").fetchone()[0]
        return {"by_lang": by_lang, "by_channel": by_channel, "totals": {"all": total, "zero_results": zero}}
