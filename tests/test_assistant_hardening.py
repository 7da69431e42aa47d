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
