"""Named staff accounts over HTTP: sign-in, the session cookie, CSRF, roles, logout, expiry,
throttling, the author of every change and the audit log (assistant/_accounts_api.py, _auth.py)."""

from __future__ import annotations

import csv
import io
import json
import time
from contextlib import closing

import httpx
import pytest

from conftest import REPO, LiveServer, private_copy

KEY = "accounts-key-for-tests"
TOKEN = {"Authorization": f"Bearer {KEY}"}
PASSWORDS = {"ana": "ana's long password", "vic": "vic's long password", "ada": "ada's long password"}


@pytest.fixture(scope="module")
def server(shipped_data_dir, encoder, tmp_path_factory):
    """A private copy of the shipped data (an ingest here changes nothing else), with three accounts
    made through the admin API with the shared key."""
    from assistant.app import create_app
    from assistant.settings import Settings

    root = tmp_path_factory.mktemp("accounts")
    catalog = private_copy(shipped_data_dir, root / "var", encoder)
    settings = Settings(data_dir=root / "var", admin_token=KEY)
    with LiveServer(create_app(settings, catalog)) as live:
        live.app_store = lambda: live.server.config.app.state.assistant.store
        for name, role in (("ana", "staff"), ("vic", "viewer"), ("ada", "admin")):
            r = httpx.post(f"{live.url}/api/v1/admin/accounts", json={"name": name, "role": role, "password": PASSWORDS[name]},
                           headers=TOKEN)
            assert r.status_code == 201, r.text
        yield live
    catalog.close()


