"""The Telegram connector: python-telegram-bot's real Application behind our real webhook route,
talking to a stand-in Bot API server on loopback that speaks (and checks) Telegram's JSON."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import DATA, LiveServer

TOKEN = "123456:TEST-token_abc"
SECRET = "webhook-Secret_42"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "CPC Alliance", "username": "cpc_alliance_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler",
             "span", "blockquote", "tg-emoji"}


class BadRequest(Exception):
    pass


def parse_html(text: str) -> str:
    """Telegram's HTML parse mode: allowed tags, balanced, every other <, > and & escaped."""
    out, stack, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "<":
            m = re.compile(r"<(/?)([a-zA-Z-]+)(\s[^<>]*)?>").match(text, i)
            if not m or m.group(2).lower() not in HTML_TAGS:
                raise BadRequest(f"can't parse entities: Unsupported start tag at byte offset {i}")
            if m.group(1):
                if not stack or stack.pop() != m.group(2).lower():
                    raise BadRequest(f"can't parse entities: Unmatched end tag at byte offset {i}")
            else:
                stack.append(m.group(2).lower())
            i = m.end()
        elif c == "&":
            m = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);").match(text, i)
            if not m:
                raise BadRequest(f"can't parse entities: Can't find end of the entity starting at byte offset {i}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        elif c == ">":
            raise BadRequest(f"can't parse entities: Unexpected end tag at byte offset {i}")
        else:
            out.append(c)
            i += 1
    if stack:
        raise BadRequest(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


class FakeBotAPI:
    """Telegram's Bot API on loopback: Telegram's JSON answers and errors; records every call."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.updates: list[dict] = []
        self.webhook = ""
        self.blocked: set[int] = set()  # chats whose user blocked the bot: sendMessage gets 403
        self._ids = iter(range(1000, 10**6))
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self.endpoint, methods=["GET", "POST"])])

    def sent(self, method="sendMessage", chat_id=None, since=0):
        return [p for m, p in self.calls[since:] if m == method and (chat_id is None or str(p.get("chat_id")) == str(chat_id))]

    async def endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != TOKEN:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        method = request.path_params["method"]
        if request.headers.get("content-type", "").startswith("application/json"):
            params = await request.json()
        else:
            params = {}
            for k, v in parse_qsl((await request.body()).decode(), keep_blank_values=True):
                try:
                    params[k] = json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v
                except ValueError:
                    params[k] = v
        self.calls.append((method, params))
        handler = getattr(self, "m_" + method.lower(), None)
        if method == "sendMessage" and str(params.get("chat_id")).lstrip("-").isdigit() and int(params["chat_id"]) in self.blocked:
            return JSONResponse({"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, 403)
        if handler is None:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        try:
            result = await handler(params)
        except BadRequest as exc:
            return JSONResponse({"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}, 400)
        return JSONResponse({"ok": True, "result": result})

    async def m_getme(self, p):
        return BOT_USER

    async def m_sendmessage(self, p):
        if not p.get("chat_id") or not p.get("text"):
            raise BadRequest("message text is empty")
        plain = parse_html(p["text"]) if p.get("parse_mode") == "HTML" else p["text"]
        if len(plain.encode("utf-16-le")) // 2 > 4096:
            raise BadRequest("message is too long")
        for row in (p.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                if not 1 <= len(button.get("callback_data", "x").encode()) <= 64:
                    raise BadRequest("BUTTON_DATA_INVALID")
        p["plain"] = plain
        return {"message_id": next(self._ids), "from": BOT_USER, "date": int(time.time()),
                "chat": {"id": int(p["chat_id"]), "type": "private"}, "text": plain}

    async def m_answercallbackquery(self, p):
        if not p.get("callback_query_id"):
            raise BadRequest("query is too old and response timeout expired or query ID is invalid")
        return True

    async def m_setwebhook(self, p):
        self.webhook = p.get("url", "")
        return True

    async def m_deletewebhook(self, p):
        self.webhook = ""
        return True

    async def m_getwebhookinfo(self, p):
        return {"url": self.webhook, "has_custom_certificate": False, "pending_update_count": 0}

    async def m_getupdates(self, p):
        import asyncio

        offset = int(p.get("offset") or 0)
        deadline = time.time() + min(float(p.get("timeout") or 0), 1.0)
        while True:
            ready = [u for u in self.updates if u["update_id"] >= offset]
            if ready or time.time() >= deadline:
                return ready
            await asyncio.sleep(0.05)


def user(chat_id: int, lang: str | None) -> dict:
    u = {"id": chat_id, "is_bot": False, "first_name": "Ana"}
    if lang:
        u["language_code"] = lang
    return u


def message_update(update_id: int, chat_id: int, text: str | None, lang: str | None = "pt-br", **extra) -> dict:
    msg = {"message_id": update_id, "date": int(time.time()), "from": user(chat_id, lang),
           "chat": {"id": chat_id, "type": "private", "first_name": "Ana"}, **extra}
    if text is not None:
        msg["text"] = text
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": msg}


def callback_update(update_id: int, chat_id: int, data: str, lang: str | None = "pt-br") -> dict:
    message = {"message_id": 7, "date": int(time.time()), "from": BOT_USER, "chat": {"id": chat_id, "type": "private"},
               "text": "…"}
    return {"update_id": update_id, "callback_query": {"id": f"cbq-{update_id}", "from": user(chat_id, lang),
                                                       "chat_instance": "-55", "data": data, "message": message}}


@pytest.fixture(scope="module")
def bot_api():
    fake = FakeBotAPI()
    with LiveServer(fake.app) as server:
        fake.url = server.url
        yield fake


def telegram_app(catalog, data_dir, bot_api):
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=data_dir, telegram_token=TOKEN, telegram_secret=SECRET,
                        telegram_api_base=f"{bot_api.url}/bot")
    return create_app(settings, catalog)


@pytest.fixture(scope="module")
def service(shipped_catalog, bot_api, tmp_path_factory):
    app = telegram_app(shipped_catalog, tmp_path_factory.mktemp("tg-state"), bot_api)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        client.app = app
        yield client


_update_ids = iter(range(1, 10**6))


def post(client, update: dict, secret: str | None = SECRET):
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    return client.post("/telegram/webhook", json=update, headers=headers)


def say(client, bot_api, chat_id: int, text: str, lang: str | None = "pt-br") -> list[dict]:
    """One user message through the webhook; the sendMessage calls it caused."""
    since = len(bot_api.calls)
    r = post(client, message_update(next(_update_ids), chat_id, text, lang))
    assert r.status_code == 200, r.text
    return bot_api.sent(chat_id=chat_id, since=since)


def test_application_started_in_lifespan(service, bot_api):
    assert bot_api.sent("getMe"), "the Application initialises (getMe) when the app starts"
    assert service.get("/healthz").status_code == 200


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET.upper()])
def test_missing_or_wrong_secret_is_403(service, bot_api, secret):
    since = len(bot_api.calls)
    r = post(service, message_update(next(_update_ids), 501, "olá"), secret=secret)
    assert r.status_code == 403 and "secret" in r.json()["error"]
    assert not bot_api.sent(since=since)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"update_id": "7"}', b'{"message": {}}', b"\xff\xfe",
                                  b'{"update_id": 5, "message": {"text": "sem chat"}}'])
def test_bad_bodies_are_400(service, body):
    r = service.post("/telegram/webhook", content=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET,
                                                                 "content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()


@pytest.mark.parametrize("lang, expected", [("pt-br", "Olá!"), ("zh-hans", "您好！"), ("en", "Hello!"), (None, "Hello!")])
def test_start_in_the_users_language(service, bot_api, lang, expected):
    chat = 600 + len(lang or "")
    sent = say(service, bot_api, chat, "/start", lang)
    assert len(sent) == 1 and sent[0]["plain"].startswith(expected)
    assert sent[0]["parse_mode"] == "HTML"


def test_help_follows_language_code_and_seeds_the_session(service, bot_api):
    sent = say(service, bot_api, 701, "/help", "zh-hans")
    assert "我可以" in sent[0]["plain"]
    sent = say(service, bot_api, 702, "/help", "pt-PT")
    assert sent[0]["plain"].startswith("Encontro clusters")
    store = service.app.state.assistant.store
    assert store.load("tg-702").lang == "pt"
    # a bare "mais" in the seeded session is Portuguese, even before any search
    sent = say(service, bot_api, 702, "mais", "pt-PT")
    assert sent[0]["plain"].startswith("Não tenho nenhuma lista nesta conversa")


def test_portuguese_conversation_with_buttons(service, bot_api):
    chat = 4242
    store = service.app.state.assistant.store
    records = service.app.state.catalog.engine.records

    sent = say(service, bot_api, chat, "procuro fabricantes de moldes na China")
    assert len(sent) == 1
    first = sent[0]
    assert first["parse_mode"] == "HTML" and first["plain"].startswith("Estas são as organizações")
    shown = store.load(f"tg-{chat}").shown
    assert len(shown) == 5 and all(records[i].country == "CN" and "moulds" in records[i].sectors for i in shown[:3])
    assert f"<b>1. {html.escape(records[shown[0]].name_in('pt'), quote=False)}</b>" in first["text"]
    keyboard = first["reply_markup"]["inline_keyboard"]
    buttons = [b for row in keyboard for b in row]
    assert [b["text"] for b in keyboard[0]] == [f"ℹ️ {n}" for n in range(1, 6)]
    assert [b["text"] for b in keyboard[1]] == [f"🤝 {n}" for n in range(1, 6)]
    assert [b["text"] for b in keyboard[2]] == ["Mais resultados ▸", "🤝 Tenho interesse"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)
    more = keyboard[2][0]["callback_data"]

    # turn 2: the "more" button
    since = len(bot_api.calls)
    assert post(service, callback_update(next(_update_ids), chat, more)).status_code == 200
    answers = bot_api.sent("answerCallbackQuery", since=since)
    assert len(answers) == 1 and answers[0]["callback_query_id"].startswith("cbq-")
    sent = bot_api.sent(chat_id=chat, since=since)
    assert len(sent) == 1 and sent[0]["plain"].startswith("Mais resultados para «procuro fabricantes de moldes na China»")
    assert "6. " in sent[0]["plain"] and len(store.load(f"tg-{chat}").shown) >= 6

    # turn 3: typed follow-up
    sent = say(service, bot_api, chat, "detalhes do 2")
    second = records[shown[1]]
    assert sent[0]["plain"].startswith(second.name_in("pt")) and "Setores:" in sent[0]["plain"]
    assert sent[0].get("reply_markup") is None

    # a details button from the first list still points at the same organisation
    details_2 = keyboard[0][1]["callback_data"]
    since = len(bot_api.calls)
    post(service, callback_update(next(_update_ids), chat, details_2))
    assert bot_api.sent(chat_id=chat, since=since)[0]["plain"].startswith(second.name_in("pt"))


def test_interest_button_back_to_the_list_and_an_expired_conversation(service, bot_api):
    chat = 4848
    store = service.app.state.assistant.store
    first = say(service, bot_api, chat, "Portuguese cork companies")[0]
    keyboard = first["reply_markup"]["inline_keyboard"]
    listed = list(store.load(f"tg-{chat}").shown)

    # "🤝 2" starts the consent step for the second organisation
    since = len(bot_api.calls)
    post(service, callback_update(next(_update_ids), chat, keyboard[1][1]["callback_data"]))
    ask = bot_api.sent(chat_id=chat, since=since)
    assert ask and "GDPR" in ask[-1]["plain"] and "Do you agree?" in ask[-1]["plain"]
    assert store.load(f"tg-{chat}").capture["orgs"][0][0] == listed[1]

    # "back to the list" leaves the request and shows the same list, with its buttons
    back = say(service, bot_api, chat, "back to the list")[-1]
    assert back["plain"].startswith("Back to the list") and back["reply_markup"]["inline_keyboard"][0][0]["text"] == "ℹ️ 1"
    assert store.load(f"tg-{chat}").shown == listed and store.load(f"tg-{chat}").capture is None

    # the session expires under a live-looking list: its buttons say so and offer a new search
    store.erase_session(f"tg-{chat}", "telegram")
    since = len(bot_api.calls)
    post(service, callback_update(next(_update_ids), chat, keyboard[0][0]["callback_data"]))
    told = bot_api.sent(chat_id=chat, since=since)
    assert told and told[-1]["plain"].startswith("Não tenho nenhuma lista nesta conversa")  # the button user's language


def test_stale_or_forged_buttons_are_answered_not_acted_on(service, bot_api):
    chat = 4343
    sent = say(service, bot_api, chat, "clusters de calçado na China")
    data = sent[0]["reply_markup"]["inline_keyboard"][-2][0]["callback_data"]
    for forged, from_chat in [("m:AAAAAAAA", chat), ("d:99:zzzz", chat), ("i:1:zzzz", chat), ("x" * 64, chat), (data, 999)]:
        since = len(bot_api.calls)
        assert post(service, callback_update(next(_update_ids), from_chat, forged)).status_code == 200
        answers = bot_api.sent("answerCallbackQuery", since=since)
        assert len(answers) == 1 and answers[0]["text"].startswith("Esta lista já não está atual")
        assert not bot_api.sent(since=since)
    say(service, bot_api, chat, "fabricantes de moldes na China")  # a new search makes the old "more" stale
    since = len(bot_api.calls)
    post(service, callback_update(next(_update_ids), chat, data))
    assert bot_api.sent("answerCallbackQuery", since=since)[0]["text"].startswith("Esta lista")
    assert not bot_api.sent(since=since)


def test_duplicate_update_id_is_processed_once(service, bot_api):
    update = message_update(next(_update_ids), 4444, "olá")
    since = len(bot_api.calls)
    first, again = post(service, update), post(service, update)
    assert first.json() == {"ok": True, "duplicate": False} and again.json() == {"ok": True, "duplicate": True}
    assert len(bot_api.sent(chat_id=4444, since=since)) == 1
    assert service.app.state.assistant.store.load("tg-4444").turns == 1


def test_photos_get_a_request_for_typed_text(service, bot_api):
    since = len(bot_api.calls)
    photo = [{"file_id": "AgAD", "file_unique_id": "u1", "width": 90, "height": 90}]
    post(service, message_update(next(_update_ids), 4545, None, "zh-CN", photo=photo))
    sent = bot_api.sent(chat_id=4545, since=since)
    assert len(sent) == 1 and sent[0]["plain"].startswith("抱歉，目前只能处理文字消息")


# -- groups: service messages and commands for other bots ---------------------------------------
GROUP = {"id": -1001234567890, "title": "Portugal–China partners", "type": "supergroup"}


def group_update(update_id: int, **fields) -> dict:
    """A message in a group as Telegram sends it: from a member, in the group's chat."""
    return {"update_id": update_id, "message": {"message_id": update_id, "date": int(time.time()),
                                                "from": user(777, "pt-br"), "chat": GROUP, **fields}}


OTHER = {"id": 888, "is_bot": False, "first_name": "Li", "language_code": "zh-hans"}
SERVICE_MESSAGES = {
    "new_chat_members": {"new_chat_members": [OTHER], "new_chat_member": OTHER, "new_chat_participant": OTHER},
    "bot_added": {"new_chat_members": [BOT_USER], "new_chat_member": BOT_USER, "new_chat_participant": BOT_USER},
    "left_chat_member": {"left_chat_member": OTHER, "left_chat_participant": OTHER},
    "pinned_message": {"pinned_message": {"message_id": 5, "date": 1700000000, "chat": GROUP, "from": OTHER,
                                          "text": "fabricantes de moldes na China"}},
    "new_chat_title": {"new_chat_title": "Parceiros Portugal–China"},
    "new_chat_photo": {"new_chat_photo": [{"file_id": "AgADBAAD", "file_unique_id": "AQAD", "width": 160,
                                           "height": 160, "file_size": 8000}]},
    "delete_chat_photo": {"delete_chat_photo": True},
    "group_chat_created": {"group_chat_created": True},
    "migrate_from_chat_id": {"migrate_from_chat_id": -4004004004},
    "message_auto_delete_timer_changed": {"message_auto_delete_timer_changed": {"message_auto_delete_time": 86400}},
    "video_chat_started": {"video_chat_started": {}},
    "forum_topic_created": {"forum_topic_created": {"name": "Moldes", "icon_color": 7322096}},
}


@pytest.mark.parametrize("kind", SERVICE_MESSAGES)
def test_group_service_messages_get_no_reply(service, bot_api, kind):
    since = len(bot_api.calls)
    r = post(service, group_update(next(_update_ids), **SERVICE_MESSAGES[kind]))
    assert r.status_code == 200 and r.json() == {"ok": True, "duplicate": False}
    assert not bot_api.sent(since=since), bot_api.calls[since:]


def command(update_id: int, text: str) -> dict:
    name = text.split()[0]
    return group_update(update_id, text=text, entities=[{"type": "bot_command", "offset": 0, "length": len(name)}])


@pytest.mark.parametrize("text, expected", [
    ("/help@otherbot", None),
    ("/start@OtherBot", None),
    ("/start@cpc_alliance_botx", None),
    ("/settings@otherbot now", None),
    ("/help@cpc_alliance_bot", "Encontro clusters"),
    ("/help@CPC_Alliance_Bot", "Encontro clusters"),  # usernames are not case-sensitive
    ("/start@cpc_alliance_bot", "Olá!"),
    ("/settings@cpc_alliance_bot", "Encontro clusters"),  # a command we do not have: the help text
    ("/settings", "Encontro clusters"),
])
def test_commands_for_other_bots_are_ignored(service, bot_api, text, expected):
    assert bot_api.sent("getMe"), "our username comes from getMe"
    since = len(bot_api.calls)
    assert post(service, command(next(_update_ids), text)).status_code == 200
    sent = bot_api.sent(since=since)
    if expected is None:
        assert not sent, sent
    else:
        assert len(sent) == 1 and str(sent[0]["chat_id"]) == str(GROUP["id"]) and sent[0]["plain"].startswith(expected)


def test_a_telegram_conversation_is_not_reachable_from_the_public_chat_route(service, bot_api):
    """Telegram chat ids are user ids, visible to anyone who shares a group: "tg-<chat id>" on the
    public route must not read that user's search nor record leads in their name."""
    chat = 4646
    store = service.app.state.assistant.store
    sent = say(service, bot_api, chat, "procuro fabricantes de moldes na China")
    assert sent[0]["plain"].startswith("Estas são as organizações")
    before = store.load(f"tg-{chat}")
    assert before.query and len(before.shown) == 5
    leads_before = len(store.leads())

    for attempt in [{"session_id": f"tg-{chat}"}, {"session_id": f"tg-{chat}", "channel": "web"},
                    {"session_id": f"tg-{chat}.AAAAAAAAAAAAAAAAAAAAAA"}]:
        more = service.post("/api/v1/chat", json={**attempt, "text": "mais"})
        assert more.status_code == 200, more.text
        more = more.json()
        assert more["new_session"] is True and not more["results"] and not more["session_id"].startswith("tg-")
        assert "moldes" not in more["reply"]
        lead = service.post("/api/v1/chat", json={**attempt, "text": "tenho interesse no 1"}).json()
        assert not lead["handoff"] and lead["lead_id"] is None
    for channel in ["telegram", "wechat", "tg"]:
        r = service.post("/api/v1/chat", json={"session_id": f"tg-{chat}", "text": "mais", "channel": channel})
        assert r.status_code == 422 and r.json()["error"].startswith("channel")

    after = store.load(f"tg-{chat}")
    assert (after.turns, after.page, after.shown) == (before.turns, before.page, before.shown)
    assert len(store.leads()) == leads_before and not [x for x in store.leads() if x["channel"] == "telegram"]
    # the Telegram user's own conversation goes on
    sent = say(service, bot_api, chat, "mais")
    assert sent[0]["plain"].startswith("Mais resultados para «procuro fabricantes de moldes na China»")


# -- escaping and splitting, over a small catalog of awkward records ----------------------------
LONG = " ".join(f"Frase {i} sobre moldes & ferramentas <especiais> para a indústria automóvel." for i in range(90))
AWKWARD = {
    "id": "pt-moldes-e-filhos", "kind": "company", "name": 'Moldes & Filhos <Norte> "Lda"', "country": "PT",
    "region": "Centro", "city": "Marinha Grande", "sectors": ["moulds", "plastics"], "lang": "pt",
    "description": LONG, "offers": "Moldes de injeção & protótipos; " * 60, "seeks": "Parceiros <chineses> & distribuidores; " * 50,
    "website": "https://example.org/?a=1&b=<2>", "sources": ["https://example.org/moldes?x=1&y=2"],
}


@pytest.fixture(scope="module")
def awkward(encoder, bot_api, tmp_path_factory):
    from index import Catalog

    folder = tmp_path_factory.mktemp("tg-awkward")
    corpus = folder / "corpus.jsonl"
    corpus.write_text((DATA / "fictional.jsonl").read_text(encoding="utf-8").rstrip("\n") + "\n"
                      + json.dumps(AWKWARD, ensure_ascii=False) + "\n", encoding="utf-8")
    catalog = Catalog(folder / "data", encoder)
    catalog.open(corpus)
    app = telegram_app(catalog, folder / "data", bot_api)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        client.app = app
        yield client
    catalog.close()


def test_escaping_of_records_and_user_text(awkward, bot_api):
    sent = say(awkward, bot_api, 5151, "moldes & plásticos <Marinha Grande> em Portugal")
    raw, plain = sent[0]["text"], sent[0]["plain"]
    assert "Moldes &amp; Filhos &lt;Norte&gt; \"Lda\"" in raw and 'Moldes & Filhos <Norte> "Lda"' in plain
    assert "«moldes &amp; plásticos &lt;Marinha Grande&gt; em Portugal»" in raw
    assert re.search(r"<b>\d\. Moldes &amp; Filhos &lt;Norte&gt; \"Lda\"</b>", raw)


def test_long_reply_is_split_at_4096(awkward, bot_api):
    chat = 5252
    say(awkward, bot_api, chat, "fabricantes de moldes em Portugal")
    shown = awkward.app.state.assistant.store.load(f"tg-{chat}").shown
    n = shown.index("pt-moldes-e-filhos") + 1
    sent = say(awkward, bot_api, chat, f"detalhes do {n}")
    assert len(sent) >= 3, [len(s["plain"]) for s in sent]
    assert all(len(s["plain"]) <= 4096 for s in sent)  # the stand-in also refuses longer ones
    assert sent[0]["plain"].startswith('Moldes & Filhos <Norte> "Lda"')
    whole = "\n".join(s["plain"] for s in sent)
    assert " ".join(LONG.split()) in " ".join(whole.split())  # nothing lost at the cuts
    assert "Site: https://example.org/?a=1&b=<2>" in whole
    # messages break between lines: each piece but the wrapped description ends a line of the reply
    lines = set(whole.split("\n"))
    assert sent[-1]["plain"].split("\n")[-1] in lines and sent[-1]["plain"].endswith("«tenho interesse».")


# -- command line ---------------------------------------------------------------------------
def test_cli_set_webhook(bot_api, monkeypatch, capsys):
    from assistant.cli import main

    monkeypatch.setenv("CPC_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("CPC_TELEGRAM_SECRET", SECRET)
    monkeypatch.setenv("CPC_TELEGRAM_API_BASE", f"{bot_api.url}/bot")
    since = len(bot_api.calls)
    assert main(["telegram", "set-webhook", "https://cpc.example.org/"]) == 0
    call = bot_api.sent("setWebhook", since=since)[0]
    assert call["url"] == "https://cpc.example.org/telegram/webhook" and call["secret_token"] == SECRET
    assert call["allowed_updates"] == ["message", "callback_query"]
    assert json.loads(capsys.readouterr().out)["url"] == "https://cpc.example.org/telegram/webhook"


def test_cli_poll_answers_by_long_polling(bot_api, shipped_data_dir, tmp_path):
    bot_api.updates.append(message_update(900_001, 8080, "/start", "pt-br"))
    env = {**os.environ, "CPC_TELEGRAM_TOKEN": TOKEN, "CPC_TELEGRAM_API_BASE": f"{bot_api.url}/bot",
           "CPC_DATA_DIR": str(shipped_data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "telegram", "poll"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        while not bot_api.sent(chat_id=8080) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        sent = bot_api.sent(chat_id=8080)
        assert sent and sent[0]["plain"].startswith("Olá!"), proc.poll()
        assert bot_api.sent("deleteWebhook"), "polling removes a webhook first"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        bot_api.updates.clear()
    assert "Traceback" not in out, out[-3000:]


# -- from interest to a consented lead, and staff replying on Telegram ----------------------------------
STAFF = {"Authorization": "Bearer tg-staff-key"}


@pytest.fixture(scope="module")
def staffed(shipped_catalog, bot_api, tmp_path_factory):
    from assistant.app import create_app
    from assistant.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("tg-leads"), telegram_token=TOKEN, telegram_secret=SECRET,
                        telegram_api_base=f"{bot_api.url}/bot", admin_token="tg-staff-key")
    app = create_app(settings, shipped_catalog)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        client.app = app
        yield client


def contact_update(update_id: int, chat_id: int, phone: str, owner: int) -> dict:
    update = message_update(update_id, chat_id, None)
    update["message"]["contact"] = {"phone_number": phone, "first_name": "Ana", "user_id": owner}
    return update


def test_portuguese_lead_with_the_share_contact_button_then_a_staff_reply(staffed, bot_api):
    chat = 5151
    say(staffed, bot_api, chat, "fabricantes de moldes na China")
    (consent,) = say(staffed, bot_api, chat, "tenho interesse no 1")
    assert "RGPD" in consent["plain"] and consent["reply_markup"] == {"remove_keyboard": True}
    for text in ("sim", "Ana Silva"):
        say(staffed, bot_api, chat, text)
    (ask,) = say(staffed, bot_api, chat, "Moldes Leiria Lda")
    assert ask["plain"].startswith("Como o(a) podemos contactar?") and "Telegram" in ask["plain"]
    keyboard = ask["reply_markup"]["keyboard"]
    assert keyboard[0][0] == {"text": "📱 Partilhar o meu número", "request_contact": True}
    assert ask["reply_markup"]["one_time_keyboard"] is True

    # someone else's contact card is not taken as the user's own
    since = len(bot_api.calls)
    post(staffed, contact_update(next(_update_ids), chat, "+351 999 999 999", owner=777))
    (refused,) = bot_api.sent(chat_id=chat, since=since)
    assert refused["plain"].startswith("Partilhe o seu próprio contacto")

    since = len(bot_api.calls)
    assert post(staffed, contact_update(next(_update_ids), chat, "351912345678", owner=chat)).status_code == 200
    (need,) = bot_api.sent(chat_id=chat, since=since)
    assert need["plain"].startswith("Numa linha, o que procura?") and "fabricantes de moldes na China" in need["plain"]
    (summary,) = say(staffed, bot_api, chat, "ok")
    assert "+351912345678" in summary["plain"]
    (done,) = say(staffed, bot_api, chat, "enviar")
    assert done["plain"].startswith("Pedido n.º")

    (lead,) = staffed.get("/api/v1/leads", params={"channel": "telegram"}, headers=STAFF).json()
    assert (lead["name"], lead["asker_org"], lead["contact"], lead["contact_kind"]) == \
        ("Ana Silva", "Moldes Leiria Lda", "+351912345678", "phone")
    assert lead["need"] == "fabricantes de moldes na China" and lead["session_id"] == f"tg-{chat}" and lead["lang"] == "pt"
    assert staffed.patch(f"/api/v1/leads/{lead['id']}", json={"status": "contacted"}, headers=STAFF).json()["status"] == "contacted"

    since = len(bot_api.calls)
    r = staffed.post(f"/api/v1/leads/{lead['id']}/reply", json={"text": "Olá Ana, a <b>Yuyao</b> & parceiros responderão."},
                     headers=STAFF)
    assert r.status_code == 200 and r.json()["delivery"] == "sent"
    (reply,) = bot_api.sent(chat_id=chat, since=since)
    assert reply["plain"] == f"Mensagem da equipa da CPC Alliance (pedido n.º {lead['id']}):\nOlá Ana, a <b>Yuyao</b> & parceiros responderão."


def test_staff_reply_to_a_chat_telegram_refuses_is_502(staffed, bot_api):
    store = staffed.app.state.assistant.store
    lead_id = store.add_lead("tg-666", "telegram", "pt-apcor", "APCOR", "en", "x", name="Nobody", contact="telegram",
                             contact_kind="telegram")
    bot_api.blocked.add(666)
    r = staffed.post(f"/api/v1/leads/{lead_id}/reply", json={"text": "hello"}, headers=STAFF)
    assert r.status_code == 502 and "blocked" in r.json()["error"] and r.json()["detail"] == {"channel": "telegram", "code": "bad_gateway"}
    assert staffed.get(f"/api/v1/leads/{lead_id}/messages", headers=STAFF).json() == []


def test_delete_my_data_on_telegram(staffed, bot_api):
    import sqlite3

    chat = 5252
    say(staffed, bot_api, chat, "Portuguese cork companies", "en")
    for text in ("I'm interested in 2", "yes", "Mary Jones", "Acme", "here", "ok", "send"):
        say(staffed, bot_api, chat, text, "en")
    store = staffed.app.state.assistant.store
    assert [x["contact_kind"] for x in store.leads(channel="telegram") if x["session_id"] == f"tg-{chat}"] == ["telegram"]
    (confirm,) = say(staffed, bot_api, chat, "delete my data", "en")
    assert "cannot be undone" in confirm["plain"]
    (done,) = say(staffed, bot_api, chat, "yes, delete", "en")
    assert done["plain"].startswith("Done: your data is deleted (1 contact request")
    db = sqlite3.connect(store.path)
    for table, column in (("leads", "session_id"), ("sessions", "id"), ("staff_messages", "session_id")):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (f"tg-{chat}",)).fetchone() == (0,)
    db.close()


def test_in_a_group_no_request_is_taken_nor_anyone_erased(staffed, bot_api):
    """A group's session is every member's: a request there would let another member change or
    send it, and the bot would post the asker's name and e-mail to the group. Requests and "delete
    my data" are sent to a private chat; a member's own lead, made in private, is untouched."""
    member = 777  # the "from" of group_update
    say(staffed, bot_api, member, "Portuguese cork companies", "en")
    for text in ("I'm interested in 1", "yes", "Mary Jones", "Acme", "here", "ok", "send"):
        say(staffed, bot_api, member, text, "en")
    store = staffed.app.state.assistant.store
    mine = [x["id"] for x in store.leads(channel="telegram") if x["session_id"] == f"tg-{member}"]
    assert len(mine) == 1

    def in_group(text: str) -> list[dict]:
        since = len(bot_api.calls)
        assert post(staffed, group_update(next(_update_ids), text=text)).status_code == 200
        return bot_api.sent(chat_id=GROUP["id"], since=since)

    in_group("Portuguese cork companies")
    for text in ("I'm interested in 1", "yes", "Zed Other", "delete my data", "yes, delete"):
        (reply,) = in_group(text)
        assert "Zed Other" not in reply["plain"]
        if text in ("I'm interested in 1", "delete my data"):
            assert "private chat" in reply["plain"], reply["plain"]
    state = store.load(f"tg-{GROUP['id']}")
    assert state.capture is None and not state.erase_pending
    assert [x["id"] for x in store.leads(channel="telegram") if x["session_id"] == f"tg-{member}"] == mine
    assert not [x for x in store.leads(channel="telegram") if x["session_id"] == f"tg-{GROUP['id']}"]
    # a phone number shared in the group is not taken either
    since = len(bot_api.calls)
    update = group_update(next(_update_ids), contact={"phone_number": "+351912345678", "first_name": "Ana", "user_id": member})
    assert post(staffed, update).status_code == 200
    (reply,) = bot_api.sent(chat_id=GROUP["id"], since=since)
    assert "+351912345678" not in reply["plain"] and "private chat" in reply["plain"]


# -- two workers on one data folder -----------------------------------------------------------------
@pytest.fixture(scope="module")
def two_workers(shipped_catalog, bot_api, tmp_path_factory):
    """Two services on one data folder, each with its own connection to the state store, as two
    worker processes run: Telegram may deliver to either."""
    data_dir = tmp_path_factory.mktemp("tg-workers")
    with LiveServer(telegram_app(shipped_catalog, data_dir, bot_api)) as a, \
            LiveServer(telegram_app(shipped_catalog, data_dir, bot_api)) as b, \
            httpx.Client(base_url=a.url, timeout=60) as first, httpx.Client(base_url=b.url, timeout=60) as second:
        first.app, second.app = a.server.config.app, b.server.config.app
        yield first, second


def test_an_update_redelivered_to_another_worker_is_answered_once(two_workers, bot_api):
    import threading

    first, second = two_workers
    assert first.app.state.assistant.store is not second.app.state.assistant.store
    update = message_update(next(_update_ids), 5151, "clusters de calçado na China")
    since = len(bot_api.calls)
    answers: list[dict] = []
    threads = [threading.Thread(target=lambda c=c: answers.append(post(c, update).json())) for c in two_workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(a["duplicate"] for a in answers) == [False, True]
    assert len(bot_api.sent(chat_id=5151, since=since)) == 1
    assert second.app.state.assistant.store.load("tg-5151").turns == 1


def test_a_button_works_on_the_worker_that_did_not_send_it(two_workers, bot_api):
    first, second = two_workers
    sent = say(first, bot_api, 5252, "procuro fabricantes de moldes na China")
    keyboard = sent[0]["reply_markup"]["inline_keyboard"]
    since = len(bot_api.calls)
    assert post(second, callback_update(next(_update_ids), 5252, keyboard[-2][0]["callback_data"])).status_code == 200
    assert not [a for a in bot_api.sent("answerCallbackQuery", since=since) if a.get("text")]  # not "out of date"
    more = bot_api.sent(chat_id=5252, since=since)
    assert len(more) == 1 and more[0]["plain"].startswith("Mais resultados para «procuro fabricantes de moldes na China»")
    assert first.app.state.assistant.store.load("tg-5252").turns == 2


# -- two worker processes (cpc serve --workers 2) ---------------------------------------------------------
def test_an_update_redelivered_to_both_workers_is_answered_once(bot_api, shipped_data_dir, tmp_path):
    """Telegram redelivers an update it got no answer for; with two workers behind the port each
    copy may reach either. The final "send" of a lead, delivered again and again over fresh
    connections until both workers have seen it: one reply, at most one lead."""
    import shutil
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from _server import start_server

    data_dir = tmp_path / "var"
    shutil.copytree(shipped_data_dir, data_dir)
    log_path = tmp_path / "serve.log"
    env = {"CPC_TELEGRAM_TOKEN": TOKEN, "CPC_TELEGRAM_SECRET": SECRET, "CPC_TELEGRAM_API_BASE": f"{bot_api.url}/bot",
           "CPC_ADMIN_TOKEN": "tg-workers-key"}
    proc, url = start_server(data_dir, log_path, env=env, timeout=300, workers=2)

    def deliver(update: dict) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as fresh:  # a connection of its own: either worker may take it
            return post(fresh, update)

    def webhook_pids(offset: int) -> set[int]:
        """The workers that answered a webhook call logged after ``offset``."""
        with open(log_path, "rb") as log:
            log.seek(offset)
            rows = [json.loads(x) for x in log.read().decode("utf-8").splitlines() if x.startswith("{")]
        return {r["pid"] for r in rows if r.get("route") == "/telegram/webhook" and r.get("status") == 200}

    chat = 6161
    try:
        for text in ("Portuguese cork companies", "I'm interested in 2", "yes", "Mary Jones", "Acme", "here", "ok"):
            since = len(bot_api.calls)
            assert deliver(message_update(next(_update_ids), chat, text, "en")).status_code == 200
            assert len(bot_api.sent(chat_id=chat, since=since)) == 1, text
        send = message_update(next(_update_ids), chat, "send", "en")
        since, offset = len(bot_api.calls), log_path.stat().st_size
        for _ in range(12):
            assert deliver(send).status_code == 200
            if len(webhook_pids(offset)) == 2:
                break
        assert len(webhook_pids(offset)) == 2, "one worker took every delivery"
        replies = bot_api.sent(chat_id=chat, since=since)
        assert len(replies) == 1, [r["plain"][:80] for r in replies]
        assert replies[0]["plain"].startswith("Request no."), replies[0]["plain"][:80]
        leads = httpx.get(url + "/api/v1/leads", params={"channel": "telegram"}, timeout=30,
                          headers={"Authorization": "Bearer tg-workers-key"}).json()
        assert len([x for x in leads if x["session_id"] == f"tg-{chat}"]) <= 1
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_distinct_send_updates_at_once_record_one_lead(two_workers, bot_api):
    """Several "send" messages of one chat (distinct updates, not redeliveries) reaching both
    workers at once: one request, one lead; every "sent" reply names it."""
    import threading

    first, second = two_workers
    chat = 7373
    for text in ("Portuguese cork companies", "I'm interested in 2", "yes", "Mary Jones", "Acme", "here", "ok"):
        say(first, bot_api, chat, text, "en")
    since = len(bot_api.calls)
    updates = [message_update(next(_update_ids), chat, "send", "en") for _ in range(6)]
    gate = threading.Barrier(6)

    def deliver(i: int) -> None:
        gate.wait()
        post(two_workers[i % 2], updates[i])

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    store = first.app.state.assistant.store
    leads = [x for x in store.leads(channel="telegram") if x["session_id"] == f"tg-{chat}"]
    assert len(leads) == 1, [x["id"] for x in leads]
    sent = [m["plain"] for m in bot_api.sent(chat_id=chat, since=since) if m["plain"].startswith("Request no.")]
    assert sent and all(m.startswith(f"Request no. {leads[0]['id']} ") for m in sent), sent


# -- threads with the team, a person, the status of a request (team) -------------------------------
def test_talk_to_a_person_then_the_users_answer_to_staff_reaches_the_thread(staffed, bot_api):
    chat = 5454
    (opened,) = say(staffed, bot_api, chat, "我想和工作人员联系", lang="zh-hans")
    assert "请求编号" in opened["plain"]
    (lead,) = [x for x in staffed.get("/api/v1/leads", params={"channel": "telegram"}, headers=STAFF).json()
               if x["session_id"] == f"tg-{chat}"]
    assert lead["contact_kind"] == "telegram" and lead["message"] == "我想和工作人员联系"
    (status,) = say(staffed, bot_api, chat, "我的请求进展如何？", lang="zh-hans")
    assert f"编号 {lead['id']}" in status["plain"] and "等待工作人员处理" in status["plain"]
    assert staffed.post(f"/api/v1/leads/{lead['id']}/reply", json={"text": "您好，我是Rita。请问您方便什么时候通话？"},
                        headers=STAFF).status_code == 200
    (sent,) = say(staffed, bot_api, chat, "好的，谢谢！我下周三有空，可以电话联系", lang="zh-hans")
    assert sent["plain"].startswith("已转给CPC联盟工作人员") and "同意" not in sent["plain"]  # no consent reopened
    listed = next(x for x in staffed.get("/api/v1/leads", headers=STAFF).json() if x["id"] == lead["id"])
    assert listed["unread"] == 1
    assert [(m["sender"], m["text"].rsplit("\n", 1)[-1]) for m in listed["messages"]] == [
        ("staff", "您好，我是Rita。请问您方便什么时候通话？"), ("user", "好的，谢谢！我下周三有空，可以电话联系")]
    assert staffed.get(f"/api/v1/leads/{lead['id']}", headers=STAFF).json()["messages"] == listed["messages"]
    assert staffed.get(f"/api/v1/leads/{lead['id']}", headers=STAFF).json()["unread"] == 0


def test_details_of_a_portuguese_record_in_chinese_on_telegram(staffed, bot_api):
    chat = 5455
    say(staffed, bot_api, chat, "我们想找葡萄牙的软木合作伙伴", lang="zh-hans")
    (details,) = say(staffed, bot_api, chat, "第1个的详细信息", lang="zh-hans")
    records = staffed.app.state.assistant.engine.records
    rec = records[staffed.app.state.assistant.store.load(f"tg-{chat}").focus]
    assert rec.lang == "pt"
    for original in (rec.description, rec.offers, rec.seeks):
        assert not original or original not in details["plain"]
    assert rec.i18n["zh"].offers in details["plain"]
