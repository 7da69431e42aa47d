"""Opportunity posts end to end: one real server (shipped index, its own state store) with the
Telegram connector mounted against a stand-in Bot API on loopback (Telegram's wire format).
Every post and firm here is fictional."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest

from conftest import STAFF_KEY, LiveServer
from test_connectors_telegram import SECRET, TOKEN, bot_api, message_update  # noqa: F401 (bot_api: the fake Bot API fixture)
try:  # the WeChat sample (shared/data/external) signs the messages; without it the WeChat test skips
    from test_connectors_wechat import CS_SECRET, VECTOR, FakeCustomerService, ask
except FileNotFoundError:
    VECTOR = None

STAFF = {"Authorization": f"Bearer {STAFF_KEY}"}
SOON = (dt.date.today() + dt.timedelta(days=90)).isoformat()
CORK = {"type": "supplier", "title": "寻找葡萄牙软木原料供应商", "lang": "zh",
        "description": "我们是宁波的一家家居用品公司（虚构），寻找葡萄牙的软木颗粒和软木板供应商，用于生产软木地垫。",
        "sectors": ["软木", "家居用品"], "side_sought": "PT", "closes": SOON}
MOULD = {"type": "tech_offer", "title": "Arrefecimento conformal para moldes de injeção", "lang": "pt",
         "description": "Empresa fictícia oferece tecnologia de arrefecimento conformal por fabrico aditivo a fabricantes "
                        "chineses de moldes e peças plásticas, que a adotem ou licenciem.",
         "sectors": ["moldes", "fabrico aditivo"], "side_sought": "CN", "closes": SOON}


@pytest.fixture(scope="module")
def cs_api():
    if VECTOR is None:
        yield None
        return
    fake = FakeCustomerService()
    with LiveServer(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture(scope="module")
def service(shipped_catalog, bot_api, cs_api, tmp_path_factory):
    from assistant.app import create_app
    from assistant.settings import Settings

    wechat = {} if cs_api is None else dict(wechat_token=VECTOR["token"], wechat_appid=VECTOR["app_id"],
                                            wechat_secret=CS_SECRET, wechat_api_base=cs_api.url, wechat_reply_timeout=4.8)
    settings = Settings(data_dir=tmp_path_factory.mktemp("posts-state"), admin_token=STAFF_KEY, telegram_token=TOKEN,
                        telegram_secret=SECRET, telegram_api_base=f"{bot_api.url}/bot", **wechat)
    app = create_app(settings, shipped_catalog)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        client.app = app
        yield client


@pytest.fixture(scope="module")
def cork_post(service):
    r = service.post("/api/v1/staff/posts", json=CORK, headers=STAFF)
    assert r.status_code == 201, r.text
    return r.json()


def chat(client, text: str, session_id: str | None = None) -> dict:
    r = client.post("/api/v1/chat", json={"text": text, **({"session_id": session_id} if session_id else {})})
    assert r.status_code == 200, r.text
    return r.json()


def telegram(client, bot_api, chat_id: int, text: str) -> str:
    since = len(bot_api.calls)
    r = client.post("/telegram/webhook", json=message_update(int(time.time() * 1000) % 10**9, chat_id, text, "pt-br"),
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert r.status_code == 200, r.text
    return "\n".join(m["plain"] for m in bot_api.sent(chat_id=chat_id, since=since))


# -- staff publish; matched both ways ---------------------------------------------------------------
def test_a_staff_post_is_published_and_matched_both_ways(service, cork_post):
    assert cork_post["status"] == "published" and cork_post["type_label"] == "寻找供应商"
    matches = service.get(f"/api/v1/posts/{cork_post['id']}/matches", params={"lang": "pt"}).json()
    ids = [r["id"] for r in matches["results"]]
    assert ids and all(r["country"] == "PT" for r in matches["results"])
    assert {"pt-corticeira-amorim", "pt-apcor"} & set(ids[:3])
    back = service.get("/api/v1/organisations/pt-corticeira-amorim/posts", params={"lang": "en"}).json()
    assert cork_post["id"] in [r["id"] for r in back["results"]]
    shown = next(r for r in back["results"] if r["id"] == cork_post["id"])
    assert shown["kind"] == "post" and shown["type_label"] == "Supplier search" and shown["closes"] == SOON


def test_search_filters_type_selects_organisations_and_posts(service, cork_post):
    query = "fornecedores de cortiça e granulado"
    default = service.post("/api/v1/search", json={"query": query}).json()
    assert default["results"] and all(r.get("type") is None for r in default["results"])
    only = service.post("/api/v1/search", json={"query": query, "filters": {"type": ["supplier"]}}).json()
    assert [r["id"] for r in only["results"]] == [cork_post["id"]]
    post = only["results"][0]
    assert post["kind"] == "post" and post["type_label"] == "Procura de fornecedor"
    assert post["closes_label"] == f"prazo: {SOON}"
    both = service.post("/api/v1/search", json={"query": query, "filters": {"type": ["organisation", "post"]}}).json()
    kinds = {r["kind"] for r in both["results"]}
    assert "post" in kinds and kinds - {"post"}
    other = service.post("/api/v1/search", json={"query": query, "filters": {"type": "joint_venture"}}).json()
    assert other["results"] == [] and other["total"] == 0


@pytest.mark.parametrize("body, status", [
    ({"query": "cortiça", "filters": {"type": ["franchise"]}}, 422),
    ({"query": "cortiça", "filters": {"type": 7}}, 422),
])
def test_bad_filters_type_is_refused(service, body, status):
    r = service.post("/api/v1/search", json=body)
    assert r.status_code == status and "type" in r.json()["error"]


def test_a_post_past_its_date_is_never_shown(service):
    desk = service.app.state.posts
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    desk.store.add_post({**MOULD, "id": "post-expired-mould", "closes": yesterday}, "published", "staff", "test")
    found = service.post("/api/v1/search", json={"query": "moldes arrefecimento conformal", "filters": {"type": "post"}}).json()
    assert "post-expired-mould" not in [r["id"] for r in found["results"]]
    assert service.get("/api/v1/posts/post-expired-mould").status_code == 404
    back = service.get("/api/v1/organisations/cn-ningbo-mould-capital/posts").json()
    assert "post-expired-mould" not in [r["id"] for r in back["results"]]
    r = service.post("/api/v1/staff/posts", json={**MOULD, "closes": yesterday}, headers=STAFF)
    assert r.status_code == 422 and "past" in r.json()["error"]


@pytest.mark.parametrize("change, field", [
    ({"type": "franchise"}, "type"), ({"side_sought": "ES"}, "side_sought"), ({"closes": "31-02-2027"}, "closes"),
    ({"title": ""}, "title"), ({"description": "x" * 5000}, "description"), ({"sectors": ["a"] * 11}, "sectors"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_posts_are_refused_and_nothing_is_stored(service, change, field):
    before = service.get("/api/v1/staff/posts", headers=STAFF).json()["total"]
    r = service.post("/api/v1/staff/posts", json={**MOULD, **change}, headers=STAFF)
    assert r.status_code == 422 and field in r.text
    assert service.get("/api/v1/staff/posts", headers=STAFF).json()["total"] == before


def test_staff_routes_need_the_staff_key(service):
    assert service.post("/api/v1/staff/posts", json=MOULD).status_code == 401
    assert service.post("/api/v1/staff/posts/post-x/approve").status_code == 401
    assert service.get("/api/v1/posts/post-none").status_code == 404
    assert service.get("/api/v1/organisations/no-such-org/posts").status_code == 404
    assert service.get("/api/v1/organisations/pt-apcor/posts", params={"type": "franchise"}).status_code == 422


# -- members: the web form and approval ----------------------------------------------------------------
def test_a_member_post_waits_for_approval_and_the_author_is_told(service):
    session = chat(service, "Olá")["session_id"]
    r = service.post("/api/v1/posts", json={**MOULD, "session_id": session})
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["status"] == "pending" and "revista pela equipa" in mine["message"]
    query = {"query": "arrefecimento conformal de moldes", "filters": {"type": ["tech_offer"]}}
    assert mine["id"] not in [x["id"] for x in service.post("/api/v1/search", json=query).json()["results"]]
    pending = service.get("/api/v1/staff/posts", params={"status": "pending"}, headers=STAFF).json()["posts"]
    assert mine["id"] in [p["id"] for p in pending]
    done = service.post(f"/api/v1/staff/posts/{mine['id']}/approve", headers=STAFF)
    assert done.status_code == 200 and done.json()["status"] == "published" and done.json()["author_told"] == "waiting"
    assert service.post(f"/api/v1/staff/posts/{mine['id']}/approve", headers=STAFF).status_code == 409  # not pending
    assert mine["id"] in [x["id"] for x in service.post("/api/v1/search", json=query).json()["results"]]
    told = service.get("/api/v1/chat/messages", params={"session_id": session}).json()
    assert any("foi aprovada" in m["text"] for m in told["messages"])
    from assistant._posts import posts_of

    conversation = next(p["address"] for p in service.app.state.posts.store.posts() if p["id"] == mine["id"])
    assert [(p["id"], p["status"]) for p in posts_of(service.app.state.posts.store, conversation)] == [(mine["id"], "published")]


def test_a_rejected_member_post_is_never_shown_and_the_reason_is_told(service):
    session = chat(service, "Hello")["session_id"]
    mine = service.post("/api/v1/posts", json={**CORK, "lang": None, "title": "Joint venture in batteries (fictional)",
                                               "type": "joint_venture", "session_id": session}).json()
    assert service.post(f"/api/v1/staff/posts/{mine['id']}/reject", json={}, headers=STAFF).status_code == 422
    r = service.post(f"/api/v1/staff/posts/{mine['id']}/reject", json={"reason": "falta o nome da empresa"}, headers=STAFF)
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert service.get(f"/api/v1/posts/{mine['id']}").status_code == 404
    told = service.get("/api/v1/chat/messages", params={"session_id": session}).json()
    assert any("未能发布" in m["text"] and "falta o nome da empresa" in m["text"] for m in told["messages"])
    assert service.post("/api/v1/staff/posts/post-none/reject", json={"reason": "x"}, headers=STAFF).status_code == 404
    assert service.post("/api/v1/posts", json={**CORK, "session_id": "not-issued"}).status_code == 404


def test_web_chat_shows_open_posts_after_the_organisations(service, cork_post):
    reply = chat(service, "procuro fornecedores de cortiça em Portugal")
    assert reply["results"] and cork_post["id"] in [p["id"] for p in reply["posts"]]
    assert "[Procura de fornecedor]" in reply["reply"] and f"prazo: {SOON}" in reply["reply"]


def test_an_alert_hears_of_a_new_post_like_of_an_ingested_record(service):
    session = chat(service, "Hello")["session_id"]
    r = service.post("/api/v1/alerts", json={"query": "conformal cooling for injection moulds", "session_id": session})
    assert r.status_code == 201, r.text
    posted = service.post("/api/v1/staff/posts", headers=STAFF, json={
        **MOULD, "title": "Conformal cooling inserts for mould makers (fictional)",
        "description": "A fictional Portuguese firm offers 3D-printed conformal cooling inserts to Chinese mould makers."}).json()
    notices = service.app.state.posts.store.notices(r.json()["ids"][0])
    assert posted["id"] in [n["record_id"] for n in notices]


# -- Telegram: the dialogue by meaning, approval told on Telegram ----------------------------------
def test_telegram_member_publishes_through_a_short_dialogue(service, bot_api):
    chat_id = 770001
    text = telegram(service, bot_api, chat_id, "Queremos publicar uma oportunidade de negócio")
    assert "Que tipo?" in text and "Procura de fornecedor" in text
    assert "Não percebi" in telegram(service, bot_api, chat_id, "talvez")
    for answer in ("4", "Joint venture em calçado técnico (fictícia)",
                   "Fabricante fictício de calçado técnico procura parceiro chinês para uma joint venture de produção.",
                   "calçado, calçado técnico", "China"):
        text = telegram(service, bot_api, chat_id, answer)
    assert "AAAA-MM-DD" in text
    assert "data futura" in telegram(service, bot_api, chat_id, "2001-01-01")
    text = telegram(service, bot_api, chat_id, SOON)
    assert "revista pela equipa" in text
    pending = service.get("/api/v1/staff/posts", params={"status": "pending"}, headers=STAFF).json()["posts"]
    mine = next(p for p in pending if p["address"] == f"tg-{chat_id}")
    assert mine["type"] == "joint_venture" and mine["side_sought"] == "CN" and mine["sectors"] == ["calçado", "calçado técnico"]
    since = len(bot_api.calls)
    r = service.post(f"/api/v1/staff/posts/{mine['id']}/approve", headers=STAFF)
    assert r.status_code == 200 and r.json()["author_told"] == "sent"
    assert any("foi aprovada" in m["plain"] for m in bot_api.sent(chat_id=chat_id, since=since))
    matches = service.get(f"/api/v1/posts/{mine['id']}/matches").json()
    assert matches["results"] and all(x["country"] == "CN" for x in matches["results"])


def test_telegram_search_shows_posts_with_type_and_deadline_and_cancel_works(service, bot_api, cork_post):
    chat_id = 770002
    text = telegram(service, bot_api, chat_id, "寻找葡萄牙的软木供应商")
    assert "符合条件的合作机会" in text and "[寻找供应商]" in text and f"截止日期：{SOON}" in text
    assert "选择类型" in telegram(service, bot_api, chat_id, "我想发布一个合作机会")
    assert "已取消" in telegram(service, bot_api, chat_id, "取消")


# -- WeChat: posts in the reply text, the review told through customer-service messages -------------
def test_wechat_search_shows_posts_and_a_wechat_author_is_told_of_the_review(service, cs_api, cork_post):
    if cs_api is None:
        pytest.skip("no WeChat sample vector (shared/data/external/wechat-official-sample)")
    text = ask(service, cs_api, "o-posts-wx-1", "寻找葡萄牙的软木供应商")
    assert "[寻找供应商]" in text and f"截止日期：{SOON}" in text
    desk = service.app.state.posts
    row = desk.store.add_post({**MOULD, "id": "post-wx-author", "lang": "zh", "title": "寻找模具技术（虚构）"}, "pending",
                              "wechat", "wx-o-posts-wx-1")
    r = service.post(f"/api/v1/staff/posts/{row['id']}/reject", json={"reason": "请补充公司名称"}, headers=STAFF)
    assert r.status_code == 200 and r.json()["author_told"] == "sent"
    assert any("未能发布" in m and "请补充公司名称" in m for m in cs_api.to("o-posts-wx-1"))
