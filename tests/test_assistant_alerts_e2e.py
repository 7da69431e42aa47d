"""Alerts end to end through real `cpc serve` processes (issue #22, item 3's "Done when").

Two workers sharing one data folder and state store; Telegram's Bot API and WeChat's API faked at
their wire format on loopback; e-mail through a real SMTP server (aiosmtpd). Users subscribe by
button and by phrase in pt, zh and en on Telegram, WeChat and the web chat, and by e-mail through the
API; records are ingested through POST /api/v1/admin/ingest. Each subscription gets exactly one
notice for a matching record, none for a non-matching one, none after "stop alerts"; both workers
run delivery (every second, and when staff ask) and still each notice goes out once; the server
killed between an ingest and the delivery of its notices loses none after a restart.

The tests of this module run in order and share the servers (a module fixture).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import shutil
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import STAFF_KEY, LiveServer
from test_assistant_alerts_api import MOULDS, WINE
from test_assistant_cli import served_by
from test_connectors_telegram import SECRET, TOKEN, FakeBotAPI, callback_update, message_update
from test_connectors_wechat import CS_SECRET, VECTOR, FakeCustomerService, ask

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))  # bench/_server.py starts `cpc serve`

AUTH = {"Authorization": f"Bearer {STAFF_KEY}"}
TEMPLATE = "alert-template-Xy9"
MOULDS_2 = {**MOULDS, "id": "cn-test-example-moulds-2", "name": "Example Tooling and Moulds Ltd.", "city": "Taizhou",
            "description": "A test company in Zhejiang that designs and builds plastic injection moulds for household appliances."}
MOULDS_3 = {**MOULDS, "id": "cn-test-example-moulds-3", "name": "Example Mould Works", "region": "Guangdong", "city": "Dongguan",
            "description": "A test factory that makes precision injection moulds and die-cast tooling for electronics housings."}


class BotAPI(FakeBotAPI):
    """The Telegram fake, able to hold a chat's messages unanswered (a send under way when the
    server dies): a held message is never recorded as sent, as Telegram never accepted it."""

    def __init__(self):
        super().__init__()
        self.held: set[int] = set()
        self.holding: list[int] = []
        self.release = False

    async def endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["method"] == "sendMessage":
            if request.headers.get("content-type", "").startswith("application/json"):
                params = await request.json()
            else:  # python-telegram-bot posts form fields
                params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            chat = int(str(params.get("chat_id") or 0))
            if chat in self.held:
                self.holding.append(chat)
                while not self.release:
                    await asyncio.sleep(0.05)
                return JSONResponse({"ok": False, "error_code": 502, "description": "Bad Gateway"}, 502)
        return await super().endpoint(request)


class WeChatAPI(FakeCustomerService):
    """WeChat's token, customer-service and subscription-message (message/subscribe/bizsend) endpoints."""

    def __init__(self):
        super().__init__()
        self.subscription_messages: list[dict] = []
        self.app.router.routes.append(Route("/cgi-bin/message/subscribe/bizsend", self.bizsend, methods=["POST"]))

    async def bizsend(self, request: Request) -> JSONResponse:
        from test_connectors_wechat import ACCESS_TOKEN

        if request.query_params.get("access_token") != ACCESS_TOKEN:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        body = json.loads(await request.body())
        data = body.get("data") or {}
        if not body.get("touser") or not body.get("template_id"):
            return JSONResponse({"errcode": 47003, "errmsg": "argument invalid!"})
        if body["template_id"] != TEMPLATE:
            return JSONResponse({"errcode": 40037, "errmsg": "invalid template_id"})
        if any(len(v.get("value", "")) > 20 for k, v in data.items() if k.startswith("thing")):
            return JSONResponse({"errcode": 47003, "errmsg": "argument invalid! data.thing.value exceeds limit 20"})
        self.subscription_messages.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})


