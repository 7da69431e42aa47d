"""Member profiles as the state store keeps them (SQLite and PostgreSQL alike).

Kept apart from ``_state.py`` like the alert tables: :class:`ProfileStore` is what the profile code
needs, :class:`SqlProfileStore` its SQL, mixed into the SQL state stores. A profile row holds the
member's validated fields (JSON), who owns it (channel and channel identity), its moderation status
and, once approved, the record id it is published under. Status changes are compare-and-set, so
two staff approving at once publish once.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from typing import Any, Sequence

PROFILE_FIELDS = ("id", "created", "updated", "status", "channel", "owner", "lang", "data", "consent_at", "reason",
                  "org_id", "email", "published")
_COLUMNS = ", ".join(PROFILE_FIELDS)


def _profile_row(row: Sequence) -> dict[str, Any]:
    profile = dict(zip(PROFILE_FIELDS, row))
    profile["data"] = json.loads(profile["data"])
    return profile


class ProfileStore(ABC):
    """What member profiles need from the state store."""

    @abstractmethod
    def add_profile(self, channel: str, owner: str, lang: str, data: dict, consent_at: float,
                    email: str | None = None) -> int:
        """A new pending profile; its id."""

    @abstractmethod
    def profile(self, profile_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def profiles(self, status: str | None = None, channel: str | None = None, owner: str | None = None,
                 email: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Profiles, newest first (the moderation queue: ``status="pending"``, oldest first)."""

    @abstractmethod
    def update_profile(self, profile_id: int, *, data: dict | None = None, status: str | None = None,
                       reason: str | None = None, consent_at: float | None = None, email: str | None = None,
                       org_id: str | None = None, published: float | None = None,
                       expect: Sequence[str] | None = None) -> bool:
        """Change one profile; with ``expect`` only while its status is one of those. Whether it changed."""

    @abstractmethod
    def delete_profile(self, profile_id: int) -> bool: ...


class SqlProfileStore(ProfileStore):
    """The profile table in SQL, for :class:`assistant._state.SqlStateStore` (``_tx``, ``_insert``, ``serial``, ``real``)."""

    def _profile_tables(self, run) -> None:
        run(f"""CREATE TABLE IF NOT EXISTS member_profiles (
            id {self.serial}, created {self.real} NOT NULL, updated {self.real} NOT NULL, status TEXT NOT NULL,
            channel TEXT NOT NULL, owner TEXT NOT NULL, lang TEXT NOT NULL, data TEXT NOT NULL,
            consent_at {self.real} NOT NULL, reason TEXT, org_id TEXT, email TEXT, published {self.real})""")
        run("CREATE INDEX IF NOT EXISTS member_profiles_owner ON member_profiles(channel, owner)")
        run("CREATE INDEX IF NOT EXISTS member_profiles_status ON member_profiles(status)")

    def add_profile(self, channel, owner, lang, data, consent_at, email=None) -> int:
        now = time.time()
        with self._tx(write=True) as run:
            return self._insert(
                run, "INSERT INTO member_profiles(created, updated, status, channel, owner, lang, data, consent_at, email) "
                     "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                (now, now, channel, owner, lang, json.dumps(data, ensure_ascii=False), consent_at, email))

    def profile(self, profile_id):
        with self._tx() as run:
            row = run(f"SELECT {_COLUMNS} FROM member_profiles WHERE id = ?", (profile_id,)).fetchone()
        return None if row is None else _profile_row(row)

    def profiles(self, status=None, channel=None, owner=None, email=None, limit=500):
        where, args = [], []
        for column, value in (("status", status), ("channel", channel), ("owner", owner), ("email", email)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        order = "id" if status == "pending" else "id DESC"
        sql = f"SELECT {_COLUMNS} FROM member_profiles" + (" WHERE " + " AND ".join(where) if where else "")
        with self._tx() as run:
            return [_profile_row(r) for r in run(f"{sql} ORDER BY {order} LIMIT {int(limit)}", args).fetchall()]

    def update_profile(self, profile_id, *, data=None, status=None, reason=None, consent_at=None, email=None,
                       org_id=None, published=None, expect=None) -> bool:
        sets, args = ["updated = ?"], [time.time()]
        for column, value in (("data", None if data is None else json.dumps(data, ensure_ascii=False)),
                              ("status", status), ("consent_at", consent_at), ("email", email), ("org_id", org_id),
                              ("published", published)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        if status is not None:  # a new status carries its own reason (none when approved or pending again)
            sets.append("reason = ?")
            args.append(reason)
        sql = f"UPDATE member_profiles SET {', '.join(sets)} WHERE id = ?"
        args.append(profile_id)
        if expect:
            sql += f" AND status IN ({', '.join('?' for _ in expect)})"
            args += list(expect)
        with self._tx(write=True) as run:
            return run(sql, args).rowcount == 1

    def delete_profile(self, profile_id) -> bool:
        with self._tx(write=True) as run:
            return run("DELETE FROM member_profiles WHERE id = ?", (profile_id,)).rowcount == 1
