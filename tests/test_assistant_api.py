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
        ({"query": "x" * 2001}, "query"),
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
    assert ready["stores"]["state"]["backend"].startswith("sqlite at ") and ready["stores"]["state"]["ok"]
    assert ready["stores"]["vectors"] == {"backend": "faiss (flat) in the data folder", "ok": True}


def test_a_postgresql_outage_fails_readiness_and_chat_fast_and_leaves_search_alone(shipped_catalog, postgres_server):
    """PostgreSQL stopped under a serving process: /readyz turns 503 within 2 s, naming the store;
    searches (which need no state) are answered as fast as before, rate limits on; a chat turn
    (which needs it) gets a fast 503 saying so; /healthz stays 200. It starts again: all back."""
    import time

    from assistant.app import create_app
    from assistant.settings import Settings

    from conftest import LiveServer

    settings = Settings(data_dir=shipped_catalog.data_dir, state_url=postgres_server.url, rate_limit_per_minute=1000,
                        encoder_tokens_per_minute=100_000)
    with LiveServer(create_app(settings, shipped_catalog)) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["stores"]["state"]["backend"].startswith("postgresql at 127.0.0.1")
        assert c.post("/api/v1/chat", json={"text": "cork"}).status_code == 200

        postgres_server.stop()
        stopped = time.monotonic()
        while (ready := c.get("/readyz")).status_code != 503:
            assert time.monotonic() - stopped < 2, "readiness still 200 two seconds after PostgreSQL stopped"
            time.sleep(0.05)
        assert time.monotonic() - stopped < 2
        body = ready.json()
        assert "state (postgresql" in body["error"] and body["detail"]["stores"]["vectors"]["ok"]
        assert c.get("/healthz").status_code == 200
        for query in ("cork stoppers", "moldes", "葡萄酒", "wine", "tourism"):
            t0 = time.monotonic()
            r = search(c, query=query)
            assert r.status_code == 200 and r.json()["total"] > 0 and time.monotonic() - t0 < 3, (r.status_code, time.monotonic() - t0)
        t0 = time.monotonic()
        chat = c.post("/api/v1/chat", json={"text": "procuro rolhas de cortiça"})
        assert chat.status_code == 503 and time.monotonic() - t0 < 3
        assert "not answering" in chat.json()["error"] and chat.headers["Retry-After"]

        postgres_server.start()
        started = time.monotonic()
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() - started < 30, "readiness not back after PostgreSQL returned"
            time.sleep(0.2)
        assert c.post("/api/v1/chat", json={"text": "cork"}).status_code == 200


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


def test_less_close_results_are_labelled_in_the_search_json(client, shipped_engine):
    """Just below the judgement's threshold the nearest are shown, each ``less_close`` (not a match)."""
    import dataclasses

    cfg = shipped_engine.config
    model = cfg.model
    cfg.model = dataclasses.replace(model, threshold=1.01, near=0.0)  # no question answered; all in the band
    try:
        body = search(client, query="automotive mould makers in China").json()
    finally:
        cfg.model = model
    assert 1 <= len(body["results"]) <= 3 and body["total"] == len(body["results"])
    assert all(h["less_close"] for h in body["results"]) and body["results"][0]["country"] == "CN"
    assert (body["matches"], body["less_close"]) == (0, body["total"])  # none of them is counted as a match
    normal = search(client, query="automotive mould makers in China").json()
    assert normal["results"] and not normal["results"][0]["less_close"]


