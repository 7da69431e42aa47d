"""Staff accounts, their console sessions, what each has read, and the append-only audit log.

Written once for both state stores (a mixin of :class:`~assistant._state.SqlStateStore`), so a
PostgreSQL deployment and a SQLite one keep the same tables. Why in the state store: every
worker process must see an account disabled or a session ended at once, and the audit log must
outlive any one process.

The audit log has an insert and reads, nothing else: no method updates or deletes a row, and a
trigger in each database refuses an UPDATE or DELETE that comes from elsewhere. It holds who
did what to which lead or record, never the text of notes or messages (erasure of a user's
data does not have to reach into it).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

ROLES = ("viewer", "staff", "admin")

# {serial} and {real} are filled in per database (SqlStaffTables.serial_key / types).
_TABLES = """
CREATE TABLE IF NOT EXISTS staff_accounts (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created {real} NOT NULL,
    updated {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS staff_sessions (
    token_hash TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created {real} NOT NULL,
    expires {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS staff_sessions_account ON staff_sessions(account);
CREATE TABLE IF NOT EXISTS staff_reads (
    account TEXT NOT NULL,
    lead_id BIGINT NOT NULL,
    read_at {real} NOT NULL,
    PRIMARY KEY (account, lead_id)
);
CREATE TABLE IF NOT EXISTS audit_log (
    id {serial},
    at {real} NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    via TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{{}}'
)
"""
_SQLITE_GUARDS = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)
_POSTGRES_GUARDS = (
    "CREATE OR REPLACE FUNCTION cpc_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
    "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION cpc_audit_append_only()",
)
ACCOUNT_FIELDS = ("name", "role", "disabled", "created", "updated")
AUDIT_FIELDS = ("id", "at", "actor", "role", "via", "action", "target", "detail")


class AccountExists(ValueError):
    """An account of that name is already there (names are unique, also once disabled)."""


class SqlStaffTables:
    """Accounts, sessions, reads and the audit log over ``self._tx`` (see SqlStateStore)."""

    serial_key = "INTEGER PRIMARY KEY AUTOINCREMENT"
    postgres = False
    _tx: Callable[..., Any]
    types: dict[str, str]

    def _create_staff_tables(self, run: Callable[..., Any]) -> None:
        ddl = _TABLES.format(serial=self.serial_key, real=self.types.get("REAL", "REAL"))
        for statement in ddl.split(";"):
            if statement.strip():
                run(statement)
        for statement in (_POSTGRES_GUARDS if self.postgres else _SQLITE_GUARDS):
            run(statement)

    # -- accounts -------------------------------------------------------------------------
    def add_account(self, name: str, role: str, password_hash: str) -> dict[str, Any]:
        now = time.time()
        with self._tx(write=True) as run:
            if run("SELECT 1 FROM staff_accounts WHERE name = ?", (name,)).fetchone():
                raise AccountExists(name)
            run("INSERT INTO staff_accounts(name, role, password_hash, disabled, created, updated) VALUES (?, ?, ?, 0, ?, ?)",
                (name, role, password_hash, now, now))
        return {"name": name, "role": role, "disabled": False, "created": now, "updated": now}

    def account(self, name: str) -> dict[str, Any] | None:
        """The account with its password hash (for signing in), or None."""
        with self._tx() as run:
            row = run(f"SELECT {', '.join(ACCOUNT_FIELDS)}, password_hash FROM staff_accounts WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        found = dict(zip((*ACCOUNT_FIELDS, "password_hash"), row))
        found["disabled"] = bool(found["disabled"])
        return found

    def accounts(self) -> list[dict[str, Any]]:
        """Every account, by name, without password hashes."""
        with self._tx() as run:
            rows = run(f"SELECT {', '.join(ACCOUNT_FIELDS)} FROM staff_accounts ORDER BY name").fetchall()
        return [{**dict(zip(ACCOUNT_FIELDS, r)), "disabled": bool(r[2])} for r in rows]

    def has_accounts(self) -> bool:
        with self._tx() as run:
            return run("SELECT 1 FROM staff_accounts WHERE disabled = 0 LIMIT 1").fetchone() is not None

    def update_account(self, name: str, role: str | None = None, disabled: bool | None = None,
                       password_hash: str | None = None) -> dict[str, Any] | None:
        """Change role, disabled and/or password; a disabled account or a new password ends the
        account's sessions (in every worker at once). The account, or None when there is none."""
        now = time.time()
        with self._tx(write=True) as run:
            sets, args = ["updated = ?"], [now]
            for column, value in (("role", role), ("disabled", None if disabled is None else int(disabled)),
                                  ("password_hash", password_hash)):
                if value is not None:
                    sets.append(f"{column} = ?")
                    args.append(value)
            if not run(f"UPDATE staff_accounts SET {', '.join(sets)} WHERE name = ?", (*args, name)).rowcount:
                return None
            if disabled or password_hash is not None:
                run("DELETE FROM staff_sessions WHERE account = ?", (name,))
        found = self.account(name)
        if found:
            found.pop("password_hash")
        return found

    # -- console sessions -------------------------------------------------------------------
    def add_staff_session(self, token_hash: str, account: str, csrf: str, expires: float) -> None:
        now = time.time()
        with self._tx(write=True) as run:
            run("DELETE FROM staff_sessions WHERE expires <= ?", (now,))
            run("INSERT INTO staff_sessions(token_hash, account, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
                (token_hash, account, csrf, now, expires))

    def staff_session(self, token_hash: str, now: float | None = None) -> dict[str, Any] | None:
        """The live session and its account's name and role; None when unknown, expired or the
        account is disabled."""
        now = time.time() if now is None else now
        with self._tx() as run:
            row = run("SELECT s.account, a.role, s.csrf, s.expires FROM staff_sessions s JOIN staff_accounts a "
                      "ON a.name = s.account WHERE s.token_hash = ? AND s.expires > ? AND a.disabled = 0",
                      (token_hash, now)).fetchone()
        return None if row is None else dict(zip(("account", "role", "csrf", "expires"), row))

    def end_staff_session(self, token_hash: str) -> bool:
        with self._tx(write=True) as run:
            return run("DELETE FROM staff_sessions WHERE token_hash = ?", (token_hash,)).rowcount > 0

    # -- what each account has read ------------------------------------------------------------
    def mark_lead_read(self, account: str, lead_id: int, at: float | None = None) -> float:
        at = time.time() if at is None else at
        with self._tx(write=True) as run:
            run("INSERT INTO staff_reads(account, lead_id, read_at) VALUES (?, ?, ?) ON CONFLICT(account, lead_id) "
                "DO UPDATE SET read_at = excluded.read_at", (account, lead_id, at))
        return at

    def lead_reads(self, account: str, lead_ids: list[int] | None = None) -> dict[int, float]:
        """When ``account`` last opened each lead (of ``lead_ids``, else all it opened)."""
        sql, args = "SELECT lead_id, read_at FROM staff_reads WHERE account = ?", [account]
        if lead_ids is not None:
            if not lead_ids:
                return {}
            sql += f" AND lead_id IN ({', '.join('?' * len(lead_ids))})"
            args += list(lead_ids)
        with self._tx() as run:
            return {int(r[0]): float(r[1]) for r in run(sql, args).fetchall()}

    # -- the audit log --------------------------------------------------------------------------
    def audit(self, actor: str, role: str, via: str, action: str, target: str = "",
              detail: dict[str, Any] | None = None) -> int:
        """Append one entry; its id. There is no way to change or remove one."""
        with self._tx(write=True) as run:
            return int(run("INSERT INTO audit_log(at, actor, role, via, action, target, detail) VALUES (?, ?, ?, ?, ?, ?, ?) "
                           "RETURNING id", (time.time(), actor, role, via, action, str(target),
                                            json.dumps(detail or {}, ensure_ascii=False, sort_keys=True))).fetchall()[0][0])

    def audit_entries(self, limit: int = 200, actor: str | None = None, action: str | None = None,
                      before: int | None = None) -> list[dict[str, Any]]:
        """Newest first; ``before`` an id, to page back."""
        where, args = [], []
        for clause, value in (("actor = ?", actor), ("action = ?", action), ("id < ?", before)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = f"SELECT {', '.join(AUDIT_FIELDS)} FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._tx() as run:
            rows = run(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [dict(zip(AUDIT_FIELDS, r), detail=json.loads(r[7])) for r in rows]

    def iter_audit(self, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every entry, newest first, a batch at a time (for exports)."""
        before = None
        while True:
            rows = self.audit_entries(limit=batch, before=before)
            yield from rows
            if len(rows) < batch:
                return
            before = rows[-1]["id"]
