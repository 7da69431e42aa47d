""""My requests" (assistant/_my_requests.py): a user's leads and alerts with statuses, in the chat and on the web."""

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
    found = mine.my_requests(store, "telegram", "tg-9")
    assert [(x["id"], x["status"]) for x in found["leads"]] == [(lead, "contacted")]
    assert [(a["query"], a["active"], a["sent"], a["pending"]) for a in found["alerts"]] == [("moldes na China", True, 1, 1)]
    text = mine.render(found, "pt")
    assert f"Pedido n.º {lead} (APCOR): em contacto" in text and "«moldes na China»: ativo, 1 avisos enviados" in text
    assert "请求" in mine.render(found, "zh") and mine.render({"leads": [], "alerts": []}, "en") == mine.TEXTS["en"]["none"]


@pytest.mark.parametrize("text,lang", [("quais são os meus pedidos?", "pt"), ("我的请求", "zh"), ("show me my requests", "en")])
def test_the_chat_answers_my_requests_in_three_languages(bot, store, text, lang):
    lead = store.add_lead("wx-o9", "wechat", "pt-apcor", "APCOR", lang, "x")
    reply = bot.respond("wx-o9", text, "wechat")
    assert reply.intent == "status" and reply.lang == lang and str(lead) in reply.text


def test_a_search_is_not_taken_for_my_requests(bot):
    assert bot.respond("web-s", "fabricantes de moldes na China", "web").intent != "status"


def test_web_route(live_api):
    with httpx.Client(base_url=live_api.url, timeout=120) as c:
        sid = c.post("/api/v1/chat", json={"text": "moldes na China"}).json()["session_id"]
        r = c.get("/api/v1/me/requests", params={"session_id": sid, "lang": "pt"})
        assert r.status_code == 200 and r.json()["leads"] == [] and r.json()["alerts"] == []
        assert c.post("/api/v1/alerts", json={"query": "moldes na China", "session_id": sid}).status_code == 201
        body = c.get("/api/v1/me/requests", params={"session_id": sid, "lang": "pt"}).json()
        assert [a["query"] for a in body["alerts"]] == ["moldes na China"] and "Os seus alertas" in body["text"]
        assert c.get("/api/v1/me/requests", params={"session_id": "forged"}).status_code == 404
        assert c.get("/api/v1/me/requests", params={"session_id": "a b"}).status_code == 422