def kill_group(proc) -> None:
    """SIGKILL the server and everything it started (workers, the write process): no shutdown code runs."""
    from _server import process_tree

    for pid in reversed(process_tree(proc.pid)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def world(shipped_data_dir, tmp_path_factory, smtp_server):
    """Fakes on loopback, an SMTP server, a copy of the shipped data folder and `cpc serve --workers 2` on it."""
    from _server import start_server

    controller, mailbox = smtp_server
    tg, wx = BotAPI(), WeChatAPI()
    root = tmp_path_factory.mktemp("alerts-e2e")
    data_dir = root / "var"
    # the index, not the state: tests sharing this process's shipped folder keep their own state in it
    # (a web alert another test made was counted here when the order of files put it first)
    shutil.copytree(shipped_data_dir, data_dir, ignore=shutil.ignore_patterns("state.sqlite*"))
    with LiveServer(tg.app) as tg_server, LiveServer(wx.app) as wx_server:
        tg.url, wx.url = tg_server.url, wx_server.url
        env = {"CPC_ADMIN_TOKEN": STAFF_KEY, "CPC_ALERTS_EVERY_SECONDS": "1", "CPC_ALERTS_LEASE_SECONDS": "3",
               "CPC_TELEGRAM_TOKEN": TOKEN, "CPC_TELEGRAM_SECRET": SECRET, "CPC_TELEGRAM_API_BASE": f"{tg.url}/bot",
               "CPC_WECHAT_TOKEN": VECTOR["token"], "CPC_WECHAT_APPID": VECTOR["app_id"], "CPC_WECHAT_SECRET": CS_SECRET,
               "CPC_WECHAT_API_BASE": wx.url, "CPC_WECHAT_ALERT_TEMPLATE": TEMPLATE,
               "CPC_SMTP_HOST": "127.0.0.1", "CPC_SMTP_PORT": str(controller.port), "CPC_SMTP_SECURITY": "none",
               "CPC_SMTP_FROM": "team@cpc-alliance.example", "CPC_THREADS": "1"}
        log_path = root / "serve.log"
        proc, url = start_server(data_dir, log_path, env=env, timeout=600, workers=2)
        w = World(proc, url, tg, wx, mailbox.messages, data_dir, log_path, env)
        try:
            yield w
        finally:
            tg.release = True
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
                try:
                    w.proc.wait(timeout=60)
                except Exception:
                    kill_group(w.proc)


class World:
    def __init__(self, proc, url, tg, wx, mails, data_dir: Path, log_path: Path, env: dict):
        self.proc, self.url, self.tg, self.wx, self.mails = proc, url, tg, wx, mails
        self.data_dir, self.log_path, self.env = data_dir, log_path, env
        self.web = httpx.Client(base_url=url, timeout=300)  # one browser: its cookie binds the web sessions
        self.ids: dict[str, int] = {}

    # -- what the users do ---------------------------------------------------------------------
    def telegram(self, chat: int, text: str, lang: str = "pt-br") -> list[dict]:
        since = len(self.tg.calls)
        r = httpx.post(self.url + "/telegram/webhook", json=message_update(next(_updates), chat, text, lang),
                       headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}, timeout=300)
        assert r.status_code == 200, r.text
        return self.tg.sent(chat_id=chat, since=since)

    def press(self, chat: int, data: str, lang: str = "pt-br") -> list[dict]:
        since = len(self.tg.calls)
        r = httpx.post(self.url + "/telegram/webhook", json=callback_update(next(_updates), chat, data, lang),
                       headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}, timeout=300)
        assert r.status_code == 200, r.text
        return self.tg.sent(chat_id=chat, since=since)

    def wechat(self, openid: str, text: str) -> str:
        with httpx.Client(base_url=self.url, timeout=300) as client:
            return ask(client, self.wx, openid, text)

    def chat(self, text: str, session_id: str | None = None) -> dict:
        r = self.web.post("/api/v1/chat", json={"text": text, **({"session_id": session_id} if session_id else {})})
        assert r.status_code == 200, r.text
        return r.json()

    def ingest(self, *records) -> None:
        body = "\n".join(json.dumps(r) for r in records)
        r = httpx.post(self.url + "/api/v1/admin/ingest", content=body, timeout=600,
                       headers={**AUTH, "content-type": "application/x-ndjson"})
        assert r.status_code == 200, r.text

    def deliver_from_both(self, times: int = 8) -> list[dict]:
        """Staff ask for delivery on fresh connections at once: the kernel spreads them over both workers."""
        out: list[dict] = []

        def one():
            r = httpx.post(self.url + "/api/v1/admin/alerts/deliver", headers=AUTH, timeout=300)
            assert r.status_code == 200, r.text
            out.append(r.json())

        threads = [threading.Thread(target=one) for _ in range(times)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    # -- what arrived --------------------------------------------------------------------------
    def to_telegram(self, chat: int, name: str) -> list[str]:
        return [m["plain"] for m in self.tg.sent(chat_id=chat) if name in m["plain"]]

    def to_wechat(self, openid: str, name: str) -> list[str]:
        return [t for t in self.wx.to(openid) if name in t]

    def templates_to(self, openid: str) -> list[dict]:
        return [m for m in self.wx.subscription_messages if m["touser"] == openid]

    def mails_with(self, name: str) -> list:
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.mails
                if name in email.message_from_bytes(e.content, policy=email.policy.default).get_content()]

    def web_notices(self, session_id: str, name: str) -> list[dict]:
        r = self.web.get("/api/v1/chat/messages", params={"session_id": session_id})
        assert r.status_code == 200, r.text
        return [m for m in r.json()["messages"] if m["author"] == "alerts" and name in m["text"]]

    def sql(self, query: str, args: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.data_dir / "state.sqlite", timeout=30) as db:
            return db.execute(query, args).fetchall()


