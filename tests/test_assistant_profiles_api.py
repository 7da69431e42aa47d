"""Joining the directory end to end (assistant/_profiles_api.py) on a real server with real embeddings:
a firm joins on the web form, on Telegram (a fake Bot API speaking Telegram's wire format) and on
WeChat (a fake customer-service API in WeChat's JSON); staff approve it through the moderation
routes; it goes through the write process and is found at once by a question in another language.
A rejection's reason reaches the member in their language; the owner edits and deletes; an
e-mailed one-time link (real SMTP, aiosmtpd) works once; bad input changes nothing. Firms are fictional."""

from __future__ import annotations

import email
import email.policy
import re

import httpx
import pytest

from conftest import STAFF_KEY, LiveServer, private_copy
from test_connectors_telegram import SECRET, TOKEN, FakeBotAPI, message_update
from test_connectors_wechat import CS_SECRET, VECTOR, FakeCustomerService, ask

AUTH = {"Authorization": f"Bearer {STAFF_KEY}"}
MOULDS_PT = {"lang": "pt", "name": "Moldes Exemplo Lda (teste)", "kind": "empresa", "country": "Portugal", "city": "Marinha Grande",
             "sectors": "moldes de injeção, plásticos", "offers": "Projeto e fabrico de moldes de injeção para peças plásticas da indústria automóvel.",
             "seeks": "Distribuidores e parceiros de I&D na China", "website": "moldes-exemplo.example",
             "contact": "geral@moldes-exemplo.example", "consent": True}


@pytest.fixture(scope="module")
def service(shipped_data_dir, encoder, tmp_path_factory, smtp_server):
    from assistant.app import create_app
    from assistant.settings import Settings

    mp = pytest.MonkeyPatch()
    mp.setenv("CPC_ALERTS_EVERY_SECONDS", "0")
    fake_tg, fake_wx = FakeBotAPI(), FakeCustomerService()
    catalog = private_copy(shipped_data_dir, tmp_path_factory.mktemp("join-api") / "data", encoder)
    controller, handler = smtp_server
    with LiveServer(fake_tg.app) as tg_server, LiveServer(fake_wx.app) as wx_server:
        fake_tg.url, fake_wx.url = tg_server.url, wx_server.url
        settings = Settings(data_dir=catalog.data_dir, admin_token=STAFF_KEY, telegram_token=TOKEN, telegram_secret=SECRET,
                            telegram_api_base=f"{fake_tg.url}/bot", wechat_token=VECTOR["token"], wechat_appid=VECTOR["app_id"],
                            wechat_secret=CS_SECRET, wechat_api_base=fake_wx.url, wechat_reply_timeout=4.8,
                            smtp_host="127.0.0.1", smtp_port=controller.port, smtp_security="none",
                            smtp_from="team@cpc-alliance.example")
        app = create_app(settings, catalog)
        with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=300) as client:
            client.tg, client.wx, client.mails, client.app = fake_tg, fake_wx, handler.messages, app
            yield client
    catalog.close()
    mp.undo()


_update = iter(range(90_000, 10**6))


