"""Regression tests of the third red-team round (docs/security.md, F1-F13), each on the real
parts: a real uvicorn server, real SQLite files, real PostgreSQL, raw sockets where the HTTP
client would hide what is tested."""

from __future__ import annotations

import threading

import httpx
import pytest

from conftest import LiveServer, STAFF_KEY, private_copy

AUTH = {"Authorization": f"Bearer {STAFF_KEY}"}
REQUEST = ("Portuguese cork companies", "I'm interested in 2", "yes", "Mary Jones", "Acme Lda", "mary.jones@example.com", "ok")


def app_over(catalog, data_dir, **overrides):
    from assistant.app import create_app
    from assistant.settings import Settings

    return create_app(Settings(data_dir=data_dir, **{"admin_token": STAFF_KEY, **overrides}), catalog)


def converse(client: httpx.Client, texts, session: str | None = None) -> tuple[str, dict]:
    body: dict = {}
    for text in texts:
        r = client.post("/api/v1/chat", json={"text": text, "session_id": session})
        assert r.status_code == 200, r.text
        body = r.json()
        session = body["session_id"]
    return session, body


def race(url: str, session: str, text: str, n: int, cookies=None) -> list[dict]:
    """``n`` turns of one conversation sent at the same instant, each on its own connection."""
    gate = threading.Barrier(n)
    out: list[dict] = []

    def one() -> None:
        with httpx.Client(base_url=url, timeout=120, cookies=cookies) as c:
            gate.wait()
            r = c.post("/api/v1/chat", json={"text": text, "session_id": session})
            out.append(r.json() if r.status_code == 200 else {"status": r.status_code})

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


# -- F1: one lead per consented request ------------------------------------------------------------
@pytest.fixture(scope="module")
def chat_server(shipped_catalog, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("hardening")
    with LiveServer(app_over(shipped_catalog, data_dir)) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        client.live = live
        yield client


def test_concurrent_sends_of_one_request_record_one_lead(chat_server):
    """Six "send" at once on one conversation, three times: each request is one lead, and every
    reply that says it was recorded names that lead."""
    for _ in range(3):
        session, body = converse(chat_server, REQUEST)
        assert body["intent"] == "contact_confirm", body["reply"]
        replies = race(chat_server.live.url, session, "send", 6, chat_server.cookies)
        ids = {r.get("lead_id") for r in replies} - {None}
        assert len(ids) == 1, replies
        leads = chat_server.get("/api/v1/leads", headers=AUTH, params={"limit": 500}).json()
        mine = [x for x in leads if x["session_id"] == session.rsplit(".", 1)[0]]
        assert [x["id"] for x in mine] == list(ids), mine


def test_a_request_is_stored_once_by_key_in_the_store(store):
    """The key is enforced by the database: a second add_lead of one request returns the first's id."""
    first = store.add_lead("web-a", "web", "pt-x", "X", "en", "hi", request_key="k1")
    again = store.add_lead("web-a", "web", "pt-x", "X", "en", "hi", request_key="k1")
    other = store.add_lead("web-a", "web", "pt-x", "X", "en", "hi", request_key="k2")
    unkeyed = [store.add_lead("web-a", "web", "pt-x", "X", "en", "hi") for _ in range(2)]
    assert first == again and len({first, other, *unkeyed}) == 4
    assert len(store.leads()) == 4


# -- F3: erased data leaves no bytes behind ---------------------------------------------------------
SECRETS = (b"Zephyrine Quillfeather", b"zq.quill@example.org", b"cork stoppers for a 2031 vintage")


def file_bytes(path) -> bytes:
    from pathlib import Path

    return b"".join(p.read_bytes() for p in (Path(path), Path(f"{path}-wal")) if p.exists())


def test_delete_my_data_leaves_no_bytes_in_the_state_files(bot, store):
    texts = ("Portuguese cork companies", "I'm interested in 2", "yes", SECRETS[0].decode(), "Acme Lda",
             SECRETS[1].decode(), SECRETS[2].decode(), "send")
    for text in texts:
        reply = bot.respond("web-erase", text)
    assert reply.lead_id is not None
    store.flush_query_log()
    assert all(s in file_bytes(store.path) for s in SECRETS)  # the test can see them before
    bot.respond("web-erase", "delete my data")
    assert bot.respond("web-erase", "yes, delete").intent == "privacy_erased"
    left = file_bytes(store.path)
    assert not [s for s in SECRETS if s in left]


def test_privacy_purge_leaves_no_bytes_in_the_state_files(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from assistant._state import SQLiteStateStore

    store = SQLiteStateStore(tmp_path / "state.sqlite")
    lead = store.add_lead("web-old", "web", "pt-x", "X", "en", "hello", name=SECRETS[0].decode(),
                          contact=SECRETS[1].decode(), need=SECRETS[2].decode())
    store.update_lead(lead, status="closed")
    store.close()
    assert all(s in file_bytes(tmp_path / "state.sqlite") for s in SECRETS)
    time.sleep(0.05)
    env = dict(os.environ, CPC_DATA_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "privacy", "purge", "--older-than", "0"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and "1 closed lead(s)" in done.stdout, done.stdout + done.stderr
    left = file_bytes(tmp_path / "state.sqlite")
    assert not [s for s in SECRETS if s in left]


def test_purge_on_postgresql_vacuums_what_it_deleted(postgres_db):
    import psycopg

    from assistant._state_pg import PostgresStateStore

    store = PostgresStateStore(postgres_db)
    try:
        lead = store.add_lead("web-old", "web", "pt-x", "X", "en", "hello", name="A", contact="a@example.org")
        store.update_lead(lead, status="closed")
        assert store.purge(None, 0, now=__import__("time").time() + 10)["leads"] == 1
    finally:
        store.close()
    with psycopg.connect(postgres_db) as conn:
        dead, vacuumed = conn.execute("SELECT n_dead_tup, last_vacuum FROM pg_stat_user_tables WHERE relname = 'leads'").fetchone()
    assert vacuumed is not None


# -- F10: the data folder and the state files are private --------------------------------------------
def test_state_files_are_private_when_made_and_fixed_when_found_open(tmp_path):
    import os
    import stat

    from assistant._state import SQLiteStateStore

    def mode(p) -> int:
        return stat.S_IMODE(os.stat(p).st_mode)

    folder = tmp_path / "var"
    store = SQLiteStateStore(folder / "state.sqlite")
    store.add_lead("web-a", "web", "pt-x", "X", "en", "hello")
    names = [folder / "state.sqlite", folder / "state.sqlite-wal", folder / "state.sqlite-shm"]
    try:
        assert mode(folder) == 0o700
        assert [mode(p) for p in names] == [0o600] * 3
    finally:
        store.close()
    os.chmod(folder, 0o755)
    for p in names:
        if p.exists():
            os.chmod(p, 0o644)
    store = SQLiteStateStore(folder / "state.sqlite")
    try:
        assert mode(folder) == 0o700
        assert all(mode(p) == 0o600 for p in names if p.exists())
    finally:
        store.close()