_updates = iter(range(70_000, 10**7))


def wait_for(check, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:
        pass


def alert_button(messages: list[dict]) -> str:
    rows = messages[-1]["reply_markup"]["inline_keyboard"]
    (data,) = [b["callback_data"] for row in rows for b in row if b["callback_data"].startswith("a:")]
    return data


def test_subscribing_by_button_and_by_phrase_on_every_channel(world):
    w = world
    # Telegram, pt: the button under the list
    results = w.telegram(601, "fabricantes de moldes na China")
    (ack,) = w.press(601, alert_button(results))
    assert ack["plain"].startswith("Combinado") and "«fabricantes de moldes na China»" in ack["plain"]
    # Telegram, en: a phrase
    w.telegram(602, "mould makers in China", "en")
    (ack,) = w.telegram(602, "let me know when new ones come in", "en")
    assert ack["plain"].startswith("Done: I will tell you") and "mould makers in China" in ack["plain"]
    # Telegram, zh: a phrase, then "stop alerts" in Chinese
    w.telegram(603, "中国的模具制造商", "zh-hans")
    (ack,) = w.telegram(603, "有新的合作伙伴加入请提醒我", "zh-hans")
    assert ack["plain"].startswith("好的")
    (stopped,) = w.telegram(603, "停止提醒", "zh-hans")
    assert "已取消提醒（1 条）" in stopped["plain"]
    # Telegram, en: a phrase, then "stop alerts"
    w.telegram(605, "mould makers in China", "en")
    assert w.telegram(605, "notify me about new ones", "en")[0]["plain"].startswith("Done: I will tell you")
    (stopped,) = w.telegram(605, "stop alerts", "en")
    assert "Alerts cancelled (1)" in stopped["plain"]
    # WeChat, zh: the button's words typed (a text chat has no buttons); WeChat, pt: a phrase
    w.wechat("o-alerts-zh", "中国的模具制造商")
    assert w.wechat("o-alerts-zh", "有新的通知我").startswith("好的")
    w.wechat("o-alerts-pt", "fabricantes de moldes na China")
    assert w.wechat("o-alerts-pt", "avisem-me quando surgirem novas empresas").startswith("Combinado")
    # the web chat, en: the suggestion chip under the list; another session subscribes and stops, in pt
    first = w.chat("mould makers in China")
    assert "Tell me when new ones fit" in first["suggestions"]
    sid = first["session_id"]
    ack = w.chat("Tell me when new ones fit", sid)
    assert ack["reply"].startswith("Done: I will tell you")
    w.ids["web"] = sid
    other = w.chat("fabricantes de moldes na China")["session_id"]
    assert w.chat("avisa-me quando houver novos", other)["reply"].startswith("Combinado")
    assert "Alertas cancelados (1)" in w.chat("parar alertas", other)["reply"]
    w.ids["web-stopped"] = other
    # e-mail, from a search, through the API
    r = w.web.post("/api/v1/alerts", json={"query": "mould makers in China", "email": "ana@example.pt"})
    assert r.status_code == 201, r.text
    w.ids["email"] = r.json()["ids"][0]
    active = w.sql("SELECT channel, count(*) FROM alert_subscriptions WHERE active = 1 GROUP BY channel")
    assert dict(active) == {"telegram": 2, "wechat": 2, "web": 1, "email": 1}


def test_two_workers_send_exactly_one_notice_per_subscription(world):
    w = world
    # the pt WeChat user last wrote 49 hours ago: outside the customer-service window, the template is used
    w.sql("UPDATE alert_subscriptions SET last_seen = ?, created = ? WHERE channel = 'wechat' AND address LIKE ?",
          (time.time() - 49 * 3600, time.time() - 49 * 3600, "%o-alerts-pt"))
    before_tg, before_wx = len(w.tg.calls), len(w.wx.messages)

    w.ingest(WINE)  # fits nobody
    w.deliver_from_both()
    time.sleep(3)  # both workers' loops run meanwhile
    assert w.tg.sent(since=before_tg) == [] and len(w.wx.messages) == before_wx
    assert w.wx.subscription_messages == [] and w.mails == [] and w.web_notices(w.ids["web"], "") == []

    name = MOULDS["name"]
    w.ingest(MOULDS)
    runs = w.deliver_from_both()
    for attempt in range(3):  # fresh connections until the kernel has handed one to each worker
        if len(served_by(w.log_path, "/api/v1/admin/alerts/deliver")) == 2:
            break
        runs += w.deliver_from_both()
    assert len(served_by(w.log_path, "/api/v1/admin/alerts/deliver")) == 2, "one worker took every delivery request"
    wait_for(lambda: w.to_telegram(601, name) and w.to_telegram(602, name) and w.to_wechat("o-alerts-zh", name)
             and w.templates_to("o-alerts-pt") and w.mails_with(name) and w.web_notices(w.ids["web"], name),
             300, "a notice on every channel")
    w.deliver_from_both()
    time.sleep(3)  # and the loops of both workers, every second
    assert len(w.to_telegram(601, name)) == 1 and len(w.to_telegram(602, name)) == 1
    assert "«fabricantes de moldes na China»" in w.to_telegram(601, name)[0]  # pt, the button's subscription
    assert w.to_telegram(602, name)[0].startswith("New matches for your alert")
    assert w.tg.sent(chat_id=603, since=before_tg) == [] and w.tg.sent(chat_id=605, since=before_tg) == []  # stopped
    assert len(w.to_wechat("o-alerts-zh", name)) == 1 and w.to_wechat("o-alerts-zh", name)[0].startswith("您的提醒")
    assert w.to_wechat("o-alerts-pt", name) == []  # outside the window: not a customer-service message...
    (template,) = w.templates_to("o-alerts-pt")  # ...but the configured subscription message
    assert template["template_id"] == TEMPLATE and template["data"]["thing2"]["value"] == name[:20]
    assert len(w.web_notices(w.ids["web"], name)) == 1 and w.web_notices(w.ids["web-stopped"], name) == []
    (mail,) = w.mails_with(name)
    assert mail["To"] == "ana@example.pt" and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mail["List-Unsubscribe"].strip("<>")
    assert link in mail.get_content() and link.startswith(w.url + "/api/v1/alerts/unsubscribe?token=")

    # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" to the link, no cookie, no page
    r = httpx.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=60)
    assert r.status_code == 200 and "Alert cancelled" in r.text
    assert w.sql("SELECT active FROM alert_subscriptions WHERE id = ?", (w.ids["email"],)) == [(0,)]

    # a second matching record: matched for the active subscriptions, never for the stopped ones
    w.ingest(MOULDS_2)
    pending = w.sql("SELECT s.channel, s.address FROM alert_notices n JOIN alert_subscriptions s ON s.id = n.alert_id "
                    "WHERE n.record_id = ?", (MOULDS_2["id"],))
    assert ("telegram", "tg-601") in pending
    stopped = set(w.sql("SELECT channel, address FROM alert_subscriptions WHERE active = 0"))
    assert {channel for channel, _ in stopped} == {"telegram", "web", "email"} and ("telegram", "tg-603") in stopped
    assert not stopped & set(pending)
    w.deliver_from_both()
    time.sleep(2)
    assert w.to_telegram(601, MOULDS_2["name"]) == []  # at most one digest a day: it waits for tomorrow
    assert len(w.mails) == 1

    # the Telegram notice carries a "stop alerts" button in the subscriber's language; pressing it stops them
    (notice,) = [m for m in w.tg.sent(chat_id=601) if name in m["plain"]]
    (button,) = [b for row in notice["reply_markup"]["inline_keyboard"] for b in row]
    assert button["text"] == "🔕 parar alertas" and button["callback_data"] == "s"
    (stopped_reply,) = w.press(601, "s")
    assert stopped_reply["plain"] and w.sql("SELECT active FROM alert_subscriptions WHERE address = 'tg-601'") == [(0,)]


