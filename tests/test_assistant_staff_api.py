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
    client.post("/api/v1/search", json={"query": "moldes na China"})
    client.post("/api/v1/search", json={"query": "moldes na China", "offset": 10})  # a further page: not a new query
    client.post("/api/v1/search", json={"query": "cork partners"}, headers=AUTH)
    client.post("/api/v1/search", json={"query": "wine", "filters": {"country": "CN", "region": "Norte"}}, headers={"X-Staff-Key": KEY})
    client.post("/api/v1/search", json={"query": "wine"}, headers={"Authorization": "Bearer wrong"})  # public search still works
    every = client.get("/readyz").json()["records"]  # with no filter, every record is ranked
    log = client.get("/api/v1/staff/queries", params={"limit": 50}, headers=AUTH).json()
    mine = [(q["channel"], q["query"], q["results"]) for q in log if q["channel"] in ("api", "staff")]
    assert mine[:4] == [("api", "wine", every), ("staff", "wine", 0), ("staff", "cork partners", every), ("api", "moldes na China", every)]
    assert sum(1 for q in log if q["query"] == "moldes na China") == 1
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
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4", "5"]
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


def test_leads_status_and_export(client):
    first = chat(client, "Portuguese cork companies")
    lead = chat(client, "=HYPERLINK(\"http://x\") I'm interested in 1", first["session_id"])
    assert lead["handoff"] and lead["lead_id"]
    lead_id = lead["lead_id"]

    listed = client.get("/api/v1/leads", headers=AUTH).json()
    assert listed[0]["id"] == lead_id and listed[0]["status"] == "new" and listed[0]["channel"] == "web"

    r = client.post(f"/api/v1/leads/{lead_id}/status", json={"status": "contacted"}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"id": lead_id, "status": "contacted"}
    assert client.get("/api/v1/leads", params={"status": "contacted"}, headers=AUTH).json()[0]["id"] == lead_id
    assert all(x["id"] != lead_id for x in client.get("/api/v1/leads", params={"status": "new"}, headers=AUTH).json())

    r = client.post("/api/v1/leads/999999/status", json={"status": "contacted"}, headers=AUTH)
    assert r.status_code == 404 and "999999" in r.json()["error"]
    for bad in ({"status": "won"}, {}, {"status": "new", "note": "x"}):
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
    assert "/" not in spec["paths"] and "/staff" not in spec["paths"]
