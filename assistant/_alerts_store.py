"""Alert subscriptions and their notices, as the state store keeps them (SQLite and PostgreSQL alike).

Kept apart from ``_state.py`` so the alert tables live in one place: :class:`AlertStore` is the
interface the alert code uses, :class:`SqlAlertStore` its SQL, mixed into the SQL state stores.
A notice is one (subscription, record) pair, unique: an item is never announced twice, and a
notice is written (pending) before anything is sent, so a restart loses none.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from typing import Any, Sequence

ALERT_FIELDS = ("id", "created", "channel", "address", "lang", "query", "filters", "understood", "email",
                "base_url", "active", "last_digest", "last_seen")


def _alert_row(row: Sequence) -> dict[str, Any]:
    sub = dict(zip(ALERT_FIELDS, row))
    sub["filters"] = json.loads(sub["filters"])
    sub["understood"] = json.loads(sub["understood"])
    sub["active"] = bool(sub["active"])
    return sub


class AlertStore(ABC):
    """What alerts need from the state store."""

    @abstractmethod
    def add_alert(self, channel: str, address: str, lang: str, query: str, filters: dict, understood: dict,
                  vector: bytes | None = None, email: str | None = None, base_url: str | None = None) -> int:
        """A new active subscription; its id."""

    @abstractmethod
    def alert(self, alert_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def alerts(self, channel: str | None = None, address: str | None = None, active: bool | None = True) -> list[dict[str, Any]]:
        """Subscriptions (without their vectors), oldest first."""

    @abstractmethod
    def alert_vectors(self) -> list[tuple[dict[str, Any], bytes | None]]:
        """Every active subscription with its stored query vector, for matching an ingest."""

    @abstractmethod
    def stop_alert(self, alert_id: int) -> bool:
        """Deactivate one subscription (its pending notices are dropped); whether it was active."""

    @abstractmethod
    def stop_alerts(self, channel: str, address: str) -> int:
        """Deactivate every subscription of one channel identity; how many were active."""

    @abstractmethod
    def seen_alerts(self, channel: str, address: str, now: float | None = None) -> None:
        """The user wrote on this identity (WeChat's customer-service window counts from here)."""

    @abstractmethod
    def add_notices(self, rows: Sequence[tuple[int, str, str]], now: float | None = None, matched: int | None = None) -> int:
        """(subscription id, record id, record name) pending notices; pairs already known are
        skipped (never the same item twice). How many were new. ``matched``: the last "to match"
        marker these notices answer (``to_match``): it and those before it are removed in the same
        transaction, so a crash leaves either both or neither."""

    @abstractmethod
    def mark_to_match(self, record_ids: Sequence[str], now: float | None = None) -> None:
        """Records just ingested (or changed) that alerts have not matched yet: kept until matched,
        so an ingest whose matching did not run (a restart, a killed process) is matched later."""

    @abstractmethod
    def to_match(self) -> tuple[list[str], int | None]:
        """(record ids waiting to be matched, in order and once each; the last marker read, for
        ``add_notices(matched=…)``), or ([], None)."""

    @abstractmethod
    def due_notices(self, now: float | None = None, every: float = 86400) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Active subscriptions whose last digest is at least ``every`` seconds old, with their unsent notices."""

    @abstractmethod
    def mark_sent(self, alert_id: int, record_ids: Sequence[str], now: float | None = None) -> int:
        """The notices went out: they and the subscription's digest time are written in one transaction."""

    @abstractmethod
    def notices(self, alert_id: int) -> list[dict[str, Any]]: ...

    @abstractmethod
    def session_leads(self, session_id: str) -> list[dict[str, Any]]:
        """The leads one conversation recorded, newest first."""


_SUB_COLUMNS = ", ".join(ALERT_FIELDS)


class SqlAlertStore(AlertStore):
    """The alert tables in SQL, for :class:`assistant._state.SqlStateStore` (which provides ``_tx``, ``_insert``)."""

    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"  # spelt otherwise in PostgreSQL
    blob = "BLOB"
    real = "REAL"

    def _alert_tables(self, run) -> None:
        run(f"""CREATE TABLE IF NOT EXISTS alert_subscriptions (
            id {self.serial}, created {self.real} NOT NULL, channel TEXT NOT NULL, address TEXT NOT NULL,
            lang TEXT NOT NULL, query TEXT NOT NULL, filters TEXT NOT NULL, understood TEXT NOT NULL,
            vector {self.blob}, email TEXT, base_url TEXT, active INTEGER NOT NULL DEFAULT 1,
            last_digest {self.real}, last_seen {self.real})""")
        run("CREATE INDEX IF NOT EXISTS alert_subscriptions_who ON alert_subscriptions(channel, address)")
        run(f"""CREATE TABLE IF NOT EXISTS alert_notices (
            alert_id INTEGER NOT NULL, record_id TEXT NOT NULL, record_name TEXT NOT NULL,
            created {self.real} NOT NULL, sent {self.real}, PRIMARY KEY (alert_id, record_id))""")
        run(f"""CREATE TABLE IF NOT EXISTS alert_to_match (
            id {self.serial}, record_id TEXT NOT NULL, created {self.real} NOT NULL)""")

    def _erase_alerts(self, run, session_id: str) -> int:
        """A chat identity's subscriptions and notices, gone with "delete my data"."""
        ids = [r[0] for r in run("SELECT id FROM alert_subscriptions WHERE address = ?", (session_id,)).fetchall()]
        for alert_id in ids:
            run("DELETE FROM alert_notices WHERE alert_id = ?", (alert_id,))
        run("DELETE FROM alert_subscriptions WHERE address = ?", (session_id,))
        return len(ids)

    def session_leads(self, session_id: str) -> list[dict[str, Any]]:
        """The leads one conversation recorded, newest first ("my requests")."""
        from ._state import LEAD_FIELDS, _lead_row  # the state module imports this one

        with self._tx() as run:
            rows = run(f"SELECT {', '.join(LEAD_FIELDS)} FROM leads WHERE session_id = ? ORDER BY id DESC", (session_id,)).fetchall()
        return [_lead_row(r) for r in rows]

    def add_alert(self, channel, address, lang, query, filters, understood, vector=None, email=None, base_url=None) -> int:
        now = time.time()
        with self._tx(write=True) as run:
            return self._insert(
                run, "INSERT INTO alert_subscriptions(created, channel, address, lang, query, filters, understood, vector, "
                     "email, base_url, active, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                (now, channel, address, lang, query, json.dumps(filters, ensure_ascii=False),
                 json.dumps(understood, ensure_ascii=False), vector, email, base_url, now))

    def alert(self, alert_id):
        with self._tx() as run:
            row = run(f"SELECT {_SUB_COLUMNS} FROM alert_subscriptions WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else _alert_row(row)

    def alerts(self, channel=None, address=None, active=True):
        where, args = [], []
        for column, value in (("channel", channel), ("address", address)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if active is not None:
            where.append("active = ?")
            args.append(1 if active else 0)
        sql = f"SELECT {_SUB_COLUMNS} FROM alert_subscriptions" + (" WHERE " + " AND ".join(where) if where else "")
        with self._tx() as run:
            return [_alert_row(r) for r in run(sql + " ORDER BY id", args).fetchall()]

    def alert_vectors(self):
        with self._tx() as run:
            rows = run(f"SELECT {_SUB_COLUMNS}, vector FROM alert_subscriptions WHERE active = 1 ORDER BY id").fetchall()
        return [(_alert_row(r[:-1]), None if r[-1] is None else bytes(r[-1])) for r in rows]

    def stop_alert(self, alert_id):
        with self._tx(write=True) as run:
            done = run("UPDATE alert_subscriptions SET active = 0 WHERE id = ? AND active = 1", (alert_id,)).rowcount
            run("DELETE FROM alert_notices WHERE alert_id = ? AND sent IS NULL", (alert_id,))
        return done == 1

    def stop_alerts(self, channel, address):
        with self._tx(write=True) as run:
            ids = [r[0] for r in run("SELECT id FROM alert_subscriptions WHERE channel = ? AND address = ? AND active = 1",
                                     (channel, address)).fetchall()]
            for alert_id in ids:
                run("UPDATE alert_subscriptions SET active = 0 WHERE id = ?", (alert_id,))
                run("DELETE FROM alert_notices WHERE alert_id = ? AND sent IS NULL", (alert_id,))
        return len(ids)

    def seen_alerts(self, channel, address, now=None):
        with self._tx(write=True) as run:
            run("UPDATE alert_subscriptions SET last_seen = ? WHERE channel = ? AND address = ?",
                (time.time() if now is None else now, channel, address))

    NOTICE_BATCH = 500  # rows a statement: 2,000 parameters, well within SQLite's and PostgreSQL's limits

    def add_notices(self, rows, now=None, matched=None):
        """One transaction; a multi-row insert a ``NOTICE_BATCH`` (one statement a row took minutes
        for the half million notices of an ingest of 1,000 records); ``RETURNING`` counts the new ones."""
        rows = list({(int(a), str(r)): (int(a), str(r), str(n)) for a, r, n in rows}.values())
        if not rows and matched is None:
            return 0
        now = time.time() if now is None else now
        added = 0
        with self._tx(write=True) as run:
            if matched is not None:
                run("DELETE FROM alert_to_match WHERE id <= ?", (int(matched),))
            for lo in range(0, len(rows), self.NOTICE_BATCH):
                chunk = rows[lo: lo + self.NOTICE_BATCH]
                values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                args = [v for alert_id, record_id, name in chunk for v in (alert_id, record_id, name, now)]
                added += len(run(f"INSERT INTO alert_notices(alert_id, record_id, record_name, created) VALUES {values} "
                                 "ON CONFLICT(alert_id, record_id) DO NOTHING RETURNING alert_id", args).fetchall())
        return added

    def mark_to_match(self, record_ids, now=None):
        ids = list(dict.fromkeys(str(r) for r in record_ids))
        if not ids:
            return
        now = time.time() if now is None else now
        with self._tx(write=True) as run:
            run.many("INSERT INTO alert_to_match(record_id, created) VALUES (?, ?)", [(rid, now) for rid in ids])

    def to_match(self):
        with self._tx() as run:
            rows = run("SELECT id, record_id FROM alert_to_match ORDER BY id").fetchall()
        if not rows:
            return [], None
        return list(dict.fromkeys(r[1] for r in rows)), int(rows[-1][0])

    def due_notices(self, now=None, every=86400):
        now = time.time() if now is None else now
        with self._tx() as run:
            rows = run(
                f"SELECT {', '.join('s.' + c for c in ALERT_FIELDS)}, n.record_id, n.record_name, n.created "
                "FROM alert_notices n JOIN alert_subscriptions s ON s.id = n.alert_id "
                "WHERE n.sent IS NULL AND s.active = 1 AND (s.last_digest IS NULL OR s.last_digest <= ?) "
                "ORDER BY s.id, n.created, n.record_id", (now - every,)).fetchall()
        out: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        width = len(ALERT_FIELDS)
        for r in rows:
            if not out or out[-1][0]["id"] != r[0]:
                out.append((_alert_row(r[:width]), []))
            out[-1][1].append({"record_id": r[width], "record_name": r[width + 1], "created": r[width + 2]})
        return out

    def mark_sent(self, alert_id, record_ids, now=None):
        now = time.time() if now is None else now
        with self._tx(write=True) as run:
            n = sum(run("UPDATE alert_notices SET sent = ? WHERE alert_id = ? AND record_id = ? AND sent IS NULL",
                        (now, alert_id, rid)).rowcount for rid in record_ids)
            if n:  # a retry that marked nothing is no new digest
                run("UPDATE alert_subscriptions SET last_digest = ? WHERE id = ?", (now, alert_id))
        return n

    def notices(self, alert_id):
        with self._tx() as run:
            rows = run("SELECT record_id, record_name, created, sent FROM alert_notices WHERE alert_id = ? "
                       "ORDER BY created, record_id", (alert_id,)).fetchall()
        return [dict(zip(("record_id", "record_name", "created", "sent"), r)) for r in rows]
