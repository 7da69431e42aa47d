"""The SQLite state store: the query log's writer thread batches rows without losing them."""

import logging
import time

from assistant._state import SQLiteStateStore


def test_query_log_rows_are_readable_at_once_and_close_writes_the_rest(tmp_path):
    store = SQLiteStateStore(tmp_path / "state.sqlite", log_delay=60)  # a long batch delay: reads must not wait it out
    for i in range(3):
        store.log_query("api", "pt", f"moldes {i}", i, "10.0.0.1")
    started = time.monotonic()
    rows = store.queries()
    assert time.monotonic() - started < 10
    assert [r["query"] for r in rows] == ["moldes 2", "moldes 1", "moldes 0"]
    assert store.query_counts()["totals"] == {"all": 3, "zero_results": 1}
    store.log_query("telegram", "zh", "模具", 5, "42")
    store.close()  # the queued row is written before the file closes
    reopened = SQLiteStateStore(tmp_path / "state.sqlite")
    assert [r["query"] for r in reopened.queries()] == ["模具", "moldes 2", "moldes 1", "moldes 0"]
    assert reopened.queries()[0]["user_hash"] != "42"  # pseudonym, not the raw id
    reopened.close()


def test_user_pseudonyms_are_keyed_per_store_and_stable(tmp_path):
    """The same user keeps one pseudonym across restarts; another installation cannot compute it."""
    import hashlib

    first = SQLiteStateStore(tmp_path / "a.sqlite")
    first.log_query("api", "pt", "cortiça", 3, "10.0.0.7")
    first.close()
    again = SQLiteStateStore(tmp_path / "a.sqlite")
    again.log_query("api", "pt", "moldes", 3, "10.0.0.7")
    mine = {q["user_hash"] for q in again.queries()}
    again.close()
    other = SQLiteStateStore(tmp_path / "b.sqlite")
    other.log_query("api", "pt", "cortiça", 3, "10.0.0.7")
    theirs = other.queries()[0]["user_hash"]
    other.close()
    assert len(mine) == 1 and theirs not in mine
    unsalted = {hashlib.sha256(f"{p}api:10.0.0.7".encode()).hexdigest()[:16] for p in ("", "cpc:")}
    assert not (mine | {theirs}) & unsalted


def test_a_full_backlog_drops_rows_instead_of_blocking_the_search(tmp_path, caplog):
    store = SQLiteStateStore(tmp_path / "state.sqlite", log_backlog=1, log_delay=60)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="cpc.state"):
        for i in range(6):
            store.log_query("api", "en", f"q{i}", 1, "10.0.0.1")
    assert time.monotonic() - started < 1
    assert "backlog full" in caplog.text
    assert 1 <= len(store.queries()) <= 2
    store.close()


OLD_SCHEMA = """
CREATE TABLE leads (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, session_id TEXT NOT NULL,
    channel TEXT NOT NULL, org_id TEXT NOT NULL, org_name TEXT NOT NULL, lang TEXT NOT NULL, message TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new');
INSERT INTO leads(created, session_id, channel, org_id, org_name, lang, message) VALUES (1700000000, 'web-old', 'web', 'pt-apcor', 'APCOR', 'pt', 'tenho interesse no 1');
"""


def test_a_state_file_from_before_contact_capture_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "state.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()
    store = SQLiteStateStore(path)
    (old,) = store.leads()
    assert old["message"] == "tenho interesse no 1" and old["organisations"] == [{"id": "pt-apcor", "name": "APCOR"}]
    assert old["name"] is None and old["notes"] == [] and old["updated"] == old["created"]
    new = store.add_lead("web-new", "web", "pt-apcor", "APCOR", "en", "I'm interested", orgs=[["pt-apcor", "APCOR"], ["pt-aiff", "AIFF"]],
                         name="Mary", asker_org="Acme", contact="m@acme.example", contact_kind="email", need="cork")
    assert store.update_lead(new, status="contacted", assignee="Rita", note="called")["notes"][0]["text"] == "called"
    store.close()
    again = SQLiteStateStore(path)  # a second start finds the columns there and adds nothing
    assert [x["id"] for x in again.leads()] == [new, old["id"]]
    assert again.lead(new)["organisations"][1] == {"id": "pt-aiff", "name": "AIFF"}
    again.close()


def test_a_state_file_from_before_session_versions_is_migrated(tmp_path):
    """Sessions saved by an older release keep working: they get version 0, and the short-lived
    tables are added beside them."""
    import json
    import sqlite3

    path = tmp_path / "state.sqlite"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL);")
    db.execute("INSERT INTO sessions VALUES ('web-old', ?, ?)", (json.dumps({"lang": "pt", "query": "cortiça", "turns": 2}), time.time()))
    db.commit()
    db.close()
    store = SQLiteStateStore(path)
    state, version = store.load_versioned("web-old")
    assert (state.lang, state.query, state.turns, version) == ("pt", "cortiça", 2, 0)
    state.turns += 1
    assert store.save("web-old", state, version=0)
    assert store.load_versioned("web-old")[1] == 1 and store.claim("tg-update:1", 60)
    store.close()
    db = sqlite3.connect(path)  # the expired sessions each save drops are found by index, not by a scan of all
    plan = " ".join(row[-1] for row in db.execute("EXPLAIN QUERY PLAN DELETE FROM sessions WHERE updated < ?", (0,)))
    db.close()
    assert "INDEX sessions_updated" in plan, plan


def test_retention_purges_old_queries_and_old_closed_leads_only(tmp_path):
    import sqlite3

    store = SQLiteStateStore(tmp_path / "state.sqlite")
    now = time.time()
    store.log_query("web", "pt", "moldes antigos", 3, "s1")
    store.log_query("web", "pt", "moldes recentes", 3, "s2")
    store.flush_query_log()
    old_closed = store.add_lead("s1", "web", "a", "A", "pt", "x")
    old_open = store.add_lead("s2", "web", "a", "A", "pt", "x")
    new_closed = store.add_lead("s3", "web", "a", "A", "pt", "x")
    for lead in (old_closed, new_closed):
        store.update_lead(lead, status="closed", outcome="declined")
    store.add_staff_message(old_closed, "s1", "web", "hi", "waiting")
    db = sqlite3.connect(store.path)
    with db:
        db.execute("UPDATE query_log SET created = ? WHERE query = 'moldes antigos'", (now - 40 * 86400,))
        db.execute("UPDATE leads SET closed_at = ?, created = ? WHERE id IN (?, ?)", (now - 40 * 86400, now - 50 * 86400, old_closed, old_open))
    db.close()
    counts = store.purge(30, 30)
    assert counts == {"queries": 1, "leads": 1, "messages": 1}
    assert [q["query"] for q in store.queries()] == ["moldes recentes"]
    assert sorted(x["id"] for x in store.leads()) == [old_open, new_closed]  # open leads stay, however old
    assert store.purge(None, None) == {"queries": 0, "leads": 0, "messages": 0}
    store.close()
