"""Multi-turn conversations through POST /api/v1/chat on a real server, in three languages."""

import httpx
import pytest

from conftest import STAFF_KEY


@pytest.fixture(scope="module")
def client(live_api):
    with httpx.Client(base_url=live_api.url, timeout=30) as c:
        yield c


def chat(client, sid, text, **extra):
    r = client.post("/api/v1/chat", json={"session_id": sid, "text": text, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_chinese_conversation_with_details_and_handoff(client):
    sid = "api-zh-1"
    hello = chat(client, sid, "你好")
    assert (hello["intent"], hello["lang"]) == ("greeting", "zh")
    found = chat(client, sid, "我们想找葡萄牙的软木合作伙伴")
    assert found["intent"] == "find" and found["results"][0]["country"] == "PT"
    assert set(found["results"][0]) >= {"id", "name", "kind", "country", "region"}
    more = chat(client, sid, "更多")
    assert more["intent"] == "more" and more["results"][0]["number"] == 6
    second = chat(client, sid, "第二个的详细信息")
    assert second["intent"] == "details" and second["results"][0]["id"] == found["results"][1]["id"]
    ask = chat(client, sid, "我对第1个感兴趣")
    assert ask["intent"] == "contact_consent" and ask["handoff"] is False and ask["form"]["step"] == "consent"
    for text in ("同意", "王芳", "宁波软木制品有限公司", "wang.fang@163.com", "好"):
        chat(client, sid, text)
    lead = chat(client, sid, "确认")
    assert lead["intent"] == "contact" and lead["handoff"] is True and lead["lead_id"]
    leads = client.get("/api/v1/leads", headers={"Authorization": f"Bearer {STAFF_KEY}"}).json()
    mine = [x for x in leads if x["session_id"] == sid]
    assert mine and mine[0]["org_id"] == found["results"][0]["id"] and mine[0]["message"] == "我对第1个感兴趣"
    assert (mine[0]["name"], mine[0]["contact"], mine[0]["contact_kind"]) == ("王芳", "wang.fang@163.com", "email")
    bye = chat(client, sid, "谢谢")
    assert (bye["intent"], bye["lang"]) == ("thanks", "zh")


def test_portuguese_conversation_with_exclusion_and_switch(client):
    sid = "api-pt-1"
    first = chat(client, sid, "fabricantes de moldes na China", channel="web")
    assert (first["intent"], first["lang"]) == ("find", "pt")
    narrowed = chat(client, sid, "e só em Zhejiang?")
    assert narrowed["intent"] == "refine" and all(r["region"] == "Zhejiang" for r in narrowed["results"])
    excluded = chat(client, sid, "sem ser Ningbo")
    assert excluded["results"] and all(r["city"] != "Ningbo" for r in excluded["results"])
    switched = chat(client, sid, "And Portuguese mould makers?")
    assert switched["lang"] == "en"


def test_english_conversation_and_out_of_scope(client):
    sid = "api-en-1"
    assert chat(client, sid, "help")["intent"] == "help"
    found = chat(client, sid, "Portuguese aerospace cluster")
    assert found["intent"] == "find" and "aeronautics" in found["results"][0]["sectors"]
    assert chat(client, sid, "tell me a joke")["intent"] == "out_of_scope"
    only = chat(client, sid, "only companies")
    assert only["intent"] == "refine"
    bye = chat(client, sid, "bye")
    assert (bye["intent"], bye["lang"]) == ("goodbye", "en")


def test_empty_text_is_help_and_unknown_session_starts_new(client):
    body = chat(client, "api-new-session-xyz", "")
    assert body["intent"] == "help" and body["reply"]
    r = client.post("/api/v1/chat", json={"text": "olá"})
    assert r.status_code == 200 and r.json()["session_id"].startswith("web-")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"session_id": "s", "text": "x" * 2001}, "text"),
        ({"session_id": "bad id with spaces", "text": "olá"}, "session_id"),
        ({"session_id": "s" * 129, "text": "olá"}, "session_id"),
        ({"session_id": "s", "text": 5}, "text"),
        ({"session_id": "s", "text": "olá", "channel": "Web Chat!"}, "channel"),
        ({"session_id": "s", "text": "olá", "unknown": True}, "unknown"),
    ],
)
def test_bad_chat_input_is_422(client, body, field):
    r = client.post("/api/v1/chat", json=body)
    assert r.status_code == 422 and r.json()["error"].startswith(field)


def test_leads_need_the_staff_key(client):
    r = client.get("/api/v1/leads")
    assert r.status_code == 401 and "staff key required" in r.json()["error"]
    assert client.get("/api/v1/leads", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/api/v1/leads", headers={"X-Staff-Key": STAFF_KEY}).status_code == 200


def test_leads_disabled_without_a_configured_key(shipped_catalog):
    from fastapi.testclient import TestClient

    from assistant.app import create_app
    from assistant.settings import Settings

    app = create_app(Settings(data_dir=shipped_catalog.data_dir, admin_token=None), shipped_catalog)
    with TestClient(app) as tc:
        r = tc.get("/api/v1/leads", headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "disabled" in r.json()["error"]
