"""The HTTP API on a real uvicorn server, driven with httpx."""

import httpx
import pytest


@pytest.fixture(scope="module")
def client(live_api):
    with httpx.Client(base_url=live_api.url, timeout=30) as c:
        yield c


def search(client, **body):
    return client.post("/api/v1/search", json=body)


def test_chinese_query_finds_portuguese_cork(client):
    r = search(client, query="我们想找葡萄牙的软木合作伙伴")
    assert r.status_code == 200
    body = r.json()
    assert body["lang"] == "zh" and body["query"] == "我们想找葡萄牙的软木合作伙伴"
    top = body["results"][:2]
    assert all(h["country"] == "PT" and "cork" in h["sectors"] for h in top), top
    assert {h["id"] for h in top} <= {"pt-apcor", "pt-corticeira-amorim", "pt-aiff"}
    first = top[0]
    assert any("\u4e00" <= c <= "\u9fff" for c in first["name"])  # name in the query's language
    assert first["snippet_lang"] == "zh" and first["snippet"]
    assert "软木" in first["why"]["sectors"] or "软木" in first["why"]["terms"]
    assert set(first) >= {"id", "name", "kind", "country", "region", "sectors", "score", "snippet", "why"}


def test_filters_and_pagination(client):
    a = search(client, query="industrial partners", filters={"country": "CN", "kind": "cluster"}, limit=4).json()
    b = search(client, query="industrial partners", filters={"country": ["cn"], "kind": ["cluster"]}, limit=4, offset=4).json()
    assert a["total"] == b["total"] >= 8
    assert all(h["country"] == "CN" and h["kind"] == "cluster" for h in a["results"] + b["results"])
    assert not {h["id"] for h in a["results"]} & {h["id"] for h in b["results"]}
    zh = search(client, query="moulds", filters={"region": "浙江", "sectors": ["模具"]}, limit=50).json()
    assert zh["results"] and all(h["region"] == "Zhejiang" and "moulds" in h["sectors"] for h in zh["results"])


@pytest.mark.parametrize(
    "body, field",
    [
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": "x" * 1001}, "query"),
        ({}, "query"),
        ({"query": 42}, "query"),
        ({"query": "moldes", "limit": 0}, "limit"),
        ({"query": "moldes", "limit": 101}, "limit"),
        ({"query": "moldes", "offset": -1}, "offset"),
        ({"query": "moldes", "filters": {"colour": "red"}}, "filters.colour"),
        ({"query": "moldes", "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_422_with_json(client, body, field):
    r = search(client, **body)
    assert r.status_code == 422
    err = r.json()
    assert err["error"].startswith(field), err
    assert any(d["field"] == field for d in err["detail"])


@pytest.mark.parametrize(
    "filters, field, allowed",
    [
        ({"country": "FR"}, "country", "CN"),
        ({"kind": "factory"}, "kind", "institution"),
        ({"sectors": ["underwater basket weaving"]}, "sectors", "moulds"),
        ({"region": "Atlantis"}, "region", "Zhejiang"),
    ],
)
def test_unknown_filter_values_name_the_allowed_ones(client, filters, field, allowed):
    r = search(client, query="moldes", filters=filters)
    assert r.status_code == 422
    err = r.json()
    assert f"unknown {field}" in err["error"] and allowed in err["error"]
    assert err["detail"]["field"] == f"filters.{field}" and allowed in err["detail"]["allowed"]


def test_malformed_json_body(client):
    r = client.post("/api/v1/search", content=b'{"query": "moldes"', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("the body is not valid JSON")
    r = client.post("/api/v1/search", content="query=moldes", headers={"content-type": "text/plain"})
    assert r.status_code == 422 and "error" in r.json()


def test_organisation_and_404(client):
    r = client.get("/api/v1/organisations/pt-apcor")
    assert r.status_code == 200
    rec = r.json()
    assert rec["country"] == "PT" and rec["sources"] and set(rec["i18n"]) >= {"pt", "zh", "en"}
    derived = {d["sector"]: d for d in rec["derived_sectors"]}  # how staff see it was placed in the taxonomy
    assert derived["cork"] == {"sector": "cork", "confidence": 1.0, "source": "label"}
    r = client.get("/api/v1/organisations/no-such-org")
    assert r.status_code == 404 and "no-such-org" in r.json()["error"]
    assert client.get("/api/v1/nowhere").status_code == 404
    assert client.get("/api/v1/search").status_code == 405


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["records"] >= 60


def test_openapi_has_tags_and_examples(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/search"]["post"]
    assert op["tags"] == ["search"]
    schema = spec["components"]["schemas"]["SearchRequest"]
    assert schema["examples"][0]["query"] == "我们想找葡萄牙的软木合作伙伴"


# -- needs, floor, reasons, matches ---------------------------------------------------------
def test_search_says_what_it_understood_and_why(client):
    body = search(client, query="温州的鞋厂想找葡萄牙的鞋业设计合作伙伴").json()
    assert body["understood"]["asker"]["places"] == ["Wenzhou"]
    assert body["understood"]["seeking"]["countries"] == ["PT"] and "footwear" in body["understood"]["seeking"]["sectors"]
    assert body["results"] and all(h["country"] == "PT" for h in body["results"])
    assert body["total"] == len(body["results"]) < 63  # only matches count
    assert all(any("\u4e00" <= c <= "\u9fff" for c in h["why"]["text"]) for h in body["results"])
    assert body["nearest"] == []


def test_out_of_corpus_question_gets_no_results_but_labelled_nearest(client):
    body = search(client, query="Portuguese ceramics makers").json()
    assert (body["total"], body["results"]) == (0, [])
    assert body["nearest"] and body["understood"]["seeking"]["sectors"] == ["ceramics"]
    assert body["nearest"][0]["country"] == "CN" and "ceramics" in body["nearest"][0]["sectors"]  # the trade, elsewhere


def test_matches_for_an_organisation(client):
    r = client.get("/api/v1/organisations/cn-wenzhou-footwear/matches", params={"lang": "en", "limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["organisation"] == "cn-wenzhou-footwear" and body["lang"] == "en"
    assert body["results"] and all(h["country"] == "PT" for h in body["results"])
    assert body["results"][0]["id"] in ("pt-cluster-calcado", "pt-polo-moda")  # footwear and fashion clusters
    assert all(h["why"]["text"] for h in body["results"])
    assert client.get("/api/v1/organisations/no-such-org/matches").status_code == 404
    bad = client.get("/api/v1/organisations/cn-wenzhou-footwear/matches", params={"lang": "fr"})
    assert bad.status_code == 422 and bad.json()["error"]
