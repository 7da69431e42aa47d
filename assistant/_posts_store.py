"""Opportunity posts as the state store keeps them (SQLite and PostgreSQL alike).

Kept apart from ``_state.py`` like the alert tables: :class:`PostStore` is what the post code
uses, :class:`SqlPostStore` its SQL, mixed into the SQL state stores. A post is written whole in
one statement; its status moves pending → published | rejected (staff), published → withdrawn.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from typing import Any, Sequence

POST_FIELDS = ("id", "created", "updated", "status", "type", "lang", "title", "description", "sectors", "side_sought",
               "closes", "author", "channel", "address", "reason", "reviewer")
STATUSES = ("pending", "published", "rejected", "withdrawn")
EDITABLE = ("type", "lang", "title", "description", "sectors", "side_sought", "closes")  # what staff may correct


def _post_row(row: Sequence) -> dict[str, Any]:
    post = dict(zip(POST_FIELDS, row))
    post["sectors"] = json.loads(post["sectors"])
    return post


class PostStore(ABC):
    """What opportunity posts need from the state store."""

    @abstractmethod
    def add_post(self, post: dict[str, Any], status: str, channel: str, address: str) -> dict[str, Any]:
        """Store a new post (``post``: the fields of ``index.Post``); the stored row."""

    @abstractmethod
    def post(self, post_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def posts(self, status: str | None = None, channel: str | None = None, address: str | None = None,
              limit: int = 500) -> list[dict[str, Any]]:
        """Posts, newest first."""

    @abstractmethod
    def set_post_status(self, post_id: str, status: str, expect: str | None = None, reason: str | None = None,
                        reviewer: str | None = None, fields: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Move a post to ``status`` if it is in ``expect`` (any when None); the row, or None if it was not.
        ``fields``: staff's corrections (of :data:`EDITABLE`), written in the same statement, so a
        post is never published half-corrected."""

    @abstractmethod
    def posts_version(self) -> tuple[int, float]:
        """(count, last change): changes when any post is added or changes status."""


_COLUMNS = ", ".join(POST_FIELDS)


class SqlPostStore(PostStore):
    """The posts table in SQL, for :class:`assistant._state.SqlStateStore` (``_tx``, ``real``)."""

    def _post_tables(self, run) -> None:
        real = getattr(self, "real", "REAL")
        run(f"""CREATE TABLE IF NOT EXISTS posts (
            id TEXT PRIMARY KEY, created {real} NOT NULL, updated {real} NOT NULL, status TEXT NOT NULL,
            type TEXT NOT NULL, lang TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL,
            sectors TEXT NOT NULL, side_sought TEXT NOT NULL, closes TEXT NOT NULL, author TEXT,
            channel TEXT NOT NULL, address TEXT NOT NULL, reason TEXT, reviewer TEXT)""")
        run("CREATE INDEX IF NOT EXISTS posts_who ON posts(channel, address)")
        run("CREATE INDEX IF NOT EXISTS posts_status ON posts(status)")

    def add_post(self, post, status, channel, address):
        if status not in STATUSES:
            raise ValueError(f"unknown post status {status!r}")
        now = time.time()
        row = (post["id"], now, now, status, post["type"], post["lang"], post["title"], post["description"],
               json.dumps(list(post.get("sectors") or []), ensure_ascii=False), post["side_sought"], str(post["closes"]),
               post.get("author"), channel, address, None, None)
        with self._tx(write=True) as run:
            run(f"INSERT INTO posts({_COLUMNS}) VALUES ({', '.join('?' * len(POST_FIELDS))})", row)
        return _post_row(row)

    def post(self, post_id):
        with self._tx() as run:
            row = run(f"SELECT {_COLUMNS} FROM posts WHERE id = ?", (post_id,)).fetchone()
        return None if row is None else _post_row(row)

    def posts(self, status=None, channel=None, address=None, limit=500):
        where, args = [], []
        for column, value in (("status", status), ("channel", channel), ("address", address)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM posts" + (" WHERE " + " AND ".join(where) if where else "")
        with self._tx() as run:
            return [_post_row(r) for r in run(sql + " ORDER BY created DESC, id LIMIT ?", (*args, int(limit))).fetchall()]

    def set_post_status(self, post_id, status, expect=None, reason=None, reviewer=None, fields=None):
        if status not in STATUSES:
            raise ValueError(f"unknown post status {status!r}")
        fields = dict(fields or {})
        unknown = set(fields) - set(EDITABLE)
        if unknown:
            raise ValueError(f"not a field staff may correct: {sorted(unknown)}")
        if "sectors" in fields:
            fields["sectors"] = json.dumps(list(fields["sectors"] or []), ensure_ascii=False)
        if "closes" in fields:
            fields["closes"] = str(fields["closes"])
        sets = "".join(f", {name} = ?" for name in fields)
        sql = f"UPDATE posts SET status = ?, updated = ?, reason = ?, reviewer = ?{sets} WHERE id = ?"
        args: list[Any] = [status, time.time(), reason, reviewer, *fields.values(), post_id]
        if expect is not None:
            sql += " AND status = ?"
            args.append(expect)
        with self._tx(write=True) as run:
            if not run(sql, args).rowcount:
                return None
            row = run(f"SELECT {_COLUMNS} FROM posts WHERE id = ?", (post_id,)).fetchone()
        return _post_row(row)

    def posts_version(self):
        with self._tx() as run:
            n, last = run("SELECT COUNT(*), MAX(updated) FROM posts").fetchone()
        return int(n), float(last or 0.0)
