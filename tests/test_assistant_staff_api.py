"""Staff endpoints (exports, query log, lead status) on a real uvicorn server."""

import csv
import io
import json

import httpx
import pytest

from conftest import LiveServer

KEY = "staff-key-for-tests"
AUTH = {"Authorization": f"Bearer {KEY}"}
CORK_ZH = "我们想找葡萄牙的软木合作伙伴"

STAFF_ENDPOINTS = [
    ("GET", "/api/v1/staff/queries", None),
    ("GET", "/api/v1/staff/stats", None),
    ("POST", "/api/v1/staff/export?format=csv", {"query": "cork"}),
    ("GET", "/api/v1/leads/export?format=json", None),
    ("POST", "/api/v1/leads/1/status", {"status": "contacted"}),
    ("GET", "/api/v1/leads", None),
    ("GET", "/api/v1/leads/1", None),
    ("PATCH", "/api/v1/leads/1", {"note": "x"}),
    ("POST", "/api/v1/leads/1/reply", {"text": "hello"}),
    ("POST", "/api/v1/leads/1/introduce", {"partner_email": "a@b.example", "text": "hello"}),
]


@pytest.fixture(scope="module")
def server(shipped_catalog, tmp_path_factory):
    """Its own state folder, so the query log and leads hold only what these tests put there."""
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("staff-state"), admin_token=KEY)
    with LiveServer(create_app(settings, shipped_catalog)) as live:
        yield live


@pytest.fixture(scope="module")
def closed_server(shipped_catalog, tmp_path_factory):
    """No staff key configured: staff endpoints must be off, not open."""
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("closed-state"), admin_token=None)
    with LiveServer(create_app(settings, shipped_catalog)) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def chat(client, text, session_id=None):
    r = client.post("/api/v1/chat", json={"session_id": session_id, "text": text, "channel": "web"})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("method, path, body", STAFF_ENDPOINTS)
