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
CREATE TABLE IF NOT EXISTS staff_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    created REAL NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    delivery TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS staff_messages_session ON staff_messages(session_id);
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
    capture: dict[str, Any] | None = None  # a contact request under way (assistant/_contact.py)
    erase_pending: str | bool = False  # "delete my data" asked, waiting for the confirmation (its language)
    history: list[list[Any]] = field(default_factory=list)  # last turns, shared with staff only on consent

    @classmethod
    def from_json(cls, text: str) -> "SessionState":
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def user_hash(salt: bytes, channel: str, user: str) -> str:
    """A stable pseudonym for the query log. Keyed with the store's secret salt: an unsalted hash
    of an IPv4 address or a numeric chat id is undone by trying them all."""
    return hmac.new(salt, f"{channel}:{user}".encode(), hashlib.sha256).hexdigest()[:16]


# Lead columns added after the first release (ALTER TABLE ADD COLUMN on older state files).
_LEAD_COLUMNS_ADDED = (
    ("updated", "REAL"), ("organisations", "TEXT"), ("name", "TEXT"), ("asker_org", "TEXT"), ("contact", "TEXT"),
    ("contact_kind", "TEXT"), ("need", "TEXT"), ("conversation", "TEXT"), ("consent_at", "REAL"), ("outcome", "TEXT"),
    ("notes", "TEXT"), ("assignee", "TEXT"), ("last_inbound", "REAL"), ("closed_at", "REAL"),
)
LEAD_FIELDS = ("id", "created", "updated", "session_id", "channel", "org_id", "org_name", "lang", "message", "status",
               "organisations", "name", "asker_org", "contact", "contact_kind", "need", "conversation", "consent_at",
               "outcome", "notes", "assignee", "last_inbound", "closed_at")


def _lead_row(row: tuple) -> dict[str, Any]:
    lead = dict(zip(LEAD_FIELDS, row))
    orgs = json.loads(lead["organisations"]) if lead["organisations"] else [[lead["org_id"], lead["org_name"]]]
    lead["organisations"] = [{"id": oid, "name": name} for oid, name in orgs]
    lead["conversation"] = json.loads(lead["conversation"]) if lead["conversation"] else None
    lead["notes"] = json.loads(lead["notes"]) if lead["notes"] else []
    lead["updated"] = lead["updated"] or lead["created"]
    return lead


_LOG_INSERT = "INSERT INTO query_log(created, channel, lang, query, results, user_hash) VALUES (?, ?, ?, ?, ?, ?)"