def test_a_server_killed_between_ingest_and_delivery_loses_no_notice(world):
    from _server import start_server

    w = world
    results = w.telegram(604, "fabricantes de moldes na China")
    assert w.press(604, alert_button(results))[0]["plain"].startswith("Combinado")
    w.tg.held.add(604)  # Telegram does not answer this chat: the send is under way when the server dies
    ingest = threading.Thread(target=quietly, args=(w.ingest, MOULDS_3), daemon=True)  # its answer may never come
    ingest.start()
    wait_for(lambda: 604 in w.tg.holding, 600, "the notice's send to be under way")  # after the ingest's write
    kill_group(w.proc)
    ingest.join(timeout=60)
    assert w.tg.sent(chat_id=604) == [] or all(MOULDS_3["name"] not in m["plain"] for m in w.tg.sent(chat_id=604))
    assert w.sql("SELECT count(*) FROM alert_notices n JOIN alert_subscriptions s ON s.id = n.alert_id "
                 "WHERE s.address = 'tg-604' AND n.record_id = ? AND n.sent IS NULL", (MOULDS_3["id"],)) == [(1,)]

    # and a server killed between the ingest and the matching: the record is still marked "to match"
    # (as the ingest left it) and tg-602's notice was never written; the restart matches it once
    for_602 = ("SELECT count(*) FROM alert_notices n JOIN alert_subscriptions s ON s.id = n.alert_id "
               "WHERE s.address = 'tg-602' AND n.record_id = ?")
    assert w.sql(for_602, (MOULDS_3["id"],)) == [(1,)] and w.sql("SELECT count(*) FROM alert_to_match") == [(0,)]
    w.sql("DELETE FROM alert_notices WHERE record_id = ? AND alert_id IN "
          "(SELECT id FROM alert_subscriptions WHERE address = 'tg-602')", (MOULDS_3["id"],))
    w.sql("INSERT INTO alert_to_match(record_id, created) VALUES (?, ?)", (MOULDS_3["id"], time.time()))

    w.tg.release, w.tg.held = True, set()
    w.proc, w.url = start_server(w.data_dir, w.log_path, env=w.env, timeout=600)
    wait_for(lambda: w.to_telegram(604, MOULDS_3["name"]), 300, "the notice after the restart")
    wait_for(lambda: w.sql("SELECT count(*) FROM alert_to_match") == [(0,)], 300, "the marked record matched")
    time.sleep(3)  # the delivery loop runs again meanwhile
    assert len(w.to_telegram(604, MOULDS_3["name"])) == 1
    assert w.sql(for_602, (MOULDS_3["id"],)) == [(1,)]  # matched again after the restart, once
    assert w.to_telegram(602, MOULDS_3["name"]) == []  # tg-602 had its digest today: it waits for tomorrow
    assert w.sql("SELECT count(*) FROM alert_notices n JOIN alert_subscriptions s ON s.id = n.alert_id "
                 "WHERE s.address = 'tg-604' AND n.sent IS NOT NULL", ()) == [(1,)]