def sign_in(server, name: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, timeout=60)
    r = client.post("/api/v1/staff/login", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    return client, r.json()["csrf"]


def a_lead(server) -> int:
    def say(text, sid=None):
        r = httpx.post(f"{server.url}/api/v1/chat", json={"session_id": sid, "text": text}, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    sid = say("Portuguese cork companies")["session_id"]
    for text in ("I'm interested in 1", "yes", "Mary Jones", "Acme Bottling", "mary@acme.example", "ok", "send"):
        reply = say(text, sid)
    assert reply["lead_id"], reply
    return reply["lead_id"]


def test_sign_in_sets_a_strict_http_only_cookie_and_me_names_the_person(server):
    r = httpx.post(f"{server.url}/api/v1/staff/login", json={"name": "ana", "password": PASSWORDS["ana"]})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("cpc_staff=") and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # plain http on loopback; https gets Secure
    body = r.json()
    assert body["name"] == "ana" and body["role"] == "staff" and body["via"] == "session" and len(body["csrf"]) >= 20
    assert body["overdue_days"] == 3
    me = httpx.get(f"{server.url}/api/v1/staff/me", cookies=r.cookies).json()
    assert me["name"] == "ana" and me["csrf"] == body["csrf"] and me["expires"] > time.time() + 11 * 3600
    # the session is stored hashed: the cookie's token is nowhere in the store
    token = r.cookies["cpc_staff"]
    with server.app_store()._tx() as run:
        stored = [row[0] for row in run("SELECT token_hash FROM staff_sessions").fetchall()]
    assert token not in stored and len(stored) >= 1


def test_wrong_passwords_are_refused_alike_and_then_throttled(server):
    url = f"{server.url}/api/v1/staff/login"
    wrong = httpx.post(url, json={"name": "ana", "password": "not the password"})
    nobody = httpx.post(url, json={"name": "nobody-here", "password": "not the password"})
    assert wrong.status_code == nobody.status_code == 401 and wrong.json() == nobody.json()
    assert "set-cookie" not in wrong.headers
    codes = [httpx.post(url, json={"name": "throttled", "password": "guess number %d" % i}).status_code for i in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    assert sign_in(server, "ana")[0].close() is None  # another name from the same address still signs in
    r = httpx.post(url, json={"name": "throttled", "password": "x" * 20})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert httpx.post(url, json={"name": "ana"}).status_code == 422
    assert httpx.post(url, content=b"{", headers={"content-type": "application/json"}).status_code == 400


def test_changes_by_cookie_need_the_csrf_token_and_carry_the_author(server):
    lead_id = a_lead(server)
    client, csrf = sign_in(server, "ana")
    with closing(client):
        refused = client.patch(f"/api/v1/leads/{lead_id}", json={"note": "called her"})
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        wrong = client.patch(f"/api/v1/leads/{lead_id}", json={"note": "called her"}, headers={"X-CSRF-Token": csrf + "x"})
        assert wrong.status_code == 403
        assert client.get(f"/api/v1/leads/{lead_id}").json()["notes"] == []  # nothing changed
        r = client.patch(f"/api/v1/leads/{lead_id}", json={"note": "called her", "status": "contacted"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        assert r.json()["notes"][-1]["by"] == "ana" and r.json()["status"] == "contacted"
        r = client.post(f"/api/v1/leads/{lead_id}/reply", json={"text": "We will write soon", "author": "someone else"},
                        headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        sent = client.get(f"/api/v1/leads/{lead_id}/messages").json()
        assert sent[-1]["author"] == "ana"  # the signed-in person, not what the body claims
        assert client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "introduced"},
                           headers={"X-CSRF-Token": csrf}).status_code == 200
        export = client.get("/api/v1/leads/export", params={"format": "json"})
        assert export.status_code == 200
        read = client.post(f"/api/v1/leads/{lead_id}/read", headers={"X-CSRF-Token": csrf})
        assert read.status_code == 200 and client.get("/api/v1/staff/reads").json() == {str(lead_id): read.json()["read_at"]}
    mine = [e for e in httpx.get(f"{server.url}/api/v1/admin/audit", params={"actor": "ana"}, headers=TOKEN).json()]
    actions = [(e["action"], e["target"]) for e in mine]
    assert ("lead.update", str(lead_id)) in actions and ("lead.reply", str(lead_id)) in actions
    assert ("lead.status", str(lead_id)) in actions and ("leads.export", "") in actions and ("login", "ana") in actions
    update = next(e for e in mine if e["action"] == "lead.update")
    assert update["detail"] == {"status": "contacted", "note": True} and update["role"] == "staff" and update["via"] == "session"
    assert "called her" not in json.dumps(mine)  # the audit says what was done, not the note's text


def test_a_viewer_reads_but_cannot_change_a_lead(server):
    lead_id = a_lead(server)
    client, csrf = sign_in(server, "vic")
    with closing(client):
        assert client.get("/api/v1/leads").status_code == 200
        assert client.get("/api/v1/staff/queries").status_code == 200
        r = client.patch(f"/api/v1/leads/{lead_id}", json={"status": "closed", "outcome": "spam"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403 and "viewer" in r.json()["error"]
        assert client.post(f"/api/v1/leads/{lead_id}/reply", json={"text": "hi"}, headers={"X-CSRF-Token": csrf}).status_code == 403
        assert client.get(f"/api/v1/leads/{lead_id}").json()["status"] == "new"
        assert client.post(f"/api/v1/leads/{lead_id}/read", headers={"X-CSRF-Token": csrf}).status_code == 200  # their own marker
        assert client.post("/api/v1/staff/export", json={"query": "cork"}, headers={"X-CSRF-Token": csrf}).status_code == 200
        assert client.get("/api/v1/admin/audit").status_code == 403
        assert client.post("/api/v1/admin/reindex", headers={"X-CSRF-Token": csrf}).status_code == 403


def test_the_audit_log_is_for_admins_and_exports(server):
    staff, _ = sign_in(server, "ana")
    with closing(staff):
        assert staff.get("/api/v1/admin/audit").status_code == 403
        assert staff.get("/api/v1/admin/audit/export").status_code == 403
        assert staff.get("/api/v1/admin/accounts").status_code == 403
    assert httpx.get(f"{server.url}/api/v1/admin/audit").status_code == 401
    admin, csrf = sign_in(server, "ada")
    with closing(admin):
        entries = admin.get("/api/v1/admin/audit").json()
        assert {"account.add"} <= {e["action"] for e in entries if e["actor"] == "token" and e["via"] == "token"}
        r = admin.get("/api/v1/admin/audit/export", params={"format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
        assert rows and set(rows[0]) == {"id", "at", "actor", "role", "via", "action", "target", "detail"}
        assert any(row["actor"] == "token" and row["action"] == "account.add" and row["target"] == "vic" for row in rows)
        as_json = admin.get("/api/v1/admin/audit/export", params={"format": "json"}).json()
        assert as_json[0]["action"] == "audit.export" and as_json[0]["actor"] == "ada"  # the export itself is audited


def test_an_ingest_by_the_key_is_audited_as_token(server):
    first = json.loads((REPO / "corpus/data/organisations.jsonl").read_text(encoding="utf-8").splitlines()[0])
    record = {**first, "id": "pt-audit-test-org", "name": "Audit Test Cork Lda"}
    r = httpx.post(f"{server.url}/api/v1/admin/ingest", content=json.dumps(record).encode(),
                   headers={**TOKEN, "content-type": "application/x-ndjson"}, timeout=300)
    assert r.status_code == 200, r.text
    entry = httpx.get(f"{server.url}/api/v1/admin/audit", params={"action": "records.ingest"}, headers=TOKEN).json()[0]
    assert entry["actor"] == "token" and entry["via"] == "token" and entry["detail"]["imported"] == 1
    client, csrf = sign_in(server, "ana")
    with closing(client):  # staff may not ingest
        r = client.post("/api/v1/admin/ingest", content=json.dumps(record).encode(),
                        headers={"content-type": "application/x-ndjson", "X-CSRF-Token": csrf})
        assert r.status_code == 403


def test_logout_and_expiry_end_the_session(server):
    client, csrf = sign_in(server, "ana")
    with closing(client):
        old = dict(client.cookies)
        assert client.post("/api/v1/staff/logout").status_code == 204
        after = httpx.get(f"{server.url}/api/v1/leads", cookies=old)
        assert after.status_code == 401 and "sign in again" in after.json()["error"]
    from assistant import _accounts as accounts

    token, hashed = accounts.new_token()
    server.app_store().add_staff_session(hashed, "ana", "csrf", time.time() - 1)  # a session past its expiry
    r = httpx.get(f"{server.url}/api/v1/leads", cookies={"cpc_staff": token})
    assert r.status_code == 401
    assert httpx.get(f"{server.url}/api/v1/leads", cookies={"cpc_staff": "x" * 5000}).status_code in (400, 401, 431)


def test_admins_manage_accounts_and_a_disabled_account_is_signed_out(server):
    admin, csrf = sign_in(server, "ada")
    with closing(admin):
        h = {"X-CSRF-Token": csrf}
        assert admin.post("/api/v1/admin/accounts", json={"name": "eve", "role": "staff", "password": "eve's long password"}).status_code == 403
        r = admin.post("/api/v1/admin/accounts", json={"name": "eve", "role": "staff", "password": "eve's long password"}, headers=h)
        assert r.status_code == 201 and r.json()["role"] == "staff"
        assert admin.post("/api/v1/admin/accounts", json={"name": "eve", "role": "staff", "password": "eve's long password"},
                          headers=h).status_code == 409
        bad = admin.post("/api/v1/admin/accounts", json={"name": "x", "role": "boss", "password": "long enough pw"}, headers=h)
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "role"
        assert admin.post("/api/v1/admin/accounts", json={"name": "token", "role": "staff", "password": "long enough pw"},
                          headers=h).status_code == 422
        assert admin.post("/api/v1/admin/accounts", json={"name": "shorty", "role": "staff", "password": "short"},
                          headers=h).status_code == 422
        PASSWORDS["eve"] = "eve's long password"
        eve, _ = sign_in(server, "eve")
        with closing(eve):
            assert eve.get("/api/v1/leads").status_code == 200
            assert admin.patch("/api/v1/admin/accounts/eve", json={"disabled": True}, headers=h).json()["disabled"] is True
            assert eve.get("/api/v1/leads").status_code == 401
        assert httpx.post(f"{server.url}/api/v1/staff/login", json={"name": "eve", "password": PASSWORDS["eve"]}).status_code == 401
        assert admin.patch("/api/v1/admin/accounts/ada", json={"disabled": True}, headers=h).status_code == 422  # not oneself
        assert admin.patch("/api/v1/admin/accounts/nobody", json={"disabled": True}, headers=h).status_code == 404
        names = {a["name"]: a for a in admin.get("/api/v1/admin/accounts").json()}
        assert names["eve"]["disabled"] and "password_hash" not in names["ada"]


def test_the_shared_key_still_works_and_wrong_keys_do_not_fall_back_to_the_cookie(server):
    assert httpx.get(f"{server.url}/api/v1/leads", headers=TOKEN).status_code == 200
    client, _ = sign_in(server, "ana")
    with closing(client):
        assert client.get("/api/v1/leads", headers={"Authorization": "Bearer wrong"}).status_code == 403
        me = httpx.get(f"{server.url}/api/v1/staff/me", headers=TOKEN).json()
        assert me["name"] == "token" and me["role"] == "admin" and me["via"] == "token"


def test_staff_is_on_with_accounts_and_no_key(shipped_catalog, tmp_path):
    """No CPC_ADMIN_TOKEN, one account: the console works; no key and no account: disabled."""
    from assistant import _accounts as accounts
    from assistant._state import SQLiteStateStore
    from assistant.app import create_app
    from assistant.settings import Settings

    with LiveServer(create_app(Settings(data_dir=tmp_path, admin_token=None), shipped_catalog)) as live:
        r = httpx.get(f"{live.url}/api/v1/leads")
        assert r.status_code == 403 and "cpc staff add" in r.json()["error"]
    store = SQLiteStateStore(tmp_path / "state.sqlite")
    store.add_account("ana", "staff", accounts.hash_password(PASSWORDS["ana"]))
    store.close()
    with LiveServer(create_app(Settings(data_dir=tmp_path, admin_token=None), shipped_catalog)) as live:
        assert httpx.get(f"{live.url}/api/v1/leads").status_code == 401
        login = httpx.post(f"{live.url}/api/v1/staff/login", json={"name": "ana", "password": PASSWORDS["ana"]})
        assert httpx.get(f"{live.url}/api/v1/leads", cookies=login.cookies).status_code == 200
        assert httpx.get(f"{live.url}/api/v1/leads", headers={"Authorization": "Bearer anything"}).status_code == 403
