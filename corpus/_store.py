"""The records of the data folder, in SQLite (WAL), so ingests are atomic and durable."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ._schema import Organisation

# Records read back from a store or an index were checked when they came in; the size limits of
# today do not apply to them (a folder written under older limits stays readable).
STORED = {"stored": True}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS organisations (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


# Legal raw inside a JSON string, but line breaks to str.splitlines() and to many editors and tools.
_LINE_SEPARATORS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def record_json(rec: Organisation) -> str:
    """One record as one line of JSON: UTF-8 text, with the Unicode line separators escaped."""
    body = json.dumps(rec.model_dump(mode="json", exclude_none=True), ensure_ascii=False, sort_keys=True)
    return body.translate(_LINE_SEPARATORS)


def corpus_hash(records: Iterable[Organisation]) -> str:
    """Order-independent digest of the records' content; tells whether an index is stale."""
    return lines_hash(record_json(r).encode("utf-8") for r in sorted(records, key=lambda r: r.id))


def bodies_hash(bodies: Mapping[str, str]) -> str:
    """``corpus_hash`` of records given as id -> their ``record_json`` line, without parsing them."""
    return lines_hash(bodies[rid].encode("utf-8") for rid in sorted(bodies))


def lines_hash(lines: Iterable[bytes]) -> str:
    """``corpus_hash`` of records given as their ``record_json`` lines in id order: an index
    hashes its records file line by line, nothing decoded or sorted (100k records once held
    ~250 MB and a second of a write for it)."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line)
        h.update(b"\n")
    return h.hexdigest()


def open_sqlite(path: Path, schema: str) -> sqlite3.Connection:
    """A SQLite file in WAL mode with full fsync: a committed write survives a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    # Two processes opening a new file together (two workers, two `cpc` commands): switching it to
    # WAL needs the file to itself and SQLite answers "locked" at once, without waiting: try again.
    deadline = time.monotonic() + 30
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.01)
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on an autocommit connection: committed whole or rolled back whole."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (a full disk): keep the first error
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise


class RecordStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM organisations").fetchone()[0]

    def all(self) -> list[Organisation]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM organisations ORDER BY id").fetchall()
        return [Organisation.model_validate_json(body, context=STORED) for (body,) in rows]

    def get(self, org_id: str) -> Organisation | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM organisations WHERE id = ?", (org_id,)).fetchone()
        return Organisation.model_validate_json(row[0], context=STORED) if row else None

    def _write(self, sql_rows: list[tuple], sql: str, *, replace_all: bool = False) -> None:
        with self._lock, write_transaction(self._db) as db:
            if replace_all:
                db.execute("DELETE FROM organisations")
            db.executemany(sql, sql_rows)

    def upsert(self, records: Iterable[Organisation]) -> None:
        rows = [(r.id, record_json(r)) for r in records]
        self._write(
            rows,
            "INSERT INTO organisations(id, body) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body,"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )

    def replace_all(self, records: Iterable[Organisation]) -> None:
        rows = [(r.id, record_json(r)) for r in records]
        self._write(rows, "INSERT INTO organisations(id, body) VALUES (?, ?)", replace_all=True)

    def delete(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        with self._lock, write_transaction(self._db) as db:
            cur = db.executemany("DELETE FROM organisations WHERE id = ?", [(i,) for i in ids])
            return cur.rowcount

    def bodies(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """The stored JSON of ``ids`` (all records when None), to put back with ``restore``."""
        with self._lock:
            if ids is None:
                return dict(self._db.execute("SELECT id, body FROM organisations").fetchall())
            out = {}
            for i in ids:
                row = self._db.execute("SELECT body FROM organisations WHERE id = ?", (i,)).fetchone()
                if row:
                    out[i] = row[0]
            return out

    def restore(self, before: dict[str, str], touched: Iterable[str]) -> None:
        """Undo a committed write: the ``touched`` ids go back to ``before`` (absent ones are removed)."""
        touched = list(touched)
        with self._lock, write_transaction(self._db) as db:
            db.executemany("DELETE FROM organisations WHERE id = ?", [(i,) for i in touched if i not in before])
            db.executemany("INSERT INTO organisations(id, body) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET"
                           " body = excluded.body", list(before.items()))
