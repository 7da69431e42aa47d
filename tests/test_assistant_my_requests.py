""""My requests" (assistant/_my_requests.py): a user's leads, alerts and other registered sections with
statuses, in the chat (by meaning, three languages) and on the web."""

from __future__ import annotations

import httpx
import pytest

from assistant import _alerts as alerts
from assistant import _my_requests as mine


def test_leads_and_alerts_of_one_identity_only(shipped_engine, store):
    lead = store.add_lead("tg-9", "telegram", "pt-apcor", "APCOR", "pt", "rolhas")
    store.add_lead("tg-8", "telegram", "pt-apcor", "APCOR", "pt", "someone else")
    store.update_lead(lead, status="contacted")
    sub = alerts.subscribe(store, shipped_engine, "telegram", "tg-9", "moldes na China")
    store.add_notices([(sub, "r1", "R1"), (sub, "r2", "R2")])
    store.mark_sent(sub, ["r1"])
    alerts.subscribe(store, shipped_engine, "telegram", "tg-8", "cork")
    found = mine.my_requests(store, "telegram", "tg-9", "pt")
    assert [(x["id"], x["status"]) for x in found["leads"]] == [(lead, "contacted")]
    assert [(a["query"], a["active"], a["sent"], a["pending"]) for a in found["alerts"]] == [("moldes na China", True, 1, 1)]
    text = mine.render(found, "pt")
    assert f"Pedido n.º {lead} (APCOR): em contacto" in text and "«moldes na China»: ativo, 1 avisos enviados" in text
    zh = mine.render(mine.my_requests(store, "telegram", "tg-9", "zh"), "zh")
    assert "您的请求：" in zh and "已联系" in zh and "「moldes na China」：进行中" in zh
    assert mine.render(mine.my_requests(store, "telegram", "tg-nobody", "en"), "en") == mine.TEXTS["en"]["none"]


def test_sections_plug_in_from_elsewhere(store):
    """A part of the service that keeps something for a user (profiles, posts) adds its section."""
    seen = []

    def posts(state, channel, session_id, lang):
        seen.append((state, channel, session_id, lang))
        return [{"id": "post-1", "status": "open", "text": {"pt": "Oferta «moldes»: aberta", "zh": "供应「模具」：开放",
                                                            "en": "Offer “moulds”: open"}[lang]}]

    kept = dict(mine._SECTIONS)
    try:
        mine._SECTIONS.clear()  # only this test's section, whatever other parts of the service registered
        mine.register_section("posts", posts, {"pt": "As suas publicações:", "zh": "您的发布：", "en": "Your posts:"})
        found = mine.my_requests(store, "web", "s-1", "zh")
        assert [s["name"] for s in found["sections"]] == ["posts"] and found["posts"][0]["id"] == "post-1"
        assert seen == [(store, "web", "s-1", "zh")]
        assert mine.render(found, "zh") == "您的发布：\n• 供应「模具」：开放"
        with pytest.raises(ValueError):
            mine.register_section("broken", posts, {"en": "Only English"})
    finally:
        mine._SECTIONS.clear()
        mine._SECTIONS.update(kept)


@pytest.mark.parametrize("text,lang", [("quais são os meus pedidos?", "pt"), ("我的请求", "zh"), ("show me my requests", "en")])
def test_the_chat_answers_my_requests_in_three_languages(bot, store, text, lang):
    lead = store.add_lead("wx-o9", "wechat", "pt-apcor", "APCOR", lang, "x")
    reply = bot.respond("wx-o9", text, "wechat")
    assert reply.intent == "mine" and reply.lang == lang and str(lead) in reply.text


def test_a_search_is_not_taken_for_my_requests(bot):
    assert bot.respond("web-s", "fabricantes de moldes na China", "web").intent not in ("status", "mine")
    assert bot.respond("web-t", "what is the status of my request?", "web").intent == "status"


def test_web_route(live_api):
    with httpx.Client(base_url=live_api.url, timeout=120) as c:
        sid = c.post("/api/v1/chat", json={"text": "moldes na China"}).json()["session_id"]
        r = c.get("/api/v1/me/requests", params={"session_id": sid, "lang": "pt"})
        assert r.status_code == 200 and r.json()["leads"] == [] and r.json()["alerts"] == []
        assert c.post("/api/v1/alerts", json={"query": "moldes na China", "session_id": sid}).status_code == 201
        body = c.get("/api/v1/me/requests", params={"session_id": sid, "lang": "pt"}).json()
        assert [a["query"] for a in body["alerts"]] == ["moldes na China"] and "Os seus alertas" in body["text"]
        assert [s["name"] for s in body["sections"]][:2] == ["leads", "alerts"] and body["sections"][1]["title"] == "Os seus alertas:"
        assert c.get("/api/v1/me/requests", params={"session_id": "forged"}).status_code == 404
        assert c.get("/api/v1/me/requests", params={"session_id": "a b"}).status_code == 422


def test_a_members_profile_shows_with_its_status_and_the_reason_it_was_not_approved(store):
    """The join part (assistant/_profiles.py) adds its section: one identity's profiles only."""
    import time

    from assistant import _profiles  # noqa: F401  (registers the section)

    data = {"name": "Moldes Exemplo Lda (teste)", "kind": "company", "country": "PT"}
    mine_id = store.add_profile("telegram", "tg-9", "pt", data, time.time())
    store.add_profile("telegram", "tg-8", "pt", {**data, "name": "Outra (teste)"}, time.time())
    store.update_profile(mine_id, status="rejected", reason="falta o site")
    found = mine.my_requests(store, "telegram", "tg-9", "pt")
    assert [(p["id"], p["status"]) for p in found["profiles"]] == [(mine_id, "rejected")]
    assert "«Moldes Exemplo Lda (teste)»: não aprovado — falta o site" in mine.render(found, "pt")
    assert "「Moldes Exemplo Lda (teste)」：未通过" in mine.render(mine.my_requests(store, "telegram", "tg-9", "zh"), "zh")


def test_an_authors_posts_show_with_type_deadline_and_status(store):
    """The posts part (assistant/_posts.py) adds its section: the author's posts, a past date as closed."""
    from assistant import _posts  # noqa: F401  (registers the section)

    post = {"id": "post-fx-9", "type": "supplier", "lang": "pt", "title": "Procuramos granulado (fictício)",
            "description": "Fabricante fictício procura fornecedor de granulado.", "sectors": ["cortiça"],
            "side_sought": "CN", "closes": "2020-01-31", "author": None}
    store.add_post(post, "published", "telegram", "tg-9")
    store.add_post({**post, "id": "post-fx-10"}, "published", "telegram", "tg-8")
    found = mine.my_requests(store, "telegram", "tg-9", "pt")
    assert [(p["id"], p["status"]) for p in found["posts"]] == [("post-fx-9", "expired")]
    text = mine.render(found, "pt")
    assert "«Procuramos granulado (fictício)» (até 2020-01-31): encerrada" in text