def tg(c, chat_id: int, text: str, lang: str = "pt-br") -> str:
    since = len(c.tg.calls)
    r = c.post("/telegram/webhook", json=message_update(next(_update), chat_id, text, lang),
               headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert r.status_code == 200, r.text
    return "\n".join(m["plain"] for m in c.tg.sent(chat_id=chat_id, since=since))


def found(c, query: str, org: str) -> bool:
    r = c.post("/api/v1/search", json={"query": query, "limit": 10})
    assert r.status_code == 200, r.text
    return org in [h["id"] for h in r.json()["results"]]


def queue(c) -> list[dict]:
    r = c.get("/api/v1/staff/profiles", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["profiles"]


def approve(c, pid: int, data: dict | None = None) -> dict:
    r = c.post(f"/api/v1/staff/profiles/{pid}/approve", json={"data": data}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def test_web_form_join_approve_found_in_chinese_then_owner_edits_and_deletes(service):
    c = service
    store = c.app.state.assistant.store
    chat = c.post("/api/v1/chat", json={"text": "quero registar a minha empresa"}).json()
    assert chat["form"]["step"] == "profile_form" and chat["form"]["url"] == "/join?lang=pt"
    assert c.get("/join").status_code == 200 and "join.js" in c.get("/join").text
    sid = chat["session_id"]
    # bad input: every bad field named in Portuguese, nothing stored
    before = len(store.profiles())
    r = c.post("/api/v1/profiles", json={**MOULDS_PT, "session_id": sid, "kind": "banana", "website": "não é site", "consent": False})
    assert r.status_code == 422
    assert set(r.json()["detail"]) == {"kind", "website", "consent"} and "empresa, cluster ou instituição" in r.json()["detail"]["kind"]
    assert c.post("/api/v1/profiles", json={**MOULDS_PT, "session_id": "forged.token"}).status_code == 404
    assert c.post("/api/v1/profiles", json={**MOULDS_PT, "extra": 1}).status_code == 422
    assert len(store.profiles()) == before

    r = c.post("/api/v1/profiles", json={**MOULDS_PT, "session_id": sid})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["status"] == "pending"
    assert c.get("/api/v1/profiles/mine", params={"session_id": sid}).json()["profiles"][0]["status"] == "pending"
    pending = [p for p in queue(c) if p["id"] == pid][0]
    assert pending["record"]["sector_labels"] == ["moldes de injeção", "plásticos"] and pending["record"]["source"] == "member"
    assert not found(c, "葡萄牙的注塑模具企业", f"member-{pid}")  # not before approval

    r = c.post("/api/v1/alerts", json={"query": "fabricantes de moldes de injeção em Portugal", "email": "watch@example.pt"})
    assert r.status_code == 201, r.text
    mails = len(c.mails)
    done = approve(c, pid, {"city": "Leiria"})  # staff correct a field, then approve
    org = done["organisation"]
    assert org == f"member-{pid}" and done["status"] == "approved" and done["told"]
    rec = c.get(f"/api/v1/organisations/{org}").json()
    assert rec["city"] == "Leiria" and rec.get("source") == "member" and rec.get("consent_at")
    assert found(c, "葡萄牙的注塑模具企业", org)  # a Portuguese profile, found by a Chinese question at once
    # shown to a Chinese reader: the member's own words as written, each marked as the Portuguese original
    zh = c.post("/api/v1/chat", json={"text": "葡萄牙的注塑模具企业"}).json()
    number = next(card["number"] for card in zh["results"] if card["id"] == org)
    details = c.post("/api/v1/chat", json={"session_id": zh["session_id"], "text": f"第{number}个的详细信息"}).json()["reply"]
    assert "（原文为葡萄牙语：）\nmoldes de injeção, plásticos. Projeto e fabrico" in details
    assert "可提供（原文，葡萄牙语）: Projeto e fabrico" in details and "寻求（原文，葡萄牙语）: Distribuidores" in details
    alerted = [m for m in c.mails[mails:] if m.rcpt_tos == ["watch@example.pt"]]  # the alerts ran, as after an ingest
    assert len(alerted) == 1
    assert "Moldes Exemplo Lda (teste)" in email.message_from_bytes(alerted[0].content, policy=email.policy.default).get_content()
    told = c.get("/api/v1/chat/messages", params={"session_id": sid}).json()["messages"]
    assert any("foi aprovado" in m["text"] for m in told)
    assert c.post(f"/api/v1/staff/profiles/{pid}/approve", json={}, headers=AUTH).status_code == 409  # not twice

    # the owner edits (back to moderation; the published version stays), then deletes (out of the index)
    r = c.put(f"/api/v1/profiles/{pid}", params={"session_id": sid}, json={**MOULDS_PT, "seeks": "Parceiros de I&D em Ningbo"})
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert c.put(f"/api/v1/profiles/{pid}", params={"session_id": sid}, json={**MOULDS_PT, "contact": "x"}).status_code == 422
    assert store.profile(pid)["data"]["seeks"] == "Parceiros de I&D em Ningbo"  # the bad edit changed nothing
    other = c.post("/api/v1/chat", json={"text": "olá"}).json()["session_id"]
    assert c.delete(f"/api/v1/profiles/{pid}", params={"session_id": other}).status_code == 404  # not theirs
    r = c.delete(f"/api/v1/profiles/{pid}", params={"session_id": sid})
    assert r.status_code == 200
    assert c.get(f"/api/v1/organisations/{org}").status_code == 404 and not found(c, "葡萄牙的注塑模具企业", org)
    assert store.profile(pid) is None


def test_telegram_join_by_dialogue_approved_and_found_in_portuguese_and_a_rejection_in_chinese(service):
    c = service
    chat = 7001
    assert "取消" in tg(c, chat, "我们公司想加入", "zh-hans")
    for answer in ["宁波示例精密模具有限公司（测试）", "企业", "中国", "浙江宁波", "注塑模具、汽车零部件",
                   "为汽车行业设计和制造精密注塑模具", "跳过", "跳过"]:
        tg(c, chat, answer, "zh-hans")
    bad = tg(c, chat, "不是联系方式", "zh-hans")
    assert "邮箱或电话" in bad  # asked again, in Chinese
    summary = tg(c, chat, "+86 574 8765 4321", "zh-hans")
    assert "资料摘要" in summary and "宁波示例精密模具有限公司（测试）" in summary
    assert "已提交" in tg(c, chat, "同意", "zh-hans")
    (p,) = [p for p in queue(c) if p["channel"] == "telegram" and p["name"].startswith("宁波示例")]
    before = len(c.tg.calls)
    org = approve(c, p["id"])["organisation"]
    assert any("已通过审核" in m["plain"] for m in c.tg.sent(chat_id=chat, since=before))
    assert found(c, "fabricantes chineses de moldes de injeção para automóveis", org)

    # a second profile, rejected with a reason: the member reads it in Chinese
    tg(c, chat, "我的资料", "zh-hans")
    tg(c, chat, "新资料", "zh-hans")
    for answer in ["示例塑料（测试）", "企业", "中国", "跳过", "塑料", "塑料件", "跳过", "跳过", "+8657412345678", "同意"]:
        tg(c, chat, answer, "zh-hans")
    (q,) = [q for q in queue(c) if q["name"] == "示例塑料（测试）"]
    before = len(c.tg.calls)
    r = c.post(f"/api/v1/staff/profiles/{q['id']}/reject", json={"reason": "描述太简短，请补充产品信息。"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    (msg,) = c.tg.sent(chat_id=chat, since=before)
    assert "未通过审核" in msg["plain"] and "描述太简短" in msg["plain"]
    # the owner deletes the published one from the chat: out of the index through the write process
    assert "审核中" not in tg(c, chat, "我的资料", "zh-hans")
    assert "删除" in tg(c, chat, f"删除 {p['id']}", "zh-hans")
    assert "已删除" in tg(c, chat, "同意", "zh-hans")
    assert c.get(f"/api/v1/organisations/{org}").status_code == 404


def test_wechat_join_approved_found_in_english_and_rejected_in_portuguese(service):
    c = service
    openid = "oJoinTest_wx_1"
    assert "cancelar" in ask(c, c.wx, openid, "quero inscrever a nossa empresa")
    for answer in ["Cortiça Exemplo SA (teste)", "empresa", "Portugal", "Santa Maria da Feira", "cortiça, isolamento",
                   "Rolhas e painéis de isolamento em cortiça natural", "saltar", "saltar", "+351 256 000 111"]:
        ask(c, c.wx, openid, answer)
    assert "aguarda a revisão" in ask(c, c.wx, openid, "sim")
    (p,) = [p for p in queue(c) if p["channel"] == "wechat" and p["name"] == "Cortiça Exemplo SA (teste)"]
    pushed = len(c.wx.to(openid))
    org = approve(c, p["id"])["organisation"]
    assert any("foi aprovado" in m for m in c.wx.to(openid)[pushed:])
    assert found(c, "Portuguese cork insulation suppliers", org)
    ask(c, c.wx, openid, "o meu perfil")
    ask(c, c.wx, openid, "novo perfil")
    for answer in ["Outra Exemplo (teste)", "empresa", "Portugal", "saltar", "têxtil", "tecidos", "saltar", "saltar",
                   "+351256000222", "sim"]:
        ask(c, c.wx, openid, answer)
    (q,) = [q for q in queue(c) if q["name"] == "Outra Exemplo (teste)"]
    pushed = len(c.wx.to(openid))
    assert c.post(f"/api/v1/staff/profiles/{q['id']}/reject", json={"reason": "Falta o sítio web."}, headers=AUTH).status_code == 200
    (msg,) = c.wx.to(openid)[pushed:]
    assert "não foi aprovado" in msg and "Falta o sítio web." in msg


def test_an_emailed_link_works_once_for_view_edit_and_delete(service):
    c = service
    store = c.app.state.assistant.store
    r = c.post("/api/v1/profiles", json={**MOULDS_PT, "name": "Ligação Exemplo Lda (teste)", "contact": "dono@ligacao-exemplo.example"})
    assert r.status_code == 201
    pid = r.json()["id"]
    mails = len(c.mails)
    assert c.post("/api/v1/profiles/link", json={"email": "ninguem@nada.example"}).json() == {"sent": True}
    assert len(c.mails) == mails  # same answer, no mail: nobody learns who is listed
    assert c.post("/api/v1/profiles/link", json={"email": "dono@ligacao-exemplo.example"}).status_code == 202
    (envelope,) = c.mails[mails:]
    assert envelope.rcpt_tos == ["dono@ligacao-exemplo.example"]
    body = email.message_from_bytes(envelope.content, policy=email.policy.default).get_content()
    assert "válida uma vez" in body
    token = re.search(r"/join\?token=([A-Za-z0-9_-]+)", body).group(1)
    first = c.post("/api/v1/profiles/redeem", json={"token": token})
    assert first.status_code == 200 and [p["id"] for p in first.json()["profiles"]] == [pid]
    assert c.post("/api/v1/profiles/redeem", json={"token": token}).status_code == 404  # once
    key = {"X-Profile-Key": first.json()["key"]}
    r = c.put(f"/api/v1/profiles/{pid}", headers=key, json={**MOULDS_PT, "name": "Ligação Exemplo Lda (teste)",
                                                           "contact": "dono@ligacao-exemplo.example", "city": "Porto"})
    assert r.status_code == 200 and store.profile(pid)["data"]["city"] == "Porto"
    assert c.delete(f"/api/v1/profiles/{pid}", headers={"X-Profile-Key": "x" * 32}).status_code == 404
    assert c.delete(f"/api/v1/profiles/{pid}", headers=key).status_code == 200 and store.profile(pid) is None


def test_bad_staff_requests_are_refused_and_change_nothing(service):
    c = service
    store = c.app.state.assistant.store
    pid = c.post("/api/v1/profiles", json={**MOULDS_PT, "name": "Recusa Exemplo (teste)"}).json()["id"]
    assert c.get("/api/v1/staff/profiles").status_code == 401
    assert c.post(f"/api/v1/staff/profiles/{pid}/approve", json={}).status_code == 401
    assert c.post("/api/v1/staff/profiles/999999/approve", json={}, headers=AUTH).status_code == 404
    assert c.post(f"/api/v1/staff/profiles/{pid}/reject", json={"reason": ""}, headers=AUTH).status_code == 422
    r = c.post(f"/api/v1/staff/profiles/{pid}/approve", json={"data": {"country": "Atlântida"}}, headers=AUTH)
    assert r.status_code == 422 and "país" in r.json()["detail"]["country"]
    assert store.profile(pid)["status"] == "pending" and f"member-{pid}" not in c.app.state.catalog.engine.records
    assert c.post("/api/v1/profiles/redeem", json={"token": "A" * 32}).status_code == 404
    assert c.post("/api/v1/profiles/link", json={"email": "not-an-email"}).status_code == 422