class StateStore:
    def __init__(self, path: str | Path, ttl_seconds: float = 3600, log_backlog: int = 10_000,
                 log_delay: float = 0.5):
        self.path = Path(path)
        self.ttl = ttl_seconds
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, _SCHEMA)
        self._migrate()
        self._salt = self._secret_salt()
        # The query log is written by its own thread, in batches at most ``log_delay`` apart:
        # a search never waits for an fsync, and busy traffic costs one transaction a batch.
        self._log_rows: queue.Queue[tuple | None] = queue.Queue(maxsize=log_backlog)
        self._log_now = threading.Event()  # a reader (or close) wants the queued rows written
        self._log_delay = log_delay
        self._log_writer = threading.Thread(target=self._write_query_log, name="query-log", daemon=True)
        self._log_writer.start()

    def _migrate(self) -> None:
        """Columns added since the first release, added to state files made before them."""
        with self._lock:
            have = {r[1] for r in self._db.execute("PRAGMA table_info(leads)")}
            for column, kind in _LEAD_COLUMNS_ADDED:
                if column not in have:
                    self._db.execute(f"ALTER TABLE leads ADD COLUMN {column} {kind}")
            self._db.execute("CREATE INDEX IF NOT EXISTS leads_session ON leads(session_id)")

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
    def add_lead(self, session_id: str, channel: str, org_id: str, org_name: str, lang: str, message: str,
                 orgs: list[list[str]] | None = None, name: str | None = None, asker_org: str | None = None,
                 contact: str | None = None, contact_kind: str | None = None, need: str | None = None,
                 conversation: list | None = None, consent_at: float | None = None) -> int:
        """One request; committed before the user is told it was recorded. ``orgs`` lists every
        organisation of interest ([id, name]); the first is also kept in org_id/org_name."""
        now = time.time()
        orgs = orgs or [[org_id, org_name]]
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO leads(created, updated, last_inbound, session_id, channel, org_id, org_name, lang, message, "
                "organisations, name, asker_org, contact, contact_kind, need, conversation, consent_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, now, now, session_id, channel, org_id, org_name, lang, message, json.dumps(orgs, ensure_ascii=False),
                 name, asker_org, contact, contact_kind, need,
                 None if conversation is None else json.dumps(conversation, ensure_ascii=False), consent_at),
            )
            return int(cur.lastrowid)

    def leads(self, status: str | None = None, limit: int = 200, channel: str | None = None, lang: str | None = None,
              assignee: str | None = None, text: str | None = None, lead_id: int | None = None) -> list[dict[str, Any]]:
        """Leads newest first, narrowed by any of status, channel, language, assignee and a text in them."""
        where, args = [], []
        for column, value in (("status", status), ("channel", channel), ("lang", lang), ("assignee", assignee), ("id", lead_id)):
            if value is not None and value != "":
                where.append(f"{column} = ?")
                args.append(value)
        if text:
            where.append("(instr(lower(coalesce(name, '') || ' ' || coalesce(asker_org, '') || ' ' || coalesce(need, '') || ' ' || "
                         "org_name || ' ' || coalesce(organisations, '') || ' ' || coalesce(contact, '') || ' ' || message), lower(?)) > 0)")
            args.append(text)
        sql = f"SELECT {', '.join(LEAD_FIELDS)} FROM leads"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [_lead_row(r) for r in rows]

    def lead(self, lead_id: int) -> dict[str, Any] | None:
        found = self.leads(lead_id=lead_id, limit=1)
        return found[0] if found else None

    def set_lead_status(self, lead_id: int, status: str) -> bool:
        return self.update_lead(lead_id, status=status) is not None

    def update_lead(self, lead_id: int, status: str | None = None, outcome: str | None = None,
                    assignee: str | None = None, note: str | None = None, author: str = "") -> dict[str, Any] | None:
        """Change a lead's follow-up (status, outcome, assignee) and/or add a note; the lead, or None."""
        now = time.time()
        with self._lock, write_transaction(self._db) as db:
            row = db.execute("SELECT status, notes FROM leads WHERE id = ?", (lead_id,)).fetchone()
            if row is None:
                return None
            sets, args = ["updated = ?"], [now]
            if status is not None:
                sets += ["status = ?", "closed_at = ?"]
                args += [status, now if status == "closed" else None]
                if status != "closed":
                    sets.append("outcome = NULL")
            if outcome is not None:
                sets.append("outcome = ?")
                args.append(outcome)
            if assignee is not None:
                sets.append("assignee = ?")
                args.append(assignee.strip() or None)
            if note:
                notes = json.loads(row[1] or "[]")
                notes.append({"at": now, "by": author, "text": note})
                sets.append("notes = ?")
                args.append(json.dumps(notes, ensure_ascii=False))
            db.execute(f"UPDATE leads SET {', '.join(sets)} WHERE id = ?", (*args, lead_id))
        return self.lead(lead_id)

    def touch(self, session_id: str, now: float | None = None) -> None:
        """The user of this session wrote: WeChat's 48-hour reply window starts again."""
        with self._lock:
            self._db.execute("UPDATE leads SET last_inbound = ? WHERE session_id = ?", (time.time() if now is None else now, session_id))

    # -- staff messages -----------------------------------------------------------------
    def add_staff_message(self, lead_id: int, session_id: str, channel: str, text: str, delivery: str, author: str = "") -> dict[str, Any]:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO staff_messages(lead_id, session_id, channel, created, author, text, delivery) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (lead_id, session_id, channel, now, author, text, delivery))
            self._db.execute("UPDATE leads SET updated = ? WHERE id = ?", (now, lead_id))
        return {"id": int(cur.lastrowid), "lead_id": lead_id, "created": now, "text": text, "delivery": delivery}

    def staff_messages(self, session_id: str | None = None, lead_id: int | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Messages staff sent, oldest first: for one web session (what the chat shows) or one lead."""
        column, value = ("session_id", session_id) if session_id is not None else ("lead_id", lead_id)
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, lead_id, created, text, delivery, author FROM staff_messages WHERE {column} = ? AND id > ? ORDER BY id",
                (value, after)).fetchall()
        return [dict(zip(("id", "lead_id", "created", "text", "delivery", "author"), r)) for r in rows]

    def messages_by_lead(self, lead_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """Staff messages of several leads in one query (the inbox shows them under each lead)."""
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in lead_ids}
        if not lead_ids:
            return out
        marks = ", ".join("?" * len(lead_ids))
        with self._lock:
            rows = self._db.execute(f"SELECT id, lead_id, created, text, delivery, author FROM staff_messages "
                                    f"WHERE lead_id IN ({marks}) ORDER BY id", lead_ids).fetchall()
        for r in rows:
            out[r[1]].append(dict(zip(("id", "lead_id", "created", "text", "delivery", "author"), r)))
        return out

    def mark_shown(self, session_id: str) -> None:
        """The web chat has fetched its waiting staff messages."""
        with self._lock:
            self._db.execute("UPDATE staff_messages SET delivery = 'shown' WHERE session_id = ? AND delivery = 'waiting'", (session_id,))

    # -- privacy ------------------------------------------------------------------------
    def erase_session(self, session_id: str, channel: str) -> dict[str, int]:
        """Everything kept about one user (a session id): their session, leads, staff messages and logged queries."""
        pseudonym = user_hash(self._salt, channel, session_id)
        self.flush_query_log()
        with self._lock, write_transaction(self._db) as db:
            counts = {
                "leads": db.execute("DELETE FROM leads WHERE session_id = ?", (session_id,)).rowcount,
                "messages": db.execute("DELETE FROM staff_messages WHERE session_id = ?", (session_id,)).rowcount,
                "sessions": db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount,
                "queries": db.execute("DELETE FROM query_log WHERE user_hash = ?", (pseudonym,)).rowcount,
            }
        log.info("erased a user's data on request: %s", counts)
        return counts

    def purge(self, query_log_days: float | None, closed_lead_days: float | None, now: float | None = None) -> dict[str, int]:
        """Retention: drop query-log rows and closed leads (with their staff messages) older than the given ages."""
        now = time.time() if now is None else now
        self.flush_query_log()
        counts = {"queries": 0, "leads": 0, "messages": 0}
        with self._lock, write_transaction(self._db) as db:
            if query_log_days is not None:
                counts["queries"] = db.execute("DELETE FROM query_log WHERE created < ?", (now - query_log_days * 86400,)).rowcount
            if closed_lead_days is not None:
                cutoff = now - closed_lead_days * 86400
                counts["messages"] = db.execute(
                    "DELETE FROM staff_messages WHERE lead_id IN (SELECT id FROM leads WHERE status = 'closed' AND closed_at < ?)",
                    (cutoff,)).rowcount
                counts["leads"] = db.execute("DELETE FROM leads WHERE status = 'closed' AND closed_at < ?", (cutoff,)).rowcount
            db.execute("DELETE FROM sessions WHERE updated < ?", (now - self.ttl,))
        return counts

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