def test_staff_endpoints_need_the_key(client, method, path, body):
    r = client.request(method, path, json=body)
    assert r.status_code == 401 and r.json()["error"].startswith("staff key required")
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.request(method, path, json=body, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403 and r.json() == {"error": "wrong staff key", "detail": None}
    r = client.request(method, path, json=body, headers={"X-Staff-Key": "wrong"})
    assert r.status_code == 403


@pytest.mark.parametrize("method, path, body", STAFF_ENDPOINTS)
def test_staff_endpoints_are_disabled_without_a_configured_key(closed_server, method, path, body):
    r = httpx.request(method, closed_server.url + path, json=body, headers=AUTH, timeout=30)
    assert r.status_code == 403 and "disabled" in r.json()["error"]


def test_search_is_logged_by_channel_without_the_client_address(client):
    # what is logged is the number of matches, not the size of the corpus (these searches are logged first)
    counts = {q: client.post("/api/v1/search", json={"query": q}).json()["total"] for q in ("wine", "cork partners", "moldes na China")}
    assert 0 < counts["wine"] < client.get("/readyz").json()["records"]
    client.post("/api/v1/search", json={"query": "moldes na China"})
    client.post("/api/v1/search", json={"query": "moldes na China", "offset": 10})  # a further page: not a new query
    client.post("/api/v1/search", json={"query": "cork partners"}, headers=AUTH)
    client.post("/api/v1/search", json={"query": "wine", "filters": {"country": "CN", "region": "Norte"}}, headers={"X-Staff-Key": KEY})
    client.post("/api/v1/search", json={"query": "wine"}, headers={"Authorization": "Bearer wrong"})  # public search still works
    log = client.get("/api/v1/staff/queries", params={"limit": 50}, headers=AUTH).json()
    mine = [(q["channel"], q["query"], q["results"]) for q in log if q["channel"] in ("api", "staff")]
    assert mine[:4] == [("api", "wine", counts["wine"]), ("staff", "wine", 0), ("staff", "cork partners", counts["cork partners"]),
                        ("api", "moldes na China", counts["moldes na China"])]
    assert sum(1 for q in log if q["query"] == "moldes na China") == 2  # this test's two new queries; page 2 is not one
    assert {q["lang"] for q in log if q["query"] == "moldes na China"} == {"pt"}
    raw = json.dumps(log)
    assert "127.0.0.1" not in raw and all(len(q["user_hash"]) == 16 for q in log)

    zero = client.get("/api/v1/staff/queries", params={"zero": "true"}, headers=AUTH).json()
    assert zero and all(q["results"] == 0 for q in zero) and zero[0]["query"] == "wine"
    assert client.get("/api/v1/staff/queries", params={"limit": 0}, headers=AUTH).status_code == 422
    assert client.get("/api/v1/staff/queries", params={"limit": 1}, headers=AUTH).json()[0]["query"] == "wine"


def test_stats_count_languages_channels_and_zero_results(client):
    chat(client, CORK_ZH)
    client.post("/api/v1/search", json={"query": "mould makers", "filters": {"country": "CN", "region": "Centro"}}, headers=AUTH)
    stats = client.get("/api/v1/staff/stats", headers=AUTH).json()
    log = client.get("/api/v1/staff/queries", params={"limit": 1000}, headers=AUTH).json()
    assert stats["totals"]["all"] == len(log) == sum(stats["by_lang"].values()) == sum(stats["by_channel"].values())
    assert stats["by_lang"]["zh"] >= 1 and stats["by_channel"]["web"] >= 1 and stats["by_channel"]["staff"] >= 1
    zero = sum(1 for q in log if q["results"] == 0)
    assert zero >= 1 and stats["totals"]["zero_results"] == zero
    assert stats["zero_rate"] == pytest.approx(zero / len(log), abs=1e-4)


def test_export_search_as_csv_and_json(client):
    body = {"query": CORK_ZH, "filters": {"country": "PT"}, "limit": 5}
    found = client.post("/api/v1/search", json=body).json()
    r = client.post("/api/v1/staff/export", params={"format": "csv"}, json=body, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith('attachment; filename="cpc-search-') and r.headers["content-disposition"].endswith('.csv"')
    assert r.content.startswith("\ufeff".encode())  # the byte-order mark Excel needs for Chinese names
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert list(rows[0])[:5] == ["rank", "id", "name", "kind", "country"]
    assert [row["id"] for row in rows] == [h["id"] for h in found["results"]]
    assert [row["rank"] for row in rows] == [str(i) for i in range(1, len(found["results"]) + 1)]
    assert len([h for h in found["results"] if not h["less_close"]]) == 3  # 3 cork records match; the rest are less close
    assert all(row["country"] == "PT" for row in rows) and rows[0]["name"] == found["results"][0]["name"]
    assert "cork" in rows[0]["sectors"].split("; ") and rows[0]["why_sectors"] == "软木"

    r = client.post("/api/v1/staff/export", params={"format": "json"}, json={**body, "offset": 5}, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.headers["content-disposition"].endswith('.json"')
    data = r.json()
    assert data["query"] == CORK_ZH and data["offset"] == 5 and data["filters"]["country"] == ["PT"]
    assert not {h["id"] for h in data["results"]} & {h["id"] for h in found["results"]}
    assert all(h["country"] == "PT" and "why" in h for h in data["results"])


@pytest.mark.parametrize(
    "params, body, status",
    [
        ({"format": "xml"}, {"query": "cork"}, 422),
        ({"format": "csv"}, {"query": ""}, 422),
        ({"format": "csv"}, {"query": "cork", "filters": {"country": "FR"}}, 422),
    ],
)
def test_export_rejects_bad_input_with_json(client, params, body, status):
    r = client.post("/api/v1/staff/export", params=params, json=body, headers=AUTH)
    assert r.status_code == status and r.json()["error"]


def consented_lead(client, search="Portuguese cork companies", interest="I'm interested in 1",
                   answers=("yes, with the conversation", "Mary Jones", "Acme Bottling", "mary@acme.example", "ok"),
                   send="send", session_id=None):
    """A web conversation from a search to a consented lead; the final reply."""
    first = chat(client, search, session_id)
    sid = first["session_id"]
    ask = chat(client, interest, sid)
    assert ask["intent"] == "interest" and ask["step"] == "contact_consent" and not ask["handoff"], ask
    for text in answers:
        chat(client, text, sid)
    lead = chat(client, send, sid)
    assert lead["handoff"] and lead["lead_id"], lead
    return lead | {"session_id": sid, "first": first}


def test_leads_status_and_export(client):
    lead = consented_lead(client, interest="=HYPERLINK(\"http://x\") I'm interested in 1")
    lead_id = lead["lead_id"]

    listed = client.get("/api/v1/leads", headers=AUTH).json()
    assert listed[0]["id"] == lead_id and listed[0]["status"] == "new" and listed[0]["channel"] == "web"

    r = client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "contacted"}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"id": lead_id, "status": "contacted"}
    assert listed[0]["name"] == "Mary Jones" and listed[0]["contact"] == "mary@acme.example"
    assert client.get("/api/v1/leads", params={"status": "contacted"}, headers=AUTH).json()[0]["id"] == lead_id
    assert all(x["id"] != lead_id for x in client.get("/api/v1/leads", params={"status": "new"}, headers=AUTH).json())

    r = client.post("/api/v1/leads/999999/status", json={"status": "contacted"}, headers=AUTH)
    assert r.status_code == 404 and "999999" in r.json()["error"]
    for bad in ({"status": "won"}, {}, {"status": "new", "note": "x"}, {"status": "closed"},
                {"status": "contacted", "outcome": "partnership"}, {"status": "closed", "outcome": "great"}):
        r = client.post(f"/api/v1/leads/{lead_id}/status", json=bad, headers=AUTH)
        assert r.status_code == 422 and r.json()["error"]
    assert client.post("/api/v1/leads/abc/status", json={"status": "new"}, headers=AUTH).status_code == 422

    r = client.get("/api/v1/leads/export", params={"format": "csv"}, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="cpc-leads-' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    row = next(x for x in rows if x["id"] == str(lead_id))
    assert row["status"] == "contacted" and row["org_id"] == listed[0]["org_id"] and row["created"].endswith("+00:00")
    assert row["message"].startswith("'=HYPERLINK")  # a spreadsheet shows it as text, never runs it

    r = client.get("/api/v1/leads/export", params={"format": "json", "status": "contacted"}, headers=AUTH)
    assert r.headers["content-type"] == "application/json"
    exported = r.json()
    assert [x["id"] for x in exported] == [x["id"] for x in client.get("/api/v1/leads", params={"status": "contacted"}, headers=AUTH).json()]
    assert exported[0]["message"].startswith("=HYPERLINK")  # JSON keeps the text as written
    assert client.get("/api/v1/leads/export", params={"format": "pdf"}, headers=AUTH).status_code == 422


def test_openapi_lists_the_staff_routes(client):
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/api/v1/staff/export"]["post"]["tags"] == ["staff"]
    assert spec["paths"]["/api/v1/leads/{lead_id}/status"]["post"]["tags"] == ["staff"]
    for path, method in (("/api/v1/leads/{lead_id}", "patch"), ("/api/v1/leads/{lead_id}/reply", "post"),
                         ("/api/v1/leads/{lead_id}/introduce", "post"), ("/api/v1/leads", "get")):
        assert spec["paths"][path][method]["tags"] == ["staff"], path
    assert spec["paths"]["/api/v1/chat/messages"]["get"]["tags"] == ["chat"]
    assert "/" not in spec["paths"] and "/staff" not in spec["paths"]


def test_lead_inbox_filters_notes_assignee_and_closing(client):
    a = consented_lead(client)
    b = consented_lead(client, search="fabricantes de moldes na China", interest="tenho interesse no 2",
                       answers=("sim", "Rui Costa", "Plásticos do Lis", "+351 244 000 111", "moldes para peças automóveis"),
                       send="enviar")
    zh = chat(client, CORK_ZH)
    assert zh["intent"] == "search"
    listed = client.get("/api/v1/leads", params={"lang": "pt"}, headers=AUTH).json()
    assert [x["id"] for x in listed] == [b["lead_id"]]
    (found,) = client.get("/api/v1/leads", params={"q": "plásticos"}, headers=AUTH).json()
    assert found["id"] == b["lead_id"] and found["contact_kind"] == "phone" and found["need"] == "moldes para peças automóveis"
    assert found["organisations"][0]["id"] == b["first"]["results"][1]["id"] and found["conversation"] is None
    detail = client.get(f"/api/v1/leads/{a['lead_id']}", headers=AUTH).json()
    assert detail["conversation"][0][1] == "Portuguese cork companies"  # shared with consent

    r = client.patch(f"/api/v1/leads/{b['lead_id']}", json={"assignee": "Rita", "note": "Ligar segunda-feira"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["assignee"] == "Rita" and r.json()["notes"][0]["text"] == "Ligar segunda-feira"
    assert [x["id"] for x in client.get("/api/v1/leads", params={"assignee": "Rita"}, headers=AUTH).json()] == [b["lead_id"]]
    for status in ("contacted", "introduced"):
        assert client.patch(f"/api/v1/leads/{b['lead_id']}", json={"status": status}, headers=AUTH).json()["status"] == status
    r = client.patch(f"/api/v1/leads/{b['lead_id']}", json={"status": "closed"}, headers=AUTH)
    assert r.status_code == 422 and "outcome" in r.json()["error"]
    closed = client.patch(f"/api/v1/leads/{b['lead_id']}", json={"status": "closed", "outcome": "partnership"}, headers=AUTH).json()
    assert closed["status"] == "closed" and closed["outcome"] == "partnership" and closed["closed_at"]
    for bad in ({"note": ""}, {"assignee": "x" * 81}, {"note": "a\x00b"}, {"whatever": 1}):
        assert client.patch(f"/api/v1/leads/{b['lead_id']}", json=bad, headers=AUTH).status_code == 422
    assert client.patch("/api/v1/leads/999999", json={"note": "x"}, headers=AUTH).status_code == 404
    csv_rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/leads/export", params={"q": "plásticos"}, headers=AUTH)
                                               .content.decode("utf-8-sig"))))
    assert csv_rows[0]["name"] == "Rui Costa" and csv_rows[0]["outcome"] == "partnership" and csv_rows[0]["notes"] == "Ligar segunda-feira"


def test_web_reply_waits_for_the_user_and_shows_on_their_next_visit(client):
    lead = consented_lead(client)
    sid = lead["session_id"]
    assert client.get("/api/v1/chat/messages", params={"session_id": sid}).json()["messages"] == []
    r = client.post(f"/api/v1/leads/{lead['lead_id']}/reply", json={"text": "Hello Mary, APCOR will call you."}, headers=AUTH)
    assert r.status_code == 200 and r.json()["delivery"] == "waiting"
    got = client.get("/api/v1/chat/messages", params={"session_id": sid}).json()["messages"]
    assert len(got) == 1 and "Hello Mary" in got[0]["text"] and "request no." in got[0]["text"]
    assert client.get("/api/v1/chat/messages", params={"session_id": sid, "after": got[0]["id"]}).json()["messages"] == []
    assert client.get(f"/api/v1/leads/{lead['lead_id']}/messages", headers=AUTH).json()[0]["delivery"] == "shown"
    other = client.get("/api/v1/chat/messages", params={"session_id": "web-someone-else.forged"})
    assert other.status_code == 404 and other.json()["error"]  # a token the server did not issue opens nothing
    for bad in ({"text": ""}, {"text": "   "}, {"text": "x" * 2001}, {}):
        assert client.post(f"/api/v1/leads/{lead['lead_id']}/reply", json=bad, headers=AUTH).status_code == 422
    assert client.post("/api/v1/leads/999999/reply", json={"text": "hi"}, headers=AUTH).status_code == 404
    assert client.get("/api/v1/chat/messages", params={"session_id": "bad id!"}).status_code == 422
    assert client.post(f"/api/v1/leads/{lead['lead_id']}/reply", json={"text": "hi"}).status_code == 401


@pytest.mark.parametrize("text", ["", "   ", "<script>alert(1)</script>", "x" * 5000, "<b>Mary</b>", "😀" * 3000, "a\u200bb"])
def test_bad_contact_input_over_http_gets_a_re_ask_never_a_5xx(client, text):
    first = chat(client, "Portuguese cork companies")
    sid = first["session_id"]
    chat(client, "I'm interested in 1", sid)
    chat(client, "yes", sid)
    r = client.post("/api/v1/chat", json={"session_id": sid, "text": text[:2000]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["step"] in ("contact_invalid", "contact_org"), body  # "a\u200bb" is a (strange) name
    if body["step"] == "contact_invalid":
        assert body["form"]["step"] == "name"
    r = client.post("/api/v1/chat", json={"session_id": sid, "text": "y" * 2001})
    assert r.status_code == 422 and r.json()["error"]


def test_introduction_needs_smtp_and_an_email(client):
    lead = consented_lead(client)
    r = client.post(f"/api/v1/leads/{lead['lead_id']}/introduce", json={"partner_email": "p@partner.example", "text": "Meet"},
                    headers=AUTH)
    assert r.status_code == 409 and "CPC_SMTP_HOST" in r.json()["error"]
    r = client.post(f"/api/v1/leads/{lead['lead_id']}/introduce", json={"partner_email": "not-an-email", "text": "Meet"}, headers=AUTH)
    assert r.status_code == 422


def test_introduction_email_reaches_both_sides_through_real_smtp(shipped_catalog, tmp_path, smtp_server):
    import email

    from assistant.app import create_app
    from assistant.settings import Settings

    controller, handler = smtp_server
    settings = Settings(data_dir=tmp_path, admin_token=KEY, smtp_host="127.0.0.1", smtp_port=controller.port,
                        smtp_security="none", smtp_from="team@cpc-alliance.example")
    with LiveServer(create_app(settings, shipped_catalog)) as live, httpx.Client(base_url=live.url, timeout=60) as c:
        lead = consented_lead(c)
        phone = consented_lead(c, answers=("yes", "Li Wei", "Ningbo Corks", "+86 138 0013 8000", "ok"))
        body = {"partner_email": "partnerships@apcor.example", "partner_name": "APCOR",
                "text": "Dear both, Mary is looking for cork stoppers; APCOR represents the Portuguese cork sector."}
        r = c.post(f"/api/v1/leads/{lead['lead_id']}/introduce", json=body, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["delivery"] == "e-mail" and "partnerships@apcor.example" in r.json()["text"]
        r = c.post(f"/api/v1/leads/{phone['lead_id']}/introduce", json=body, headers=AUTH)
        assert r.status_code == 409 and "no e-mail" in r.json()["error"]
        # the web chat does not show e-mail records as chat messages
        assert c.get("/api/v1/chat/messages", params={"session_id": lead["session_id"]}).json()["messages"] == []
    (envelope,) = handler.messages
    assert envelope.mail_from == "team@cpc-alliance.example"
    assert sorted(envelope.rcpt_tos) == ["mary@acme.example", "partnerships@apcor.example"]
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert "CPC Alliance introduction" in msg["Subject"] and "Acme Bottling" in msg["Subject"]
    text = msg.get_content()
    assert "cork stoppers" in text and "Mary Jones" in text and "mary@acme.example" in text and f"Request no. {lead['lead_id']}" in text
    # the Portuguese partner reads the same details in Portuguese
    assert f"Pedido n.º {lead['lead_id']}" in text and "Quem pede: Mary Jones" in text and "Apresentação CPC Alliance" in msg["Subject"]


def test_smtp_refusal_is_502(shipped_catalog, tmp_path):
    from assistant.app import create_app
    from assistant.settings import Settings
    from conftest import free_port

    settings = Settings(data_dir=tmp_path, admin_token=KEY, smtp_host="127.0.0.1", smtp_port=free_port(),
                        smtp_security="none", smtp_from="team@cpc-alliance.example", smtp_timeout=3)
    with LiveServer(create_app(settings, shipped_catalog)) as live, httpx.Client(base_url=live.url, timeout=60) as c:
        lead = consented_lead(c)
        r = c.post(f"/api/v1/leads/{lead['lead_id']}/introduce", json={"partner_email": "p@x.example", "text": "Hi"}, headers=AUTH)
        assert r.status_code == 502 and "SMTP" in r.json()["error"]
        assert c.get(f"/api/v1/leads/{lead['lead_id']}/messages", headers=AUTH).json() == []


def test_no_personal_data_in_info_logs_of_a_lead_and_its_reply(client, caplog):
    import logging

    caplog.set_level(logging.INFO)
    lead = consented_lead(client, answers=("yes, with the conversation", "Zacarias Quintela", "Quintela Cortiças",
                                           "zq@quintela.example", "rolhas naturais"))
    client.post(f"/api/v1/leads/{lead['lead_id']}/reply", json={"text": "Caro Zacarias, obrigado."}, headers=AUTH)
    client.post(f"/api/v1/leads/{lead['lead_id']}/introduce", json={"partner_email": "p@x.example", "text": "Hi"}, headers=AUTH)
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.levelno >= logging.INFO)
    assert caplog.records  # the requests were logged
    for personal in ("Zacarias", "Quintela", "zq@quintela.example", "rolhas naturais", "p@x.example"):
        assert personal not in logged, personal


# -- threads with the team and the FAQ ------------------------------------------------------------
def test_a_web_users_answer_reaches_the_lead_thread_with_an_unread_marker(client):
    lead = consented_lead(client)
    lead_id, sid = lead["lead_id"], lead["session_id"]
    assert client.post(f"/api/v1/leads/{lead_id}/reply", json={"text": "Hello Mary, APCOR will call you."}, headers=AUTH).status_code == 200
    answer = chat(client, "Thanks Rita! When is the cork fair in Porto?", sid)
    assert answer["intent"] == "to_team" and str(lead_id) in answer["reply"]
    listed = next(x for x in client.get("/api/v1/leads", headers=AUTH).json() if x["id"] == lead_id)
    assert listed["unread"] == 1
    assert [(m["sender"], m["text"]) for m in listed["messages"]][-1] == ("user", "Thanks Rita! When is the cork fair in Porto?")
    assert listed["last_user_message_at"] == listed["messages"][-1]["created"] > 0  # the inbox's "user replied"
    opened = client.get(f"/api/v1/leads/{lead_id}", headers=AUTH).json()
    assert opened["messages"] == listed["messages"] and opened["unread"] == 1  # what the list gives, then read
    again = client.get(f"/api/v1/leads/{lead_id}", headers=AUTH).json()
    assert again["unread"] == 0 and again["messages"][-1]["delivery"] == "read"
    # the user's own words never come back to them as a message from the team
    assert all(m["sender"] == "staff" for m in client.get("/api/v1/chat/messages", params={"session_id": sid}).json()["messages"])


def test_faq_is_kept_by_staff_and_answered_in_the_chat(client):
    entries = client.get("/api/v1/staff/faq", headers=AUTH).json()
    assert len(entries) >= 5 and all(set(e["answers"]) == {"pt", "zh", "en"} and not e["missing"] for e in entries)
    cost = chat(client, "quanto custa este serviço?")
    assert cost["intent"] == "faq" and cost["lang"] == "pt" and "custo" in cost["reply"]
    zh = chat(client, "CPC联盟是什么？")
    assert zh["intent"] == "faq" and "联盟" in zh["reply"]
    body = {"questions": {"en": ["do you organise trade missions to China?"]}, "answers": {"en": "Ask the team: say “talk to a person”."}}
    r = client.post("/api/v1/staff/faq", json=body, headers=AUTH)
    assert r.status_code == 201 and r.json()["missing"] == ["pt", "zh"]
    fid = r.json()["id"]
    asked = chat(client, "Do you organise trade missions to China?")
    assert asked["intent"] == "faq" and "talk to a person" in asked["reply"]
    edited = {**body, "answers": {"en": "Not from this assistant: say “talk to a person”."}}
    assert client.put(f"/api/v1/staff/faq/{fid}", json=edited, headers=AUTH).json()["answers"] == edited["answers"]
    assert "Not from this assistant" in chat(client, "do you organise trade missions to China?")["reply"]
    assert client.delete(f"/api/v1/staff/faq/{fid}", headers=AUTH).status_code == 204
    gone = client.delete(f"/api/v1/staff/faq/{fid}", headers=AUTH)
    assert gone.status_code == 404 and gone.json()["detail"]["code"] == "faq_not_found"
    assert client.put(f"/api/v1/staff/faq/{fid}", json=body, headers=AUTH).status_code == 404
    for bad in ({"questions": {}, "answers": {"en": "x"}}, {"questions": {"en": ["  "]}, "answers": {"en": "x"}},
                {"questions": {"fr": ["q"]}, "answers": {"en": "x"}}, {"questions": {"en": ["q"]}, "answers": {}},
                {"questions": {"en": ["q"]}, "answers": {"en": "x" * 2001}}, {"questions": {"en": ["q"]}}):
        r = client.post("/api/v1/staff/faq", json=bad, headers=AUTH)
        assert r.status_code == 422 and r.json()["error"], bad
    assert len(client.get("/api/v1/staff/faq", headers=AUTH).json()) == len(entries)  # nothing half-written
    assert client.get("/api/v1/staff/faq").status_code == 401
    assert client.get("/api/v1/staff/faq/unanswered", headers=AUTH).status_code == 200


def test_a_near_miss_about_the_alliance_is_logged_for_staff(client):
    before = client.get("/api/v1/staff/faq/unanswered", headers=AUTH).json()
    reply = chat(client, "does the alliance have an office in Macau?")
    assert reply["intent"] != "faq"
    logged = client.get("/api/v1/staff/faq/unanswered", headers=AUTH).json()
    assert len(logged) == len(before) + 1 and logged[0]["text"] == "does the alliance have an office in Macau?"
    assert client.delete(f"/api/v1/staff/faq/unanswered/{logged[0]['id']}", headers=AUTH).status_code == 204
    assert client.delete(f"/api/v1/staff/faq/unanswered/{logged[0]['id']}", headers=AUTH).status_code == 404
