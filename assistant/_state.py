"""Conversation state, leads, the query log and the short-lived shared state, behind one interface.

:class:`StateStore` is what the service needs from its state; :class:`SQLiteStateStore` keeps it
in ``state.sqlite`` in the data folder (WAL, the default) and ``assistant._state_pg.PostgresStateStore``
in PostgreSQL (``CPC_STATE_URL``). Every worker process of one data folder or one database
shares it, so they behave as one: a session saved with a stale version is refused
(:class:`SessionConflict`), a delivery id is claimed once, a rate budget is spent once.

Sessions expire after a configurable idle time; leads are written and committed before
the user is told they were recorded, so an acknowledged lead survives a crash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import stat
import queue
import secrets
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from corpus import open_sqlite, write_transaction

from ._staff_state import SqlStaffTables
from ._alerts_store import AlertStore, SqlAlertStore  # alerts (members): the alert tables
from ._profiles_store import ProfileStore, SqlProfileStore  # join (members): the profile table
from ._posts_store import PostStore, SqlPostStore  # opportunity posts: the posts table

log = logging.getLogger("cpc.state")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shortlived (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS budgets (
    key TEXT PRIMARY KEY,
    balance REAL NOT NULL,
    stamp REAL NOT NULL,
    expires REAL NOT NULL,
    short REAL NOT NULL DEFAULT 0
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
CREATE TABLE IF NOT EXISTS faq (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    updated REAL NOT NULL,
    questions TEXT NOT NULL,
    answers TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faq_unanswered (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    lang TEXT NOT NULL,
    text TEXT NOT NULL,
    user_hash TEXT NOT NULL
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
    thread_left: int = 0  # the last staff message when the user left the team's thread for a new search
    reply_lang: str | None = None  # the language the user asked replies in ("can you answer in English?")
    pending: str | None = None  # a message a clarifying question is about ("a new search, or narrow this list?")
    listed: list[list[Any]] = field(default_factory=list)  # the list last shown: [number, id, reason], for "back"
    profile: dict[str, Any] | None = None  # a member profile being written or managed in the chat (_profiles.py)
    post_draft: dict[str, Any] | None = None  # an opportunity post being written in the chat (assistant/_posts.py)

    @classmethod
    def from_json(cls, text: str) -> "SessionState":
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def user_hash(salt: bytes, channel: str, user: str) -> str:
    """A stable pseudonym for the query log. Keyed with the store's secret salt: an unsalted hash
    of an IPv4 address or a numeric chat id is undone by trying them all."""
    return hmac.new(salt, f"{channel}:{user}".encode(), hashlib.sha256).hexdigest()[:16]


# Columns added after the first release (ALTER TABLE ADD COLUMN on older state files).
_SESSION_COLUMNS_ADDED = (("version", "INTEGER NOT NULL DEFAULT 0"),)
_LEAD_COLUMNS_ADDED = (
    ("updated", "REAL"), ("organisations", "TEXT"), ("name", "TEXT"), ("asker_org", "TEXT"), ("contact", "TEXT"),
    ("contact_kind", "TEXT"), ("need", "TEXT"), ("conversation", "TEXT"), ("consent_at", "REAL"), ("outcome", "TEXT"),
    ("notes", "TEXT"), ("assignee", "TEXT"), ("last_inbound", "REAL"), ("closed_at", "REAL"),
    ("request_key", "TEXT"),
)
# A lead's thread holds both sides: "staff" messages (delivery sent/waiting/shown/e-mail) and "user"
# answers (delivery unread until staff open the lead, then read).
_MESSAGE_COLUMNS_ADDED = (("sender", "TEXT NOT NULL DEFAULT 'staff'"),)
MESSAGE_FIELDS = ("id", "lead_id", "created", "text", "delivery", "author", "sender")
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


class StateUnavailableError(RuntimeError):
    """The state store does not answer (its database is down or unreachable): what needs it is
    answered at once with 503, and what does not (searches) goes on without it."""


class SessionConflict(Exception):
    """Another writer saved the session after it was loaded: load it again and redo the change."""

    def __init__(self, session_id: str):
        super().__init__(f"session {session_id!r} was saved by another writer since it was loaded")
        self.session_id = session_id


def spend(balance: float, stamp: float, now: float, cost: float, per_second: float, capacity: float,
          debt: bool) -> tuple[float, float]:
    """One token-bucket step: the new balance and the seconds to wait (0.0: allowed).

    The balance refills at ``per_second`` up to ``capacity``. Without ``debt`` the cost is taken
    only when the balance covers it (a request budget); with ``debt`` it is always charged, down
    to at most one ``capacity`` below zero, and the key waits while the balance is not positive
    (a cost known only after the work, like encoder tokens)."""
    balance = min(capacity, balance + max(0.0, now - stamp) * per_second)
    if debt:
        balance = max(-capacity, balance - cost)
        return balance, (0.0 if balance > 0 else -balance / per_second + 1e-3)
    if balance >= cost:
        return balance - cost, 0.0
    return balance, (cost - balance) / per_second


class StateStore(AlertStore, ProfileStore, PostStore, ABC):
    """What the service keeps between requests, shared by every worker process.

    Durable: sessions (with a version for optimistic updates), leads, staff messages, the query
    log, per-store secrets, erasure and retention. Short-lived, with an expiry: claimed keys
    (delivery de-duplication), small JSON values (button tokens, overflow text) and rate budgets.
    Keys of the short-lived state are namespaced by their user ("tg-update:…", "api:…").
    """

    ttl: float  # seconds a session lives idle
    remote = False  # calls go over the network: callers on an event loop run them in a thread
    backend = "sqlite"

    def describe(self) -> str:
        """Where the state lives, for the start-up log and /readyz (never a password)."""
        return self.backend

    @property
    def down(self) -> bool:
        """True while the store is known not to answer (a failure seen a moment ago): callers that
        can do without it (rate budgets) skip it instead of waiting."""
        return False

    def ping(self, timeout: float) -> None:
        """Raise StateUnavailableError unless the store answers a trivial query within ``timeout`` s."""
        try:
            with self._tx() as run:  # type: ignore[attr-defined]
                run("SELECT 1").fetchall()
        except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the store is not serving
            raise StateUnavailableError(f"the state store ({self.describe()}) does not answer: {exc}") from exc

    def __init__(self, ttl_seconds: float, log_backlog: int, log_delay: float):
        self.ttl = ttl_seconds
        # The query log is written by its own thread, in batches at most ``log_delay`` apart:
        # a search never waits for a commit, and busy traffic costs one transaction a batch.
        self._log_rows: queue.Queue[tuple | None] = queue.Queue(maxsize=log_backlog)
        self._log_now = threading.Event()  # a reader (or close) wants the queued rows written
        self._log_delay = log_delay
        self._log_writer = threading.Thread(target=self._write_query_log, name="query-log", daemon=True)

    def _start(self) -> None:
        """Called by a subclass once its storage is open: the salt, then the log writer."""
        self._salt = self.secret("user_salt")
        self._log_writer.start()

    # -- sessions -----------------------------------------------------------------------
    def load(self, session_id: str, now: float | None = None) -> SessionState:
        """The session's state, or a fresh one when unknown or idle longer than the TTL."""
        return self.load_versioned(session_id, now)[0]

    @abstractmethod
    def load_versioned(self, session_id: str, now: float | None = None) -> tuple[SessionState, int]:
        """The state and the version to pass to :meth:`save` (0: never saved)."""

    @abstractmethod
    def save(self, session_id: str, state: SessionState, now: float | None = None, version: int | None = None) -> bool:
        """Remember the session. With ``version`` (from :meth:`load_versioned`) the write happens only
        if nobody saved since, else :class:`SessionConflict`; without it, the last writer wins.
        False when it could not be written (a full disk, the database gone): the reply still goes
        out, the conversation only forgets this turn."""

    @abstractmethod
    def touch(self, session_id: str, now: float | None = None) -> None:
        """The user of this session wrote: WeChat's 48-hour reply window starts again."""

    # -- leads and staff messages ---------------------------------------------------------
    @abstractmethod
    def add_lead(self, session_id: str, channel: str, org_id: str, org_name: str, lang: str, message: str,
                 orgs: list[list[str]] | None = None, name: str | None = None, asker_org: str | None = None,
                 contact: str | None = None, contact_kind: str | None = None, need: str | None = None,
                 conversation: list | None = None, consent_at: float | None = None,
                 request_key: str | None = None) -> int:
        """One request, committed before the user is told it was recorded; its id. A ``request_key``
        names the consented request: storing it again returns the first lead's id, adds nothing."""

    @abstractmethod
    def leads(self, status: str | None = None, limit: int = 200, channel: str | None = None, lang: str | None = None,
              assignee: str | None = None, text: str | None = None, lead_id: int | None = None) -> list[dict[str, Any]]:
        """Leads newest first, narrowed by any of status, channel, language, assignee and a text in them."""

    def lead(self, lead_id: int) -> dict[str, Any] | None:
        found = self.leads(lead_id=lead_id, limit=1)
        return found[0] if found else None

    def set_lead_status(self, lead_id: int, status: str) -> bool:
        return self.update_lead(lead_id, status=status) is not None

    @abstractmethod
    def update_lead(self, lead_id: int, status: str | None = None, outcome: str | None = None,
                    assignee: str | None = None, note: str | None = None, author: str = "") -> dict[str, Any] | None:
        """Change a lead's follow-up (status, outcome, assignee) and/or add a note; the lead, or None."""

    @abstractmethod
    def add_staff_message(self, lead_id: int, session_id: str, channel: str, text: str, delivery: str,
                          author: str = "") -> dict[str, Any]: ...

    @abstractmethod
    def staff_messages(self, session_id: str | None = None, lead_id: int | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Messages staff sent, oldest first: for one web session (what the chat shows) or one lead."""

    @abstractmethod
    def messages_by_lead(self, lead_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """Staff messages of several leads in one query (the inbox shows them under each lead)."""

    @abstractmethod
    def mark_shown(self, session_id: str) -> None:
        """The web chat has fetched its waiting staff messages."""

    # -- threads with the team (assistant/_threads.py) ----------------------------------------
    @abstractmethod
    def add_user_message(self, lead_id: int, session_id: str, channel: str, text: str) -> dict[str, Any]:
        """A user's answer in their lead's thread, unread until staff open the lead."""

    @abstractmethod
    def open_thread(self, session_id: str) -> dict[str, Any] | None:
        """The thread this user's messages go to: their newest lead that is not closed and to which
        staff wrote, as {"lead_id", "status", "last_staff"} (the id of staff's last message); else None."""

    @abstractmethod
    def session_leads(self, session_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """This user's leads, newest first (to answer "what is the status of my request?")."""

    @abstractmethod
    def mark_read(self, lead_id: int) -> int:
        """Staff opened the lead: its user messages are read; how many were unread."""

    # -- FAQ the staff keep (assistant/_faq.py) ------------------------------------------------
    @abstractmethod
    def faq_entries(self) -> list[dict[str, Any]]:
        """{"id", "updated", "questions": {lang: [text]}, "answers": {lang: text}}, oldest first."""

    @abstractmethod
    def add_faq(self, questions: dict[str, list[str]], answers: dict[str, str]) -> dict[str, Any]: ...

    @abstractmethod
    def update_faq(self, faq_id: int, questions: dict[str, list[str]], answers: dict[str, str]) -> dict[str, Any] | None: ...

    @abstractmethod
    def delete_faq(self, faq_id: int) -> bool: ...

    @abstractmethod
    def seed_faq(self, entries: list[dict[str, Any]]) -> int:
        """Store the shipped entries once per store (never again, even after staff deleted them); how many."""

    @abstractmethod
    def faq_version(self) -> tuple[int, float]:
        """(count, last change): a cached FAQ is still current while this is unchanged."""

    @abstractmethod
    def log_unanswered(self, lang: str, text: str, user: str, channel: str) -> None:
        """A question about the alliance the FAQ could not answer, for staff to add."""

    @abstractmethod
    def unanswered(self, limit: int = 100) -> list[dict[str, Any]]:
        """Logged unanswered questions, newest first."""

    @abstractmethod
    def delete_unanswered(self, item_id: int) -> bool: ...

    # -- privacy ------------------------------------------------------------------------
    @abstractmethod
    def erase_session(self, session_id: str, channel: str) -> dict[str, int]:
        """Everything kept about one user (a session id): their session, leads, staff messages and logged queries."""

    @abstractmethod
    def purge(self, query_log_days: float | None, closed_lead_days: float | None, now: float | None = None) -> dict[str, int]:
        """Retention: drop query-log rows and closed leads (with their staff messages) older than the given ages."""

    @abstractmethod
    def secret(self, name: str) -> bytes:
        """A random 32-byte key made once per store under ``name`` and kept in it, so what it signed
        or keyed stays valid across restarts and is the same in every worker (user pseudonyms, web
        chat session tokens)."""

    # -- short-lived shared state -----------------------------------------------------------
    @abstractmethod
    def claim(self, key: str, ttl: float) -> bool:
        """True for the first caller (in any process) to claim ``key`` until it expires; False for every other."""

    @abstractmethod
    def put(self, key: str, value: Any, ttl: float) -> None:
        """Keep a JSON-able value for ``ttl`` seconds (replacing what ``key`` held)."""

    @abstractmethod
    def get(self, key: str) -> Any | None:
        """The value under ``key``, or None when there is none or it expired."""

    @abstractmethod
    def pop(self, key: str) -> Any | None:
        """Take the value away: of callers racing for one value, exactly one gets it."""

    @abstractmethod
    def take(self, key: str, cost: float, per_second: float, capacity: float, *, debt: bool = False,
             now: float | None = None) -> float:
        """Spend ``cost`` from the token bucket ``key`` (see :func:`spend`) atomically across processes;
        the seconds to wait, 0.0 when allowed."""

    @abstractmethod
    def balance(self, key: str, per_second: float, capacity: float, now: float | None = None) -> float:
        """What the bucket ``key`` holds now, refill included (``capacity`` for an unknown key)."""

    # -- query log ----------------------------------------------------------------------
    def log_query(self, channel: str, lang: str, query: str, results: int, user: str) -> None:
        """Queue one row for the writer thread; when the backlog is full the row is dropped, not waited for."""
        row = (time.time(), channel, lang, query[:1000].replace("\x00", " "), results, user_hash(self._salt, channel, user))
        try:
            self._log_rows.put_nowait(row)
        except queue.Full:
            log.warning("query log backlog full: one query not logged")

    def flush_query_log(self) -> None:
        """Wait until every queued row is stored (reads of the log call this first)."""
        if self._log_writer.is_alive():
            self._log_now.set()
            self._log_rows.join()

    @abstractmethod
    def _insert_query_rows(self, rows: list[tuple]) -> None:
        """Store a batch of (created, channel, lang, query, results, user_hash) rows in one transaction."""

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
                    self._insert_query_rows(batch)
            except Exception:
                log.warning("could not write %d query log rows", len(batch), exc_info=True)
            finally:
                for _ in rows:
                    self._log_rows.task_done()
            if stop:
                return

    @abstractmethod
    def queries(self, limit: int = 100, zero_only: bool = False) -> list[dict[str, Any]]: ...

    @abstractmethod
    def query_counts(self) -> dict[str, dict[str, int]]: ...

    def close(self) -> None:
        """Writes what the query log still holds; subclasses then close their storage."""
        if self._log_writer.is_alive():
            self._log_rows.put(None)
            self._log_now.set()
            self._log_writer.join(timeout=30)


Run = Callable[..., Any]  # run(sql, args=()) -> a DB-API cursor


class SqlStateStore(SqlStaffTables, SqlAlertStore, SqlProfileStore, SqlPostStore, StateStore):
    """The state in SQL tables, written once for both databases: statements use ``?`` placeholders
    and the few spellings that differ are class attributes. A subclass opens the storage and
    provides :meth:`_tx` (one transaction) and :meth:`_columns`."""

    errors: tuple[type[BaseException], ...] = (OSError,)  # what a failed session save is (logged, not raised)
    contains = "instr({0}, {1}) > 0"  # SQL for "text {0} contains {1}"
    lock_row = ""  # appended to a SELECT that is followed by an UPDATE of the row
    types: dict[str, str] = {}  # column types spelt otherwise than in SQLite
    least, greatest = "min", "max"  # of two numbers
    SWEEP_EVERY = 500  # short-lived writes between two deletions of expired keys

    _sweep_count = 0

    @abstractmethod
    @contextmanager
    def _tx(self, write: bool = False, shortlived: bool = False) -> Iterator[Run]:
        """With ``write`` one transaction, taking the write lock up front; without, statements that
        each commit on their own. ``shortlived`` may use a connection that does not wait for the
        disk (what it holds can be lost in a power cut)."""

    @abstractmethod
    def _columns(self, run: Run, table: str) -> set[str]: ...

    def _migrate(self) -> None:
        """Columns added since the first release, added to stores made before them."""
        with self._tx(write=True) as run:
            for table, added in (("sessions", _SESSION_COLUMNS_ADDED), ("leads", _LEAD_COLUMNS_ADDED),
                                 ("staff_messages", _MESSAGE_COLUMNS_ADDED)):
                have = self._columns(run, table)
                for column, kind in added:
                    if column not in have:
                        kind = " ".join(self.types.get(word, word) for word in kind.split())
                        run(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            run("CREATE INDEX IF NOT EXISTS leads_session ON leads(session_id)")
            # one lead per consented request: turns racing on one conversation (two workers, two
            # Telegram updates) each try to store it, the database keeps the first (add_lead)
            run("CREATE UNIQUE INDEX IF NOT EXISTS leads_request_key ON leads(request_key)")
            run("CREATE INDEX IF NOT EXISTS shortlived_expires ON shortlived(expires)")
            run("CREATE INDEX IF NOT EXISTS budgets_expires ON budgets(expires)")
            # every save drops the expired sessions: without it, a scan of all the last hour's
            # sessions under the write lock both workers share (0.83 ms a save at 4,000, 0.12 with it)
            run("CREATE INDEX IF NOT EXISTS sessions_updated ON sessions(updated)")
            self._create_staff_tables(run)  # accounts, console sessions, reads, audit log (_staff_state.py)
            self._alert_tables(run)  # alerts (members): subscriptions and notices
            self._profile_tables(run)  # join (members): member profiles and their moderation
            self._post_tables(run)  # opportunity posts

    def secret(self, name: str) -> bytes:
        with self._tx(write=True) as run:
            run("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", (name, secrets.token_bytes(32)))
            return bytes(run("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()[0])

    # -- sessions -----------------------------------------------------------------------
    def load_versioned(self, session_id: str, now: float | None = None) -> tuple[SessionState, int]:
        now = time.time() if now is None else now
        with self._tx() as run:
            row = run("SELECT state, updated, version FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            return SessionState(), 0
        if now - row[1] > self.ttl:  # expired: a fresh state, but saving it replaces the old row
            return SessionState(), int(row[2])
        return SessionState.from_json(row[0]), int(row[2])

    def save(self, session_id: str, state: SessionState, now: float | None = None, version: int | None = None) -> bool:
        now = time.time() if now is None else now
        data = json.dumps(asdict(state), ensure_ascii=False)
        try:
            with self._tx(write=True) as run:
                if version is None:
                    run("INSERT INTO sessions(id, state, updated, version) VALUES (?, ?, ?, 1) ON CONFLICT(id) DO UPDATE "
                        "SET state = excluded.state, updated = excluded.updated, version = sessions.version + 1",
                        (session_id, data, now))
                elif not run("UPDATE sessions SET state = ?, updated = ?, version = version + 1 WHERE id = ? AND version = ?",
                             (data, now, session_id, version)).rowcount:
                    if version != 0 or not run("INSERT INTO sessions(id, state, updated, version) VALUES (?, ?, ?, 1) "
                                               "ON CONFLICT(id) DO NOTHING", (session_id, data, now)).rowcount:
                        raise SessionConflict(session_id)
                run("DELETE FROM sessions WHERE updated < ?", (now - self.ttl,))
        except self.errors as exc:
            log.warning("session not saved: %s", exc)
            return False
        return True

    def touch(self, session_id: str, now: float | None = None) -> None:
        with self._tx(write=True) as run:
            run("UPDATE leads SET last_inbound = ? WHERE session_id = ?", (time.time() if now is None else now, session_id))

    # -- leads --------------------------------------------------------------------------
    def _insert(self, run: Run, sql: str, args: Sequence) -> int:
        """Insert one row; its id."""
        return int(run(sql + " RETURNING id", args).fetchall()[0][0])

    def add_lead(self, session_id: str, channel: str, org_id: str, org_name: str, lang: str, message: str,
                 orgs: list[list[str]] | None = None, name: str | None = None, asker_org: str | None = None,
                 contact: str | None = None, contact_kind: str | None = None, need: str | None = None,
                 conversation: list | None = None, consent_at: float | None = None,
                 request_key: str | None = None) -> int:
        now = time.time()
        orgs = orgs or [[org_id, org_name]]
        with self._tx(write=True) as run:
            rows = run(
                "INSERT INTO leads(created, updated, last_inbound, session_id, channel, org_id, org_name, lang, message, "
                "organisations, name, asker_org, contact, contact_kind, need, conversation, consent_at, request_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(request_key) DO NOTHING RETURNING id",
                (now, now, now, session_id, channel, org_id, org_name, lang, message, json.dumps(orgs, ensure_ascii=False),
                 name, asker_org, contact, contact_kind, need,
                 None if conversation is None else json.dumps(conversation, ensure_ascii=False), consent_at, request_key),
            ).fetchall()
            if rows:
                return int(rows[0][0])
            # the same request stored by a racing turn: its lead (committed: the insert waited for it)
            return int(run("SELECT id FROM leads WHERE request_key = ?", (request_key,)).fetchone()[0])

    def leads(self, status: str | None = None, limit: int = 200, channel: str | None = None, lang: str | None = None,
              assignee: str | None = None, text: str | None = None, lead_id: int | None = None) -> list[dict[str, Any]]:
        where, args = [], []
        for column, value in (("status", status), ("channel", channel), ("lang", lang), ("assignee", assignee), ("id", lead_id)):
            if value is not None and value != "":
                where.append(f"{column} = ?")
                args.append(value)
        if text:
            where.append(self.contains.format(
                "lower(coalesce(name, '') || ' ' || coalesce(asker_org, '') || ' ' || coalesce(need, '') || ' ' || "
                "org_name || ' ' || coalesce(organisations, '') || ' ' || coalesce(contact, '') || ' ' || message)", "lower(?)"))
            args.append(text)
        sql = f"SELECT {', '.join(LEAD_FIELDS)} FROM leads"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._tx() as run:
            rows = run(sql, (*args, limit)).fetchall()
        return [_lead_row(r) for r in rows]

    def update_lead(self, lead_id: int, status: str | None = None, outcome: str | None = None,
                    assignee: str | None = None, note: str | None = None, author: str = "") -> dict[str, Any] | None:
        now = time.time()
        with self._tx(write=True) as run:
            row = run("SELECT status, notes FROM leads WHERE id = ?" + self.lock_row, (lead_id,)).fetchone()
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
            run(f"UPDATE leads SET {', '.join(sets)} WHERE id = ?", (*args, lead_id))
        return self.lead(lead_id)

    # -- staff messages -----------------------------------------------------------------
    def add_staff_message(self, lead_id: int, session_id: str, channel: str, text: str, delivery: str, author: str = "") -> dict[str, Any]:
        now = time.time()
        with self._tx(write=True) as run:
            message_id = self._insert(
                run, "INSERT INTO staff_messages(lead_id, session_id, channel, created, author, text, delivery) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (lead_id, session_id, channel, now, author, text, delivery))
            run("UPDATE leads SET updated = ? WHERE id = ?", (now, lead_id))
        return {"id": message_id, "lead_id": lead_id, "created": now, "text": text, "delivery": delivery,
                "author": author, "sender": "staff"}

    def staff_messages(self, session_id: str | None = None, lead_id: int | None = None, after: int = 0) -> list[dict[str, Any]]:
        column, value = ("session_id", session_id) if session_id is not None else ("lead_id", lead_id)
        with self._tx() as run:
            rows = run(f"SELECT {', '.join(MESSAGE_FIELDS)} FROM staff_messages "
                       f"WHERE {column} = ? AND id > ? ORDER BY id", (value, after)).fetchall()
        return [dict(zip(MESSAGE_FIELDS, r)) for r in rows]

    def messages_by_lead(self, lead_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in lead_ids}
        if not lead_ids:
            return out
        marks = ", ".join("?" * len(lead_ids))
        with self._tx() as run:
            rows = run(f"SELECT {', '.join(MESSAGE_FIELDS)} FROM staff_messages "
                       f"WHERE lead_id IN ({marks}) ORDER BY id", list(lead_ids)).fetchall()
        for r in rows:
            out[r[1]].append(dict(zip(MESSAGE_FIELDS, r)))
        return out

    def mark_shown(self, session_id: str) -> None:
        with self._tx(write=True) as run:
            run("UPDATE staff_messages SET delivery = 'shown' WHERE session_id = ? AND delivery = 'waiting'", (session_id,))

    # -- threads with the team ------------------------------------------------------------
    def add_user_message(self, lead_id: int, session_id: str, channel: str, text: str) -> dict[str, Any]:
        now = time.time()
        with self._tx(write=True) as run:
            message_id = self._insert(
                run, "INSERT INTO staff_messages(lead_id, session_id, channel, created, author, text, delivery, sender) "
                     "VALUES (?, ?, ?, ?, '', ?, 'unread', 'user')", (lead_id, session_id, channel, now, text))
            run("UPDATE leads SET updated = ?, last_inbound = ? WHERE id = ?", (now, now, lead_id))
        return {"id": message_id, "lead_id": lead_id, "created": now, "text": text, "delivery": "unread",
                "author": "", "sender": "user"}

    def open_thread(self, session_id: str) -> dict[str, Any] | None:
        with self._tx() as run:
            row = run("SELECT l.id, l.status, MAX(m.id) FROM leads l JOIN staff_messages m ON m.lead_id = l.id "
                      "WHERE l.session_id = ? AND l.status <> 'closed' AND m.sender = 'staff' AND m.delivery <> 'e-mail' "
                      "GROUP BY l.id, l.status ORDER BY l.id DESC LIMIT 1", (session_id,)).fetchone()
        return None if row is None else {"lead_id": int(row[0]), "status": row[1], "last_staff": int(row[2])}

    def session_leads(self, session_id: str, limit: int = 20) -> list[dict[str, Any]]:
        with self._tx() as run:
            rows = run(f"SELECT {', '.join(LEAD_FIELDS)} FROM leads WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                       (session_id, limit)).fetchall()
        return [_lead_row(r) for r in rows]

    def mark_read(self, lead_id: int) -> int:
        with self._tx(write=True) as run:
            return run("UPDATE staff_messages SET delivery = 'read' WHERE lead_id = ? AND sender = 'user' AND delivery = 'unread'",
                       (lead_id,)).rowcount

    # -- FAQ ------------------------------------------------------------------------------
    @staticmethod
    def _faq_row(row: tuple) -> dict[str, Any]:
        return {"id": int(row[0]), "updated": row[1], "questions": json.loads(row[2]), "answers": json.loads(row[3])}

    def faq_entries(self) -> list[dict[str, Any]]:
        with self._tx() as run:
            rows = run("SELECT id, updated, questions, answers FROM faq ORDER BY id").fetchall()
        return [self._faq_row(r) for r in rows]

    def add_faq(self, questions: dict[str, list[str]], answers: dict[str, str]) -> dict[str, Any]:
        now = time.time()
        with self._tx(write=True) as run:
            faq_id = self._insert(run, "INSERT INTO faq(updated, questions, answers) VALUES (?, ?, ?)",
                                  (now, json.dumps(questions, ensure_ascii=False), json.dumps(answers, ensure_ascii=False)))
        return {"id": faq_id, "updated": now, "questions": questions, "answers": answers}

    def update_faq(self, faq_id: int, questions: dict[str, list[str]], answers: dict[str, str]) -> dict[str, Any] | None:
        now = time.time()
        with self._tx(write=True) as run:
            changed = run("UPDATE faq SET updated = ?, questions = ?, answers = ? WHERE id = ?",
                          (now, json.dumps(questions, ensure_ascii=False), json.dumps(answers, ensure_ascii=False), faq_id)).rowcount
        return {"id": faq_id, "updated": now, "questions": questions, "answers": answers} if changed else None

    def delete_faq(self, faq_id: int) -> bool:
        with self._tx(write=True) as run:
            gone = run("DELETE FROM faq WHERE id = ?", (faq_id,)).rowcount
            if gone:  # the version must change even when the deleted entry was not the newest
                run("INSERT INTO meta(key, value) VALUES ('faq_deleted', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(time.time()).encode(),))
        return bool(gone)

    def seed_faq(self, entries: list[dict[str, Any]]) -> int:
        now = time.time()
        with self._tx(write=True) as run:
            if not run("INSERT INTO meta(key, value) VALUES ('faq_seeded', ?) ON CONFLICT(key) DO NOTHING",
                       (str(now).encode(),)).rowcount:
                return 0
            run.many("INSERT INTO faq(updated, questions, answers) VALUES (?, ?, ?)",
                     [(now, json.dumps(e["questions"], ensure_ascii=False), json.dumps(e["answers"], ensure_ascii=False))
                      for e in entries])
        return len(entries)

    def faq_version(self) -> tuple[int, float]:
        with self._tx() as run:
            count, last = run("SELECT COUNT(*), MAX(updated) FROM faq").fetchone()
            deleted = run("SELECT value FROM meta WHERE key = 'faq_deleted'").fetchone()
        return int(count), max(float(last or 0), float(bytes(deleted[0]).decode()) if deleted else 0.0)

    def log_unanswered(self, lang: str, text: str, user: str, channel: str) -> None:
        with self._tx(write=True) as run:
            run("INSERT INTO faq_unanswered(created, lang, text, user_hash) VALUES (?, ?, ?, ?)",
                (time.time(), lang, text[:500], user_hash(self._salt, channel, user)))

    def unanswered(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._tx() as run:
            rows = run("SELECT id, created, lang, text FROM faq_unanswered ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(zip(("id", "created", "lang", "text"), r)) for r in rows]

    def delete_unanswered(self, item_id: int) -> bool:
        with self._tx(write=True) as run:
            return bool(run("DELETE FROM faq_unanswered WHERE id = ?", (item_id,)).rowcount)

    # -- privacy ------------------------------------------------------------------------
    def erase_session(self, session_id: str, channel: str) -> dict[str, int]:
        pseudonym = user_hash(self._salt, channel, session_id)
        self.flush_query_log()
        with self._tx(write=True) as run:
            counts = {
                "leads": run("DELETE FROM leads WHERE session_id = ?", (session_id,)).rowcount,
                "messages": run("DELETE FROM staff_messages WHERE session_id = ?", (session_id,)).rowcount,
                "sessions": run("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount,
                "queries": run("DELETE FROM query_log WHERE user_hash = ?", (pseudonym,)).rowcount,
                "questions": run("DELETE FROM faq_unanswered WHERE user_hash = ?", (pseudonym,)).rowcount,
            }
            if alerts := self._erase_alerts(run, session_id):  # alerts (members); the key only when some
                counts["alerts"] = alerts
            if authored := run("DELETE FROM posts WHERE address = ?", (session_id,)).rowcount:  # opportunity posts
                counts["posts"] = authored
        self._scrub()
        log.info("erased a user's data on request: %s", counts)
        return counts

    def purge(self, query_log_days: float | None, closed_lead_days: float | None, now: float | None = None) -> dict[str, int]:
        now = time.time() if now is None else now
        self.flush_query_log()
        counts = {"queries": 0, "leads": 0, "messages": 0}
        with self._tx(write=True) as run:
            if query_log_days is not None:
                counts["queries"] = run("DELETE FROM query_log WHERE created < ?", (now - query_log_days * 86400,)).rowcount
            if closed_lead_days is not None:
                cutoff = now - closed_lead_days * 86400
                counts["messages"] = run(
                    "DELETE FROM staff_messages WHERE lead_id IN (SELECT id FROM leads WHERE status = 'closed' AND closed_at < ?)",
                    (cutoff,)).rowcount
                counts["leads"] = run("DELETE FROM leads WHERE status = 'closed' AND closed_at < ?", (cutoff,)).rowcount
            run("DELETE FROM sessions WHERE updated < ?", (now - self.ttl,))
        self._sweep(now)
        self._scrub()
        return counts

    def _scrub(self) -> None:
        """After an erasure or a purge: make the deleted rows unreadable in the files too (each store its way)."""

    # -- short-lived shared state -----------------------------------------------------------
    def _sweep(self, now: float) -> None:
        """Delete expired keys, and budgets full for an hour (a full bucket is the same as none; the
        hour leaves room for workers whose clocks differ)."""
        with self._tx(write=True, shortlived=True) as run:
            run("DELETE FROM shortlived WHERE expires <= ?", (now,))
            run("DELETE FROM budgets WHERE expires <= ?", (now - 3600,))

    def _maybe_sweep(self, now: float) -> None:
        self._sweep_count += 1
        if self._sweep_count % self.SWEEP_EVERY == 0:
            self._sweep(time.time())

    def _one(self, sql: str, args: Sequence = (), shortlived: bool = True) -> tuple[list[tuple], int]:
        """One statement on its own (atomic by itself: no transaction block, one round trip); its rows and rowcount."""
        with self._tx(shortlived=shortlived) as run:
            cur = run(sql, args)
            return (cur.fetchall() if cur.description is not None else []), cur.rowcount

    def claim(self, key: str, ttl: float) -> bool:
        now = time.time()
        won = self._one("INSERT INTO shortlived(key, value, expires) VALUES (?, 'true', ?) ON CONFLICT(key) DO UPDATE "
                        "SET value = excluded.value, expires = excluded.expires WHERE shortlived.expires <= ?",
                        (key, now + ttl, now))[1] == 1
        self._maybe_sweep(now)
        return won

    def put(self, key: str, value: Any, ttl: float) -> None:
        now = time.time()
        self._one("INSERT INTO shortlived(key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                  "SET value = excluded.value, expires = excluded.expires", (key, json.dumps(value, ensure_ascii=False), now + ttl))
        self._maybe_sweep(now)

    def get(self, key: str) -> Any | None:
        rows = self._one("SELECT value FROM shortlived WHERE key = ? AND expires > ?", (key, time.time()))[0]
        return json.loads(rows[0][0]) if rows else None

    def pop(self, key: str) -> Any | None:
        now = time.time()
        rows = self._one("DELETE FROM shortlived WHERE key = ? RETURNING value, expires", (key,))[0]
        return json.loads(rows[0][0]) if rows and rows[0][1] > now else None

    def take(self, key: str, cost: float, per_second: float, capacity: float, *, debt: bool = False,
             now: float | None = None) -> float:
        now = time.time() if now is None else now
        # One upsert, so one round trip: a new key starts full (its row computed here); a known one
        # is refilled and spent in SQL, every SET reading the row as it was. "short" keeps how much a
        # refused request lacked (its wait); "expires" is when the bucket is surely full again.
        balance, wait = spend(capacity, now, now, cost, per_second, capacity, debt)
        least, greatest = self.least, self.greatest
        refilled = f"{least}(?, budgets.balance + {greatest}(0, ? - budgets.stamp) * ?)"
        r = (capacity, now, per_second)
        if debt:
            set_balance, balance_args = f"{greatest}(?, {refilled} - ?)", (-capacity, *r, cost)
            set_short, short_args = "0", ()
        else:
            set_balance = f"CASE WHEN {refilled} >= ? THEN {refilled} - ? ELSE {refilled} END"
            balance_args = (*r, cost, *r, cost, *r)
            set_short, short_args = f"CASE WHEN {refilled} >= ? THEN 0 ELSE ? - {refilled} END", (*r, cost, cost, *r)
        rows = self._one(
            f"INSERT INTO budgets(key, balance, stamp, expires, short) VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE "
            f"SET balance = {set_balance}, short = {set_short}, stamp = {greatest}(budgets.stamp, ?), expires = ? "
            f"RETURNING balance, short",
            (key, balance, now, now + 2 * capacity / per_second, 0 if debt else wait * per_second,
             *balance_args, *short_args, now, now + 2 * capacity / per_second))[0]
        self._maybe_sweep(now)
        balance, short = rows[0]
        if debt:
            return 0.0 if balance > 0 else -balance / per_second + 1e-3
        return short / per_second

    def balance(self, key: str, per_second: float, capacity: float, now: float | None = None) -> float:
        now = time.time() if now is None else now
        rows = self._one("SELECT balance, stamp FROM budgets WHERE key = ?", (key,))[0]
        return capacity if not rows else spend(rows[0][0], rows[0][1], now, 0.0, per_second, capacity, False)[0]

    # -- query log ----------------------------------------------------------------------
    def _insert_query_rows(self, rows: list[tuple]) -> None:
        with self._tx(write=True) as run:
            run.many("INSERT INTO query_log(created, channel, lang, query, results, user_hash) VALUES (?, ?, ?, ?, ?, ?)", rows)

    def queries(self, limit: int = 100, zero_only: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT created, channel, lang, query, results, user_hash FROM query_log"
        if zero_only:
            sql += " WHERE results = 0"
        sql += " ORDER BY id DESC LIMIT ?"
        self.flush_query_log()
        with self._tx() as run:
            rows = run(sql, (limit,)).fetchall()
        keys = ("created", "channel", "lang", "query", "results", "user_hash")
        return [dict(zip(keys, r)) for r in rows]

    def query_counts(self) -> dict[str, dict[str, int]]:
        self.flush_query_log()
        with self._tx() as run:
            by_lang = dict(run("SELECT lang, COUNT(*) FROM query_log GROUP BY lang").fetchall())
            by_channel = dict(run("SELECT channel, COUNT(*) FROM query_log GROUP BY channel").fetchall())
            zero = run("SELECT COUNT(*) FROM query_log WHERE results = 0").fetchone()[0]
            total = run("SELECT COUNT(*) FROM query_log").fetchone()[0]
        return {"by_lang": by_lang, "by_channel": by_channel, "totals": {"all": total, "zero_results": zero}}


class StoredTextError(ValueError):
    """A text for the state store holds a NUL character: PostgreSQL's text type cannot hold one
    (it raised, and the request ended in a 500), so every store refuses it alike (422)."""

    def __init__(self) -> None:
        super().__init__("text must not contain NUL (\\u0000) characters")


def _no_nul(args: Sequence) -> Sequence:
    for value in args:
        if isinstance(value, str) and "\x00" in value:
            raise StoredTextError()
    return args


class _Runner:
    """``run(sql, args)`` and ``run.many(sql, rows)`` on one connection, placeholders translated;
    a text holding NUL is refused before it reaches the database (:class:`StoredTextError`)."""

    def __init__(self, conn: Any, placeholder: str = "?"):
        self.conn = conn
        self.placeholder = placeholder

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def __call__(self, sql: str, args: Sequence = ()) -> Any:
        return self.conn.execute(self._sql(sql), _no_nul(args))

    def many(self, sql: str, rows: list[tuple]) -> None:
        rows = [_no_nul(r) for r in rows]
        if hasattr(self.conn, "executemany"):
            self.conn.executemany(self._sql(sql), rows)
        else:
            with self.conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)


class SQLiteStateStore(SqlStateStore):
    """The state in one SQLite file (WAL), by default ``state.sqlite`` in the data folder.

    Worker processes on one data folder share it: SQLite's file lock makes each write
    transaction atomic across them. Durable writes wait for the disk (synchronous=FULL);
    the short-lived state goes through a second connection that does not (synchronous=NORMAL),
    so a rate-limit check costs no fsync.
    """

    errors = (sqlite3.OperationalError, OSError, StateUnavailableError)
    HOUSEKEEPING_SECONDS = 5.0

    def describe(self) -> str:
        return f"sqlite at {self.path}"

    def __init__(self, path: str | Path, ttl_seconds: float = 3600, log_backlog: int = 10_000,
                 log_delay: float = 0.5):
        super().__init__(ttl_seconds, log_backlog, log_delay)
        self.path = Path(path)
        self._lock = threading.Lock()
        private_files(self.path)
        self._db = open_sqlite(self.path, _SCHEMA)
        # deleted rows are overwritten with zeros, not left in free space for anyone holding the file
        self._db.execute("PRAGMA secure_delete=ON")
        # SQLite's own lower() folds only ASCII: the staff's lead search ("CORTIÇA", "ÁGUEDA") needs all of it
        self._db.create_function("lower", 1, lambda v: v.lower() if isinstance(v, str) else v, deterministic=True)
        self._migrate()
        self._fast_lock = threading.Lock()
        self._fast = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._fast.execute("PRAGMA synchronous=NORMAL")
        self._fast.execute("PRAGMA secure_delete=ON")
        # A checkpoint waits for the disk: never on a request's short-lived write, but every few
        # seconds from a housekeeping thread (which also drops expired keys).
        self._fast.execute("PRAGMA wal_autocheckpoint=0")
        self._closing = threading.Event()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="state-housekeeping", daemon=True)
        self._start()
        self._housekeeper.start()

    @contextmanager
    def _tx(self, write: bool = False, shortlived: bool = False) -> Iterator[Run]:
        db, lock = (self._fast, self._fast_lock) if shortlived else (self._db, self._lock)
        with lock:
            if write:
                with write_transaction(db):
                    yield _Runner(db)
            else:
                yield _Runner(db)

    def _columns(self, run: Run, table: str) -> set[str]:
        return {r[1] for r in run(f"PRAGMA table_info({table})")}

    def connection_secure_delete(self) -> tuple[int, int]:
        """``PRAGMA secure_delete`` of both connections (1: on), whatever SQLite's build defaults to."""
        with self._lock, self._fast_lock:
            return (self._db.execute("PRAGMA secure_delete").fetchone()[0],
                    self._fast.execute("PRAGMA secure_delete").fetchone()[0])

    def _scrub(self) -> None:
        """Copy the zeroed pages into the file and empty the WAL: until a checkpoint, the write-ahead
        log still holds the pages as they were before the delete (names, e-mails, needs)."""
        try:
            with self._lock, self._fast_lock:
                busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:  # the rows are deleted (committed) already: the next checkpoint finishes this
            log.warning("the state file's write-ahead log could not be emptied after an erasure", exc_info=True)
            return
        if busy:  # another process is reading: the housekeeping checkpoint finishes it a moment later
            log.warning("the state file's write-ahead log could not be emptied now (another process is reading it)")

    def _maybe_sweep(self, now: float) -> None:
        """Expired keys are swept by the housekeeping thread, off the request path."""

    def _housekeeping(self) -> None:
        while not self._closing.wait(self.HOUSEKEEPING_SECONDS):
            try:
                self._sweep(time.time())
                with self._lock:
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                log.warning("state housekeeping failed", exc_info=True)

    def close(self) -> None:
        super().close()
        self._closing.set()
        self._housekeeper.join(timeout=30)
        with self._lock, self._fast_lock:
            self._fast.close()
            self._db.close()


PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600


def private_folder(folder: Path) -> None:
    """The data folder readable by its owner only (made so, or fixed at start): it holds leads and keys."""
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    mode = folder.stat().st_mode
    if mode & stat.S_ISVTX:
        # A shared folder such as /tmp (sticky, world-writable): making it 0700 would lock every
        # other user and service out of it. The files themselves are still made 0600.
        return
    if mode & 0o777 != PRIVATE_FOLDER:
        os.chmod(folder, PRIVATE_FOLDER)


def private_files(path: Path) -> None:
    """The state file and its -wal and -shm readable by the owner only. SQLite makes the -wal and
    -shm with the main file's mode, so the main file is created 0600 before SQLite opens it."""
    private_folder(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if name.stat().st_mode & 0o777 != PRIVATE_FILE:
                os.chmod(name, PRIVATE_FILE)
        except FileNotFoundError:
            pass


def open_state_store(settings: Any) -> StateStore:
    """The store the settings ask for: PostgreSQL when ``CPC_STATE_URL`` is set, else
    ``state.sqlite`` in the data folder."""
    ttl = settings.session_ttl_minutes * 60
    if settings.state_url is not None and settings.state_url.get_secret_value():
        try:
            from ._state_pg import PostgresStateStore
        except ImportError as exc:
            raise RuntimeError("CPC_STATE_URL needs psycopg: pip install 'cpc-partner-finder[postgres]'") from exc
        if Path(settings.data_dir).is_dir():  # the index's folder: private too, but not made here
            private_folder(Path(settings.data_dir))
        return PostgresStateStore(settings.state_url.get_secret_value(), ttl_seconds=ttl)
    return SQLiteStateStore(settings.data_dir / "state.sqlite", ttl_seconds=ttl)
