"""Access, limits, CORS and bad input on real uvicorn servers: the staff key on the admin
endpoints, ingest/delete through the API, per-client and per-user rate limits, body size caps,
and hostile bytes, every refusal a 4xx with a JSON body."""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import DATA, LiveServer, private_copy

KEY = "security-staff-key-19c4"
AUTH = {"Authorization": f"Bearer {KEY}"}
NDJSON = {"Content-Type": "application/x-ndjson"}
ADMIN_ENDPOINTS = [
    ("POST", "/api/v1/admin/ingest", b'{"id": "x"}\n'),
    ("DELETE", "/api/v1/admin/organisations/pt-apcor", None),
    ("POST", "/api/v1/admin/reindex", None),
]


def app_with(catalog, data_dir, **overrides):
    from assistant.app import create_app
    from assistant.settings import Settings

    return create_app(Settings(data_dir=data_dir, **{"admin_token": KEY, **overrides}), catalog)


def assert_json_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["error"], str) and body["error"]
    return body


@pytest.fixture(scope="module")
def admin(shipped_data_dir, encoder, tmp_path_factory):
    """A server over its own copy of the shipped data, so ingest and delete change nothing else."""
    data_dir = tmp_path_factory.mktemp("admin") / "var"
    catalog = private_copy(shipped_data_dir, data_dir, encoder)
    with LiveServer(app_with(catalog, data_dir, max_ingest_bytes=256 * 1024)) as live, \
            httpx.Client(base_url=live.url, timeout=120) as client:
        client.catalog = catalog
        yield client
    catalog.close()


@pytest.fixture(scope="module")
def public(shipped_catalog, tmp_path_factory):
    """Defaults apart from the key: no CORS origins, unthrottled (see conftest)."""
    with LiveServer(app_with(shipped_catalog, tmp_path_factory.mktemp("public"))) as live, \
            httpx.Client(base_url=live.url, timeout=60) as client:
        yield client


# -- access -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, path, body", ADMIN_ENDPOINTS)
def test_admin_endpoints_need_the_key(public, method, path, body):
    r = public.request(method, path, content=body, headers=NDJSON)
    assert assert_json_error(r, 401)["error"].startswith("staff key required")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_json_error(public.request(method, path, content=body, headers={**NDJSON, "Authorization": "Bearer nope"}), 403)
    assert_json_error(public.request(method, path, content=body, headers={**NDJSON, "X-Staff-Key": KEY[:-1]}), 403)


@pytest.mark.parametrize("method, path, body", ADMIN_ENDPOINTS)
def test_admin_endpoints_are_disabled_without_a_configured_key(shipped_catalog, tmp_path, method, path, body):
    with LiveServer(app_with(shipped_catalog, tmp_path, admin_token=None)) as live:
        r = httpx.request(method, live.url + path, content=body, headers={**NDJSON, **AUTH}, timeout=30)
    assert "disabled" in assert_json_error(r, 403)["error"]


def test_staff_console_page_is_public_but_its_data_is_not(public):
    page = public.get("/staff")
    assert page.status_code == 200 and "staff.js" in page.text
    for path in ("/api/v1/staff/stats", "/api/v1/staff/queries", "/api/v1/leads", "/api/v1/leads/export"):
        assert_json_error(public.get(path), 401)
    assert public.get("/api/v1/staff/stats", headers=AUTH).status_code == 200


