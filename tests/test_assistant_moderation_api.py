"""The one moderation queue (assistant/_moderation_api.py) on a real server with real embeddings: members'
profiles and posts wait together, oldest first; staff approve, correct then approve, or reject with a
reason that reaches the member on their channel (Telegram and WeChat through fakes of their servers,
in their wire format; the web chat's messages) inside a message in the member's language, the reason
marked as the original when staff wrote it in another. Every decision is in the audit log; bad
requests change nothing; the old per-kind routes keep working. Firms and posts are fictional."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest

from conftest import STAFF_KEY, LiveServer, private_copy
from test_connectors_telegram import SECRET, TOKEN, bot_api  # noqa: F401 (bot_api: the fake Bot API fixture)
from test_connectors_wechat import CS_SECRET, VECTOR, FakeCustomerService

AUTH = {"Authorization": f"Bearer {STAFF_KEY}"}
SOON = (dt.date.today() + dt.timedelta(days=90)).isoformat()
TG_CHAT, WX_OPENID = 8801, "oModerationTest_wx_1"


@pytest.fixture(scope="module")
def service(shipped_data_dir, encoder, bot_api, tmp_path_factory):  # noqa: F811
    """Its own copy of the index: approving a profile writes a new generation."""
    from assistant.app import create_app
    from assistant.settings import Settings

    mp = pytest.MonkeyPatch()
    mp.setenv("CPC_ALERTS_EVERY_SECONDS", "0")
    fake_wx = FakeCustomerService()
    catalog = private_copy(shipped_data_dir, tmp_path_factory.mktemp("moderation") / "data", encoder)
    with LiveServer(fake_wx.app) as wx_server:
        fake_wx.url = wx_server.url
        settings = Settings(data_dir=catalog.data_dir, admin_token=STAFF_KEY, telegram_token=TOKEN, telegram_secret=SECRET,
                            telegram_api_base=f"{bot_api.url}/bot", wechat_token=VECTOR["token"], wechat_appid=VECTOR["app_id"],
                            wechat_secret=CS_SECRET, wechat_api_base=fake_wx.url, wechat_reply_timeout=4.8)
        app = create_app(settings, catalog)
        with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=300) as client:
            client.app, client.tg, client.wx = app, bot_api, fake_wx
            yield client
    catalog.close()
    mp.undo()


@pytest.fixture(scope="module")
def waiting(service):
    """Three items sent in this order: a Chinese firm's profile on Telegram, a Portuguese member's post
    on the web chat, an English-speaking firm's profile on WeChat."""
    from assistant import _profiles as profiles

    store = service.app.state.assistant.store
    zh = profiles.validate({"name": "宁波示例模具（审核测试）", "kind": "企业", "country": "中国", "city": "宁波",
                            "sectors": "注塑模具", "offers": "为汽车零部件设计和制造注塑模具", "contact": "+86 574 8765 0001",
                            "consent": True}, "zh")
    first = store.add_profile("telegram", f"tg-{TG_CHAT}", "zh", zh, time.time())
    time.sleep(0.01)
    sid = service.post("/api/v1/chat", json={"text": "Olá"}).json()["session_id"]
    r = service.post("/api/v1/posts", json={
        "session_id": sid, "type": "distribution", "lang": "pt", "title": "Distribuidor de azeite na China (teste)",
        "description": "Produtor fictício de azeite do Alentejo procura distribuidor ou agente na China.",
        "sectors": ["azeite"], "side_sought": "CN", "closes": SOON})
    assert r.status_code == 201, r.text
    time.sleep(0.01)
    en = profiles.validate({"name": "Cork Example Panels (review test)", "kind": "company", "country": "Portugal",
                            "sectors": "cork, insulation", "offers": "Insulation panels made of natural cork for builders",
                            "contact": "+351 256 000 333", "consent": True}, "en")
    third = store.add_profile("wechat", f"wx-{WX_OPENID}", "en", en, time.time())
    return {"profile_zh": str(first), "post": r.json()["id"], "profile_en": str(third), "session": sid}