def test_matches_and_less_close_results_are_counted_apart_on_every_page(client):
    """An answered list is filled up to ten with less-close hits: the API says how many are matches."""
    first = search(client, query="cortiça", limit=10).json()
    flags = [h["less_close"] for h in first["results"]]
    assert first["matches"] >= 1 and first["less_close"] >= 1 and first["total"] == first["matches"] + first["less_close"]
    assert flags == [False] * first["matches"] + [True] * first["less_close"]  # the matches, then the rest, marked
    later = search(client, query="cortiça", limit=2, offset=first["matches"]).json()
    assert (later["matches"], later["less_close"]) == (first["matches"], first["less_close"])  # counts are of all pages
    assert later["results"] and all(h["less_close"] for h in later["results"])
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("SearchResponse", "MatchesResponse"):
        assert {"total", "matches", "less_close"} <= set(schema[name]["required"])
        assert "NOT" in schema[name]["properties"]["less_close"]["description"]


def test_matches_for_an_organisation(client):
    r = client.get("/api/v1/organisations/cn-wenzhou-footwear/matches", params={"lang": "en", "limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["organisation"] == "cn-wenzhou-footwear" and body["lang"] == "en"
    assert body["results"] and all(h["country"] == "PT" for h in body["results"])
    assert body["matches"] + body["less_close"] == body["total"] and body["matches"] >= 1
    assert body["results"][0]["id"] in ("pt-cluster-calcado", "pt-polo-moda")  # footwear and fashion clusters
    assert all(h["why"]["text"] for h in body["results"])
    assert client.get("/api/v1/organisations/no-such-org/matches").status_code == 404
    bad = client.get("/api/v1/organisations/cn-wenzhou-footwear/matches", params={"lang": "fr"})
    assert bad.status_code == 422 and bad.json()["error"]


# -- normalisation of what users type (index/_normalise.py) -------------------------------------
def _normalised(body):
    from assistant._schemas import SearchResponse

    SearchResponse.model_validate(body)  # the documented shape, "from" included
    return [(c["kind"], c["from"], c["to"]) for c in body["understood"]["normalised"]]


def test_traditional_characters_find_what_simplified_ones_do(client):
    trad = search(client, query="想找葡萄牙的紡織企業").json()
    simp = search(client, query="想找葡萄牙的纺织企业").json()
    assert ("traditional", "紡織", "纺织") in _normalised(trad)
    assert trad["understood"]["seeking"]["sectors"] == ["textiles"] and trad["lang"] == "zh"
    assert [h["id"] for h in trad["results"]] == [h["id"] for h in simp["results"]]
    assert trad["results"][0]["id"] in ("pt-cluster-textil", "pt-citeve") and trad["query"] == "想找葡萄牙的紡織企業"


def test_cantonese_question_is_understood(client):
    body = search(client, query="有冇葡萄牙嘅軟木公司？我想搵佢哋合作").json()
    assert {("cantonese", "嘅", "的"), ("cantonese", "搵", "找"), ("traditional", "軟木", "软木")} <= set(_normalised(body))
    assert "cork" in body["understood"]["seeking"]["sectors"] and body["understood"]["asker"] is None
    assert body["results"][0]["id"] in ("pt-apcor", "pt-corticeira-amorim")


def test_cantonese_particles_and_verbs_are_read_too(client):
    body = search(client, query="我諗搵葡萄牙做軟木塞嘅廠㗎").json()
    assert {("cantonese", "諗", "想"), ("cantonese", "㗎", "")} <= set(_normalised(body))
    assert "cork" in body["understood"]["seeking"]["sectors"] and body["lang"] == "zh"
    assert body["results"][0]["id"] in ("pt-apcor", "pt-corticeira-amorim")


def test_pinyin_trade_and_place_words_are_read_as_chinese(client):
    body = search(client, query="ningbo mujv").json()
    assert ("pinyin", "mujv", "模具") in _normalised(body)
    assert body["understood"]["seeking"]["sectors"] == ["moulds"]
    assert "cn-ningbo-mould-capital" in [h["id"] for h in body["results"][:2]]
    battery = search(client, query="shenzhen dianchi").json()
    assert ("pinyin", "dianchi", "电池") in _normalised(battery)
    assert battery["results"] and all("batteries" in h["sectors"] for h in battery["results"][:2])


def test_a_whole_sentence_in_pinyin_is_read_and_its_sought_side_found(client):
    body = search(client, query="women shi ningbo de mujv qiye, xiang zhao putaoya de kehu").json()
    assert {("pinyin", "mujv", "模具"), ("pinyin", "women", "我们"), ("pinyin", "kehu", "客户")} <= set(_normalised(body))
    assert "moulds" in (body["understood"]["asker"] or {}).get("sectors", [])
    assert body["results"] and all(h["country"] == "PT" for h in body["results"][:3])


def test_a_pinyin_word_that_may_mean_several_nouns_searches_them_all(client):
    body = search(client, query="zhongguo lizi dianchi gongchang").json()  # 离子电池, not 例子电池
    assert ("pinyin", "lizi", "例子/粒子/离子") in _normalised(body)
    assert body["understood"]["seeking"]["sectors"] == ["batteries"] and body["lang"] == "zh"  # Chinese typed in pinyin
    assert body["results"] and all(h["country"] == "CN" and "batteries" in h["sectors"] for h in body["results"][:2])


def test_portuguese_without_accents(client):
    body = search(client, query="fornecedores de cortica em Portugal").json()
    assert ("accents", "cortica", "cortiça") in _normalised(body)
    assert body["results"][0]["id"] in ("pt-apcor", "pt-corticeira-amorim")
    assert all(h["country"] == "PT" for h in body["results"])


def test_a_typo_is_corrected_and_said(client):
    body = search(client, query="chna moulds").json()
    assert ("typo", "chna", "china") in _normalised(body)
    assert body["understood"]["seeking"]["countries"] == ["CN"] and body["understood"]["seeking"]["sectors"] == ["moulds"]
    assert body["results"] and all(h["country"] == "CN" and "moulds" in h["sectors"] for h in body["results"][:5])
    clean = search(client, query="china moulds").json()
    assert _normalised(clean) == []


PROFILE = (
    "Sapatos Ribeira is a family-owned footwear manufacturer founded in 1978 in Felgueiras, in the north of Portugal. "
    "We design and produce men's and women's leather shoes, boots and sneakers, around 1,200 pairs a day, for our own "
    "brand and as a private-label supplier for European fashion houses. Our team of 140 people combines traditional "
    "Goodyear welting with modern CAD design, automated cutting and a laboratory for quality testing. Almost all of the "
    "leather we use is tanned in Portugal and Spain, and we have worked for more than a decade on reducing water and "
    "chemical use in our finishing lines. Our customers need short lead times and small batches, and we want to keep "
    "the flexibility that made us known in Germany, France, the Netherlands and the Nordic countries, where we export "
    "85% of what we make. In 2022 we opened our showroom in Milan and we take part every year in MICAM and in the "
    "Portuguese footwear association's trade missions. We hold ISO 9001 and ISO 14001 certification and our products "
    "carry the Portuguese Shoes label. Over the last two years we have invested in a new injection line for soles and "
    "in a digital platform that lets clients follow each order. Our next step is to develop a lighter sole and a new "
    "range of technical outdoor footwear, for which we will need new components, tooling and test equipment. "
    "We are looking for Chinese manufacturers of injection moulds and plastic parts, ideally in Zhejiang, who can "
    "work with us on prototypes and small production runs."
)


def test_a_pasted_profile_is_searched_for_what_its_last_sentence_seeks(client):
    assert len(PROFILE) >= 1500
    body = search(client, query=PROFILE).json()
    u = body["understood"]
    assert "footwear" in u["asker"]["sectors"] and "footwear" not in u["seeking"]["sectors"]
    assert "moulds" in u["seeking"]["sectors"] and u["seeking"]["countries"] == ["CN"]
    assert body["results"] and all(h["country"] == "CN" and "moulds" in h["sectors"] for h in body["results"][:4])
    assert "pt-cluster-calcado" not in [h["id"] for h in body["results"]]