# -- admin: ingest, delete ----------------------------------------------------------------------
def fictional_lines() -> list[str]:
    return [line for line in (DATA / "fictional.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def test_ingest_then_delete_through_the_api(admin):
    lines = fictional_lines()
    before = admin.get("/readyz").json()["records"]
    r = admin.post("/api/v1/admin/ingest", content="\n".join(lines).encode(), headers={**NDJSON, **AUTH})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["imported"] == len(lines) and report["skipped"] == [] and report["records"] == before + len(lines)
    assert admin.get("/api/v1/organisations/test-mould-works").json()["name"] == "Test Mould Works"
    found = admin.post("/api/v1/search", json={"query": "测试模具厂", "limit": 3}).json()
    assert "test-mould-works" in [h["id"] for h in found["results"]]

    r = admin.delete("/api/v1/admin/organisations/test-mould-works", headers=AUTH)
    assert r.status_code == 200 and r.json() == {"deleted": "test-mould-works", "records": before + len(lines) - 1}
    assert_json_error(admin.get("/api/v1/organisations/test-mould-works"), 404)
    assert "test-mould-works" not in admin.catalog.engine.records and admin.catalog.store.get("test-mould-works") is None
    assert "test-mould-works" in assert_json_error(admin.delete("/api/v1/admin/organisations/test-mould-works", headers=AUTH), 404)["error"]


def test_csv_ingest(admin):
    body = ("id,kind,name,country,region,city,sectors,lang,description,name_zh,description_zh\r\n"
            "test-csv-cork,company,CSV Cork Test,PT,Norte,Porto,cork;packaging,en,"
            "\"A fictional cork stopper maker, for the CSV ingest test.\",CSV软木测试,一家虚构的软木塞企业。\r\n")
    r = admin.post("/api/v1/admin/ingest", content=body.encode(), headers={"Content-Type": "text/csv; charset=utf-8", **AUTH})
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    rec = admin.get("/api/v1/organisations/test-csv-cork").json()
    assert rec["sectors"] == ["cork", "packaging"] and rec["i18n"]["zh"]["name"] == "CSV软木测试"


def test_malformed_ingest_names_line_and_field_and_imports_nothing(admin):
    good = json.loads(fictional_lines()[1])
    good["id"] = "test-never-imported"
    bad = {**good, "id": "test-bad-country", "country": "Atlantis"}
    body = "\n".join([json.dumps(good, ensure_ascii=False), json.dumps(bad, ensure_ascii=False), "{not json"])
    generation = admin.catalog._read_pointer()
    r = admin.post("/api/v1/admin/ingest", content=body.encode(), headers={**NDJSON, **AUTH})
    err = assert_json_error(r, 422)
    assert err["error"].startswith("line 2: country:") and "nothing was imported" in err["error"]
    assert {"line": 3, "field": "-"}.items() <= err["detail"][1].items()
    assert "/tmp" not in r.text and "body.jsonl" not in r.text  # no server paths
    assert admin.catalog.store.get("test-never-imported") is None and admin.catalog._read_pointer() == generation

    r = admin.post("/api/v1/admin/ingest?skip_invalid=true", content=body.encode(), headers={**NDJSON, **AUTH})
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == 1 and [p["line"] for p in r.json()["skipped"]] == [2, 3]
    assert admin.get("/api/v1/organisations/test-never-imported").status_code == 200


def test_csv_the_csv_module_cannot_read_is_422(admin):
    body = ('id,kind,name,country,description\r\ntest-huge,company,Huge,PT,"' + "x" * 140_000 + '"\r\n').encode()
    r = admin.post("/api/v1/admin/ingest", content=body, headers={"Content-Type": "text/csv", **AUTH})
    assert assert_json_error(r, 422)["error"].startswith("line 2: -: not valid CSV (field larger than field limit")


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", None])
def test_ingest_refuses_other_content_types(admin, content_type):
    headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
    r = admin.post("/api/v1/admin/ingest", content=fictional_lines()[0].encode(), headers=headers)
    assert "application/x-ndjson" in assert_json_error(r, 415)["error"]


@pytest.mark.parametrize("body", [b"", b"  \n\n", b"\xff\xfe{}\n"])
def test_ingest_of_empty_or_undecodable_bodies_is_422(admin, body):
    assert_json_error(admin.post("/api/v1/admin/ingest", content=body, headers={**NDJSON, **AUTH}), 422)


def test_ingest_has_its_own_larger_size_cap(admin):
    line = fictional_lines()[0]
    mid = ((line + "\n") * (100 * 1024 // len(line)))  # ~100 KiB: over the API cap, under the ingest cap
    r = admin.post("/api/v1/admin/ingest", content=mid.encode(), headers={**NDJSON, **AUTH})
    assert "duplicate id" in assert_json_error(r, 422)["error"]  # read and validated, not refused for size
    big = mid * 3
    assert_json_error(admin.post("/api/v1/admin/ingest", content=big.encode(), headers={**NDJSON, **AUTH}), 413)

    def chunks():  # no Content-Length: counted while it streams
        for _ in range(3):
            yield mid.encode()

    assert_json_error(admin.post("/api/v1/admin/ingest", content=chunks(), headers={**NDJSON, **AUTH}), 413)


# -- admin: records that broke the data folder before ------------------------------------------
def folder_state(catalog) -> tuple:
    gens = sorted(p.name for p in catalog.index_dir.iterdir() if p.name.startswith("gen-"))
    return len(catalog.store), catalog._read_pointer(), gens


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_a_record_with_a_unicode_line_separator_keeps_the_folder_healthy(shipped_data_dir, encoder, tmp_path, separator):
    """Ingested through the API of a live server: searchable, later writes answer 200, and after a
    restart the folder opens and searches, in-process and with `cpc search`."""
    import os
    import subprocess
    import sys

    from index import Catalog

    data_dir = tmp_path / "var"
    catalog = private_copy(shipped_data_dir, data_dir, encoder)
    rec = {"id": "test-line-separator", "kind": "company", "name": f"Separator{separator}Moulds", "country": "PT",
           "region": "Centro", "sectors": ["moulds"], "lang": "pt",
           "description": f"Fabricante fictício de moldes.{separator}Segundo parágrafo de teste.",
           "i18n": {"zh": {"name": "行分隔符测试模具厂", "description": f"虚构的模具企业。{separator}第二段。"}}}
    body = json.dumps(rec, ensure_ascii=False).encode()
    assert separator.encode() in body
    with LiveServer(app_with(catalog, data_dir)) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        r = client.post("/api/v1/admin/ingest", content=body, headers={**NDJSON, **AUTH})
        assert r.status_code == 200, r.text
        found = client.post("/api/v1/search", json={"query": "行分隔符测试模具厂", "limit": 3}).json()
        assert found["results"][0]["id"] == "test-line-separator"
        assert client.get("/api/v1/organisations/test-line-separator").json()["name"] == f"Separator{separator}Moulds"
        again = client.post("/api/v1/admin/ingest", content=fictional_lines()[0].encode(), headers={**NDJSON, **AUTH})
        assert again.status_code == 200, again.text
        assert client.delete("/api/v1/admin/organisations/pt-apcor", headers=AUTH).status_code == 200
    catalog.close()

    reopened = Catalog(data_dir, encoder)
    engine = reopened.open()
    assert not reopened.read_only and "pt-apcor" not in engine.records
    assert engine.records["test-line-separator"].description.endswith(f"{separator}Segundo parágrafo de teste.")
    reopened.close()
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "search", "行分隔符测试模具厂", "--json", "--limit", "2"],
                         env=dict(os.environ, CPC_DATA_DIR=str(data_dir)), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["results"][0]["id"] == "test-line-separator"


LANGS = ["pt", "zh", "fr", "de", "es", "it", "ja", "ko", "ru", "ar", "nl", "sv", "pl", "tr", "vi", "th"]


@pytest.mark.parametrize("record, line, field", [
    ({"i18n": {code: {"name": f"Nome {code}", "description": "Descrição."} for code in LANGS}}, 2, "i18n"),
    ({"region": "R" * 200_000}, 2, "region"),
    ({"sectors": ["moulds", "s" * 5_000]}, 2, "sectors.1"),
    ({"note": json.loads("[" * 50 + "]" * 50)}, 2, "note"),
    ({"note": "n" * 100_000}, 2, "note"),
])
def test_records_over_the_limits_are_refused_by_line_and_field_and_change_nothing(admin, record, line, field):
    good = json.loads(fictional_lines()[1])
    good["id"] = "test-limits-never-imported"
    bad = {**good, "id": "test-over-a-limit", **record}
    before = folder_state(admin.catalog)
    body = json.dumps(good, ensure_ascii=False) + "\n" + json.dumps(bad, ensure_ascii=False) + "\n"
    err = assert_json_error(admin.post("/api/v1/admin/ingest", content=body.encode(), headers={**NDJSON, **AUTH}), 422)
    assert err["error"].startswith(f"line {line}: {field}:") and "nothing was imported" in err["error"], err
    assert err["detail"][0]["line"] == line and err["detail"][0]["field"] == field
    assert folder_state(admin.catalog) == before
    assert admin.catalog.store.get("test-limits-never-imported") is None


def test_deeply_nested_json_in_an_ingest_body_is_422(admin):
    before = folder_state(admin.catalog)
    deep = b'{"id": "test-deep", "kind": "company", "name": "D", "country": "PT", "description": "d", "note": ' \
        + b"[" * 10_000 + b"]" * 10_000 + b"}\n"
    err = assert_json_error(admin.post("/api/v1/admin/ingest", content=deep, headers={**NDJSON, **AUTH}), 422)
    assert err["detail"] == [{"line": 1, "field": "-", "message": "JSON nested too deeply"}]
    bare = b"[" * 10_000 + b"]" * 10_000 + b"\n"
    assert_json_error(admin.post("/api/v1/admin/ingest", content=bare, headers={**NDJSON, **AUTH}), 422)
    assert folder_state(admin.catalog) == before


# -- rate limits --------------------------------------------------------------------------------
def test_token_buckets_refill_evenly():
    from assistant._limits import TokenBuckets

    now = [100.0]
    buckets = TokenBuckets(6, max_keys=2, clock=lambda: now[0])  # 6 a minute: one every 10 s
    assert [buckets.take("a") for _ in range(6)] == [0.0] * 6
    assert buckets.take("a") == pytest.approx(10.0)
    now[0] += 5
    assert buckets.take("a") == pytest.approx(5.0)  # refused takes spend nothing
    now[0] += 5
    assert buckets.take("a") == 0.0 and buckets.take("a") > 0
    assert buckets.take("b") == 0.0 and buckets.take("c") == 0.0 and len(buckets) == 2  # oldest key dropped
    assert TokenBuckets(0).take("a") == 0.0


def test_public_api_is_rate_limited_per_client(shipped_catalog, tmp_path):
    with LiveServer(app_with(shipped_catalog, tmp_path, rate_limit_per_minute=4)) as live, \
            httpx.Client(base_url=live.url, timeout=60) as client:
        assert client.post("/api/v1/search", json={"query": "cortiça"}).status_code == 200
        assert client.get("/api/v1/organisations/pt-apcor").status_code == 200
        assert client.post("/api/v1/chat", json={"text": "olá"}).status_code == 200
        assert client.get("/api/v1/facets").status_code == 200
        r = client.post("/api/v1/search", json={"query": "cortiça"})
        body = assert_json_error(r, 429)
        assert 1 <= int(r.headers["retry-after"]) <= 15 and body["detail"]["limit_per_minute"] == 4
        assert_json_error(client.get("/api/v1/organisations/pt-apcor"), 429)
        assert_json_error(client.post("/api/v1/chat", json={"text": "olá"}), 429)
        # probes, pages and the staff key are not limited
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        assert client.get("/").status_code == 200
        assert client.post("/api/v1/search", json={"query": "cortiça"}, headers=AUTH).status_code == 200
        assert_json_error(client.post("/api/v1/search", json={"query": "cortiça"}, headers={"Authorization": "Bearer x"}), 429)
        assert live.server.config.app.state.rate_limits.per_minute == 4


def test_telegram_user_over_the_limit_is_asked_to_slow_down_in_portuguese(shipped_catalog, tmp_path):
    from connectors.telegram import SECRET_HEADER
    from test_connectors_telegram import SECRET, TOKEN, FakeBotAPI, message_update

    fake = FakeBotAPI()
    with LiveServer(fake.app) as bot_api:
        app = app_with(shipped_catalog, tmp_path, telegram_token=TOKEN, telegram_secret=SECRET,
                       telegram_api_base=f"{bot_api.url}/bot", chat_rate_limit_per_minute=2)
        with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=60) as client:
            for i, text in enumerate(["fornecedores de cortiça", "mais", "mais"], start=1):
                r = client.post("/telegram/webhook", json=message_update(900 + i, 4242, text, "pt-br"),
                                headers={SECRET_HEADER: SECRET})
                assert r.status_code == 200, r.text
            other = client.post("/telegram/webhook", json=message_update(904, 4343, "cork partners", "en"),
                                headers={SECRET_HEADER: SECRET})
            assert other.status_code == 200
            deep = client.post("/telegram/webhook", content=b"[" * 60_000, headers={SECRET_HEADER: SECRET})
            assert_json_error(deep, 400)  # nesting deeper than the JSON parser goes: refused, not a crash
    sent = [p["plain"] for p in fake.sent(chat_id=4242)]
    assert "cortiça" in sent[0].lower() or "1." in sent[0]
    assert sent[-1].startswith("Está a enviar mensagens depressa demais") and "s e escreva" in sent[-1]
    assert not any("depressa" in p["plain"] or "too fast" in p["plain"] for p in fake.sent(chat_id=4343))


def test_wechat_user_over_the_limit_is_asked_to_slow_down_in_chinese(shipped_catalog, tmp_path):
    from test_connectors_wechat import VECTOR, fields, plain_params, text_xml

    app = app_with(shipped_catalog, tmp_path, wechat_token=VECTOR["token"], chat_rate_limit_per_minute=1,
                   wechat_reply_timeout=4.8)
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        replies = []
        for i, text in enumerate(["葡萄牙的软木企业", "更多"]):
            r = client.post("/wechat", params=plain_params(), content=text_xml("o-fast", text, 55_000 + i).encode())
            assert r.status_code == 200, r.text
            replies.append(fields(r.text)["Content"])
    assert "软木" in replies[0]
    assert replies[1].startswith("您发送消息太频繁了")


# -- CORS ---------------------------------------------------------------------------------------
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


def test_no_cors_headers_unless_configured(public):
    r = public.post("/api/v1/search", json={"query": "moldes"}, headers={"Origin": "https://partners.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = public.options("/api/v1/search", headers={"Origin": "https://partners.example", **PREFLIGHT})
    assert "access-control-allow-origin" not in r.headers
    assert_json_error(r, 405)


def test_cors_for_configured_origins_only(shipped_catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("CPC_CORS_ORIGINS", "https://partners.example, https://cpc.example/")
    with LiveServer(app_with(shipped_catalog, tmp_path)) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        ok = {"Origin": "https://cpc.example"}
        r = client.options("/api/v1/search", headers={**ok, **PREFLIGHT})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://cpc.example"
        assert "POST" in r.headers["access-control-allow-methods"]
        r = client.post("/api/v1/search", json={"query": "moldes"}, headers=ok)
        assert r.headers["access-control-allow-origin"] == "https://cpc.example"
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        evil = {"Origin": "https://evil.example"}
        r = client.options("/api/v1/search", headers={**evil, **PREFLIGHT})
        assert "access-control-allow-origin" not in r.headers
        assert "CORS" in assert_json_error(r, 400)["error"]
        r = client.post("/api/v1/search", json={"query": "moldes"}, headers=evil)
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


# -- bad input ----------------------------------------------------------------------------------
def test_body_size_cap_on_declared_and_streamed_bodies(public):
    big = json.dumps({"query": "moldes", "pad": "x" * 70_000}).encode()
    body = assert_json_error(public.post("/api/v1/search", content=big, headers={"Content-Type": "application/json"}), 413)
    assert body["detail"] == {"limit": 65536}

    def chunks():
        for _ in range(40):
            yield b" " * 4096  # JSON whitespace: only the size can refuse it

    assert_json_error(public.post("/api/v1/chat", content=chunks(), headers={"Content-Type": "application/json"}), 413)
    assert public.post("/api/v1/search", json={"query": "moldes"}).status_code == 200  # the server is fine


RAW = {"Content-Type": "application/json"}


@pytest.mark.parametrize("path, content, status", [
    ("/api/v1/search", b'{"query": "moldes \xff\xfe"}', 400),  # not UTF-8
    ("/api/v1/search", b'{"query": "moldes\\u0000"}', 422),  # NUL
    ("/api/v1/search", b'{"query": "a\\u001b[31mred"}', 422),  # terminal escape
    ("/api/v1/search", b'{"query": "\\ud800 lone surrogate"}', 422),
    ("/api/v1/search", b'{"query": "moldes", "filters": {"country": ["PT\\u0000"]}}', 422),
    ("/api/v1/search", b'{"query": "moldes", "filters": {"sectors": ["' + b"x" * 101 + b'"]}}', 422),
    ("/api/v1/search", b'{"query": "moldes", "filters": {"country": ' + json.dumps(["PT"] * 21).encode() + b"}}", 422),
    ("/api/v1/search", b"[" * 20_000 + b"]" * 20_000, 400),  # nesting deeper than the parser allows
    ("/api/v1/search", b'{"query": "moldes", "limit": 1e400}', 422),
    ("/api/v1/search", b'"just a string"', 422),
    ("/api/v1/chat", b'{"text": "ol\\u00e1\\u0007"}', 422),
    ("/api/v1/chat", b'{"text": "\\udfff"}', 422),
    ("/api/v1/chat", b'{"text": "ok", "session_id": "../../etc"}', 422),
    ("/api/v1/chat", b'{"text": "' + "软".encode() * 2001 + b'"}', 422),
])
def test_hostile_json_is_a_4xx_with_a_json_body(public, path, content, status):
    assert_json_error(public.post(path, content=content, headers=RAW), status)


@pytest.mark.parametrize("path", ["/api/v1/search", "/api/v1/chat", "/api/v1/staff/export", "/api/v1/leads/1/status"])
@pytest.mark.parametrize("content", [b'{"query": "moldes"', b'{"text": "ol\xc3\xa1",}', b"{'text': 'x'}", b"nul\x00l",
                                     b'{"a": 1} {"b": 2}'])
def test_malformed_json_is_400_on_every_json_route(public, path, content):
    """Unreadable JSON is a 400 (the README's table); JSON that reads but does not fit stays a 422."""
    body = assert_json_error(public.post(path, content=content, headers={**RAW, **AUTH}), 400)
    assert body["error"].startswith("the body is not valid JSON") and isinstance(body["detail"]["position"], int)


def test_tabs_and_newlines_are_fine_in_chat(public):
    r = public.post("/api/v1/chat", json={"text": "fornecedores de cortiça\n\tem Portugal"})
    assert r.status_code == 200 and r.json()["intent"] == "search"


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api/v1/nowhere", 404),
    ("GET", "/nowhere/%FF%FE", 404),
    ("GET", "/api/v1/organisations/%00%ff", 404),
    ("GET", "/api/v1/organisations/" + "x" * 201, 422),
    ("DELETE", "/api/v1/search", 405),
    ("PUT", "/api/v1/chat", 405),
    ("GET", "/api/v1/leads?limit=lots", 422),
    ("GET", "/api/v1/leads?status=" + "n" * 33, 422),
    ("GET", "/api/v1/staff/queries?limit=0", 422),
    ("POST", "/api/v1/leads/99999999999999999999999/status", 422),
    ("POST", "/api/v1/leads/0/status", 422),
    ("GET", "/static/..%2F..%2Fsettings.py", 404),
    ("GET", "/static/" + "a" * 300 + ".js", 404),  # longer than a file name may be
])
def test_unknown_routes_methods_and_bad_parameters_are_json(public, method, path, status):
    r = public.request(method, path, headers=AUTH, json={"status": "contacted"} if method == "POST" else None)
    assert_json_error(r, status)
    if status == 405:
        assert r.headers["allow"]