def items(c) -> list[dict]:
    r = c.get("/api/v1/staff/moderation", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def audited(c, action: str, target: str) -> list[dict]:
    return [e for e in c.app.state.assistant.store.audit_entries(action=action) if e["target"] == target]


def test_one_queue_holds_profiles_and_posts_oldest_first_with_counts(service, waiting):
    c = service
    r = c.get("/api/v1/staff/moderation", headers=AUTH).json()
    assert [(i["kind"], i["id"]) for i in r["items"]] == [
        ("profile", waiting["profile_zh"]), ("post", waiting["post"]), ("profile", waiting["profile_en"])]
    assert r["total"] == 3 and r["counts"] == {"profile": 2, "post": 1}
    assert c.get("/api/v1/staff/moderation/count", headers=AUTH).json() == {"total": 3, "counts": {"profile": 2, "post": 1}}
    post = r["items"][1]
    assert post["fields"]["sectors"] == ["azeite"] and post["type_label"]["zh"] == "分销或代理" and post["channel"] == "web"
    assert r["items"][0]["record"]["id"] == f"member-{waiting['profile_zh']}"  # what approving would publish
    # the per-kind routes still answer, with the same items
    assert [p["id"] for p in c.get("/api/v1/staff/profiles", headers=AUTH).json()["profiles"]] == [
        int(waiting["profile_zh"]), int(waiting["profile_en"])]
    assert [p["id"] for p in c.get("/api/v1/staff/posts?status=pending", headers=AUTH).json()["posts"]] == [waiting["post"]]


def test_bad_decisions_are_refused_and_change_nothing(service, waiting):
    c = service
    store = c.app.state.assistant.store
    assert c.get("/api/v1/staff/moderation").status_code == 401
    assert c.post(f"/api/v1/staff/moderation/post/{waiting['post']}/approve", json={}).status_code == 401
    assert c.post("/api/v1/staff/moderation/lead/1/approve", json={}, headers=AUTH).status_code == 422
    assert c.post("/api/v1/staff/moderation/profile/post-x/approve", json={}, headers=AUTH).status_code == 404
    assert c.post("/api/v1/staff/moderation/post/post-nothing/approve", json={}, headers=AUTH).status_code == 404
    assert c.post(f"/api/v1/staff/moderation/post/{waiting['post']}/reject", json={"reason": ""}, headers=AUTH).status_code == 422
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    for bad in ({"closes": past}, {"side_sought": "ES"}, {"title": ""}, {"author": "someone-else"}):
        r = c.post(f"/api/v1/staff/moderation/post/{waiting['post']}/approve", json={"data": bad}, headers=AUTH)
        assert r.status_code == 422, (bad, r.text)
    r = c.post(f"/api/v1/staff/moderation/profile/{waiting['profile_en']}/approve", json={"data": {"country": "Atlantis"}},
               headers=AUTH)
    assert r.status_code == 422 and "country" in r.json()["detail"]
    assert c.post(f"/api/v1/staff/moderation/profile/{waiting['profile_en']}/approve", json={"data": {}, "extra": 1},
                  headers=AUTH).status_code == 422
    assert store.post(waiting["post"])["status"] == "pending" and store.post(waiting["post"])["title"].endswith("(teste)")
    assert store.profile(int(waiting["profile_en"]))["status"] == "pending"
    assert f"member-{waiting['profile_en']}" not in c.app.state.catalog.engine.records
    assert c.get("/api/v1/staff/moderation/count", headers=AUTH).json()["total"] == 3


def test_an_english_reason_reaches_a_chinese_member_on_telegram_marked_as_the_original(service, waiting):
    c = service
    since = len(c.tg.calls)
    r = c.post(f"/api/v1/staff/moderation/profile/{waiting['profile_zh']}/reject",
               json={"reason": "The description is too short: please say which car parts the moulds are for."}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "profile" and r.json()["status"] == "rejected" and r.json()["told"] is True
    (msg,) = c.tg.sent(chat_id=TG_CHAT, since=since)
    assert "未通过审核" in msg["plain"] and "The description is too short" in msg["plain"] and "（原文，英语）" in msg["plain"]
    (entry,) = audited(c, "profile.reject", waiting["profile_zh"])
    assert entry["detail"]["reason"].startswith("The description is too short") and entry["actor"]
    # decided once: a second decision is a conflict, and the item left the queue
    assert c.post(f"/api/v1/staff/moderation/profile/{waiting['profile_zh']}/approve", json={}, headers=AUTH).status_code == 409
    assert waiting["profile_zh"] not in [i["id"] for i in items(c)]


def test_a_post_corrected_then_approved_is_published_as_corrected_and_the_author_told(service, waiting):
    c = service
    data = {"title": "Distribuidor ou agente de azeite na China (teste)", "sectors": ["azeite", "alimentar"]}
    r = c.post(f"/api/v1/staff/moderation/post/{waiting['post']}/approve", json={"data": data}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "post" and r.json()["status"] == "published" and r.json()["title"] == data["title"]
    stored = c.app.state.assistant.store.post(waiting["post"])
    assert stored["title"] == data["title"] and stored["sectors"] == ["azeite", "alimentar"] and stored["reviewer"]
    found = c.post("/api/v1/search", json={"query": "azeite distribuidor China", "filters": {"type": ["distribution"]}}).json()
    assert [h.get("title", h["name"]) for h in found["results"]][:1] == [data["title"]]
    told = c.get("/api/v1/chat/messages", params={"session_id": waiting["session"]}).json()
    assert any("foi aprovada" in m["text"] for m in told["messages"])
    (entry,) = audited(c, "post.approve", waiting["post"])
    assert entry["detail"]["corrected"] == ["sectors", "title"]


def test_a_profile_corrected_then_approved_is_searchable_and_the_member_told_on_wechat(service, waiting):
    c = service
    pushed = len(c.wx.to(WX_OPENID))
    r = c.post(f"/api/v1/staff/moderation/profile/{waiting['profile_en']}/approve",
               json={"data": {"city": "Santa Maria da Feira"}}, headers=AUTH)
    assert r.status_code == 200, r.text
    org = r.json()["organisation"]
    assert c.get(f"/api/v1/organisations/{org}").json()["city"] == "Santa Maria da Feira"
    assert any("was approved" in m for m in c.wx.to(WX_OPENID)[pushed:])
    hits = c.post("/api/v1/search", json={"query": "葡萄牙软木保温板供应商", "limit": 10}).json()["results"]
    assert org in [h["id"] for h in hits]
    (entry,) = audited(c, "profile.approve", waiting["profile_en"])
    assert entry["detail"] == {"organisation": org, "corrected": ["city"]}
    assert c.get("/api/v1/staff/moderation/count", headers=AUTH).json() == {"total": 0, "counts": {"profile": 0, "post": 0}}


def test_the_old_profiles_page_leads_to_the_queue(service):
    r = service.get("/staff/profiles", follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "/staff/moderation"
    assert "Moderation queue" in service.get("/staff/moderation").text
