"""Accounts, console sessions, reads and the audit log: one contract for the SQLite file and a real
PostgreSQL server (``postgres_db`` in conftest)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from assistant import _accounts as accounts
from assistant._state import SQLiteStateStore, StateStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened: StateStore = SQLiteStateStore(tmp_path / "state.sqlite")
    else:
        from assistant._state_pg import PostgresStateStore

        opened = PostgresStateStore(request.getfixturevalue("postgres_db"))
    yield opened
    opened.close()


def test_accounts_are_unique_listed_without_hashes_and_disabled(store):
    assert not store.has_accounts()
    store.add_account("ana", "staff", accounts.hash_password("correct horse 1"))
    with pytest.raises(accounts.AccountExists):
        store.add_account("ana", "admin", accounts.hash_password("another one 22"))
    store.add_account("bo", "viewer", accounts.hash_password("correct horse 2"))
    assert store.has_accounts()
    listed = store.accounts()
    assert [(a["name"], a["role"], a["disabled"]) for a in listed] == [("ana", "staff", False), ("bo", "viewer", False)]
    assert all("password_hash" not in a for a in listed)
    assert accounts.verify(store.account("ana"), "correct horse 1")
    assert not accounts.verify(store.account("ana"), "correct horse 2")
    assert store.update_account("ana", disabled=True)["disabled"] is True
    assert not accounts.verify(store.account("ana"), "correct horse 1")  # a disabled account cannot sign in
    assert store.update_account("nobody", disabled=True) is None
    assert store.update_account("bo", role="admin")["role"] == "admin"


def test_sessions_expire_end_and_die_with_their_account(store):
    store.add_account("ana", "staff", accounts.hash_password("correct horse 1"))
    token, hashed = accounts.new_token()
    store.add_staff_session(hashed, "ana", "csrf-1", time.time() + 60)
    found = store.staff_session(hashed)
    assert found["account"] == "ana" and found["role"] == "staff" and found["csrf"] == "csrf-1"
    assert store.staff_session(hashed, now=time.time() + 61) is None  # expired
    assert store.staff_session(accounts.token_hash(token + "x")) is None
    assert store.end_staff_session(hashed) and store.staff_session(hashed) is None  # logged out
    _, second = accounts.new_token()
    store.add_staff_session(second, "ana", "csrf-2", time.time() + 60)
    store.update_account("ana", password_hash=accounts.hash_password("a new password"))
    assert store.staff_session(second) is None  # a new password signs out everywhere
    _, third = accounts.new_token()
    store.add_staff_session(third, "ana", "csrf-3", time.time() + 60)
    store.update_account("ana", role="admin")
    assert store.staff_session(third)["role"] == "admin"  # a role change holds at once
    store.update_account("ana", disabled=True)
    assert store.staff_session(third) is None


def test_reads_are_per_account(store):
    assert store.lead_reads("ana") == {}
    store.mark_lead_read("ana", 3, at=100.0)
    store.mark_lead_read("ana", 3, at=200.0)
    store.mark_lead_read("bo", 4, at=150.0)
    assert store.lead_reads("ana") == {3: 200.0}
    assert store.lead_reads("bo", [3, 4]) == {4: 150.0}
    assert store.lead_reads("bo", []) == {}


def test_the_audit_log_is_append_only_newest_first_and_pages(store):
    ids = [store.audit("ana", "staff", "session", "lead.update", 7, {"status": "contacted"}),
           store.audit("token", "admin", "token", "records.ingest", "", {"imported": 2}),
           store.audit("ana", "staff", "session", "leads.export", "", {"format": "csv"})]
    assert ids == sorted(ids)
    entries = store.audit_entries()
    assert [e["action"] for e in entries] == ["leads.export", "records.ingest", "lead.update"]
    assert entries[2]["target"] == "7" and entries[2]["detail"] == {"status": "contacted"}
    assert [e["id"] for e in store.audit_entries(actor="ana")] == [ids[2], ids[0]]
    assert [e["id"] for e in store.audit_entries(before=ids[2], limit=1)] == [ids[1]]
    assert [e["id"] for e in store.iter_audit(batch=2)] == ids[::-1]
    assert not any(hasattr(store, name) for name in ("delete_audit", "update_audit", "clear_audit"))
    # nothing else may change it either: the database refuses
    with pytest.raises(Exception, match="append-only"):
        with store._tx(write=True) as run:
            run("UPDATE audit_log SET actor = 'someone else'")
    with pytest.raises(Exception, match="append-only"):
        with store._tx(write=True) as run:
            run("DELETE FROM audit_log")
    assert len(store.audit_entries()) == 3


def test_the_tables_come_back_on_reopen(tmp_path):
    first = SQLiteStateStore(tmp_path / "state.sqlite")
    first.add_account("ana", "admin", accounts.hash_password("correct horse 1"))
    first.audit("ana", "admin", "session", "login", "ana")
    first.close()
    again = SQLiteStateStore(tmp_path / "state.sqlite")
    try:
        assert again.account("ana")["role"] == "admin" and len(again.audit_entries()) == 1
    finally:
        again.close()
    with sqlite3.connect(tmp_path / "state.sqlite") as raw:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM audit_log")
