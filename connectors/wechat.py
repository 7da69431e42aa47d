"""WeChat Official Account: URL verification and messages in plaintext and safe (AES) mode.

With an EncodingAESKey configured only sealed (safe or compatible mode) messages are taken: the
plain signature covers the timestamp and nonce but not the body, so a plaintext request would
let anyone who saw one signature post any message. Every request must be signed within five
minutes of our clock, and each signature is accepted once.

WeChat waits 5 seconds for a passive reply and retries the same MsgId up to three times. An
answer not ready within ``CPC_WECHAT_REPLY_TIMEOUT`` seconds is acknowledged with ``success``
and delivered later through the customer-service message API; a retry joins the first delivery.
Replies are cut to WeChat's 2,047 bytes at a line boundary; "更多" then sends the rest (never just
the closing hint: that is dropped instead, so a "更多" always brings results).

Official accounts have no inline buttons, but a text reply may carry menu links
(``<a href="weixin://bizmsgmenu?msgmenucontent=...&msgmenuid=...">``): a tap sends that text back
as the user's own message (with a ``bizmsgmenuid`` field). A result list ends with one that says
"tell me when new ones fit", an alert notice with one that says "stop alerts", in the user's
language; the bytes they take are kept free when a reply is cut.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from typing import Callable, Mapping
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response
from wechatpy import parse_message
from wechatpy.client import WeChatClient
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from assistant import MORE, Assistant, Reply, clean, say, suggestions

from .base import Channel, Conversation, Deduplicator, Inbound, NotReady, TTLCache, read_body, text, utf8_len, wrap_line

log = logging.getLogger("cpc.wechat")

PATH = "/wechat"
MAX_BYTES = 2047  # passive and customer-service text replies
MAX_BODY = 64 * 1024
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)
WELCOME_EVENTS = {"subscribe"}  # as sent, also when following by scanning a QR code (EventKey qrscene_...)
WINDOW = 120  # seconds a signed request may be away from our clock, either way (WeChat sends at once)
OVERFLOW_TTL = 1800  # seconds the rest of a cut reply waits for "更多" (kept in the shared state store)
LIST_INTENTS = {"search", "refine", "more", "back"}  # replies that list results: the alert link follows them
# a menu link's msgmenuid (WeChat sends it back as bizmsgmenuid); the text it sends is what counts
MENU_IDS = {"alert": 1, "stop_alerts": 2}
MENU_SAYS = {"alert": "alert_button", "stop_alerts": "say_stop_alerts"}  # connectors/base.py TEXTS
MENU_ICONS = {"alert": "🔔", "stop_alerts": "🔕"}


def menu_link(name: str, lang: str) -> str:
    """One WeChat menu link: shows the words with an icon, and a tap sends the words as the user's
    message, in ``lang`` (what the assistant reads as that request)."""
    words = text(MENU_SAYS[name], lang)
    href = f"weixin://bizmsgmenu?msgmenucontent={html.escape(words)}&msgmenuid={MENU_IDS[name]}"
    return f'<a href="{href}">{MENU_ICONS[name]} {html.escape(words, quote=False)}</a>'


def menu_lines(names, lang: str) -> str:
    """The links to put after a message ("" for none), each on a line of its own."""
    return "".join("\n" + menu_link(name, lang) for name in names)


class CustomerServiceClient(WeChatClient):
    """wechatpy's client with a configurable API host (a proxy, or a loopback stand-in in tests)."""

    def __init__(self, appid: str, secret: str, api_base: str = "https://api.weixin.qq.com", timeout: float = 10.0):
        super().__init__(appid, secret, timeout=timeout)
        self.API_BASE_URL = api_base.rstrip("/") + "/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


def parse_xml(body: bytes) -> dict[str, str]:
    """The top-level fields of a WeChat XML body; DTDs and entities are refused (400), never expanded."""
    if _DTD.search(body):
        raise HTTPException(400, "XML with a DOCTYPE or ENTITY declaration is refused")
    try:
        body.decode("utf-8")
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, UnicodeDecodeError):
        raise HTTPException(400, "the body is not well-formed UTF-8 XML") from None
    if root.tag != "xml":
        raise HTTPException(400, "the root element must be <xml>")
    return {child.tag: child.text or "" for child in root}


def cut(reply_text: str, lang: str, limit: int = MAX_BYTES) -> tuple[str, str | None]:
    """At most ``limit`` (2,047) UTF-8 bytes ending at a line boundary with a "more" hint, and the rest."""
    if utf8_len(reply_text) <= limit:
        return reply_text, None
    hint = "\n" + text("cut", lang)
    room = limit - utf8_len(hint)
    lines = reply_text.split("\n")
    kept, used = 0, -1
    for line in lines:
        used += utf8_len(line) + 1
        if used > room:
            break
        kept += 1
    if kept:
        head = "\n".join(lines[:kept])
        rest = reply_text[len(head) + 1:]
    else:  # a first line longer than a whole message: cut inside it
        head = wrap_line(lines[0], room, utf8_len)[0]
        rest = reply_text[len(head):].lstrip(" ")
    return head + hint, rest


def closing_lines(lang: str) -> set[str]:
    """The hints that end a list or a details view: never worth a page (and a "更多") of their own."""
    return {say("hint", lang), say("details_hint", lang)}


def fit(reply_text: str, lang: str, limit: int = MAX_BYTES) -> tuple[str, str | None]:
    """As :func:`cut`, except that when all that would be left over is the closing hint, the hint is
    dropped instead: the user's next "更多" then brings real results, not a stranded line."""
    head, rest = cut(reply_text, lang, limit)
    if rest is not None and "\n" not in rest.strip() and rest.strip() in closing_lines(lang):
        return reply_text[: len(reply_text) - len(rest)].rstrip("\n"), None
    return head, rest


def reply_xml(message, content: str) -> str:
    """A passive text reply; a "]]>" in the content cannot end its CDATA section."""
    return TextReply(message=message, content=content.replace("]]>", "]]]]><![CDATA[>")).render()


def typed_text(message) -> str | None:
    """What the user said in words: a text message's content, or the text WeChat recognised in a
    voice message (speech recognition on the platform); None for anything else."""
    if message.type == "text":
        return message.content or ""
    if message.type == "voice":
        return (message.recognition or "").strip() or None
    return None


def welcome() -> str:
    examples = "\n".join(f"- {s}" for s in suggestions("start", "zh"))
    return f"{say('greeting', 'zh')}\n您可以这样问：\n{examples}"


class WeChatConnector(Channel):
    name = "wechat"
    prefix = "wx"

    def __init__(self, settings, assistant: Callable[[], Assistant], client: WeChatClient | None = None):
        if settings.wechat_token is None:
            raise ValueError("CPC_WECHAT_TOKEN is not set")
        self.token = settings.wechat_token.get_secret_value()
        self.crypto: WeChatCrypto | None = None
        if settings.wechat_aes_key is not None and not settings.wechat_appid:
            raise ValueError("CPC_WECHAT_AES_KEY needs CPC_WECHAT_APPID (safe mode decrypts with both)")
        if settings.wechat_aes_key is not None:
            try:
                self.crypto = WeChatCrypto(self.token, settings.wechat_aes_key.get_secret_value(), settings.wechat_appid)
            except Exception:
                raise ValueError("CPC_WECHAT_AES_KEY must be the 43-character EncodingAESKey") from None
        if client is None and settings.wechat_appid and settings.wechat_secret is not None:
            client = CustomerServiceClient(settings.wechat_appid, settings.wechat_secret.get_secret_value(),
                                           settings.wechat_api_base)
        if client is None:
            log.warning("no CPC_WECHAT_APPID/CPC_WECHAT_SECRET: answers slower than the reply timeout are dropped")
        self.client = client
        self.timeout = settings.wechat_reply_timeout
        self.conversation = Conversation(assistant, self.name, settings.chat_rate_limit_per_minute)
        self.dedup = Deduplicator(ttl=600, namespace="wx-message")
        self._pushing: set[asyncio.Task] = set()
        self.clock: Callable[[], float] = time.time
        # signatures already accepted; kept past the window, after which the timestamp refuses them anyway
        self._used: TTLCache[bool] = TTLCache(ttl=2 * WINDOW + 60, max_items=200_000)

    # -- requests -----------------------------------------------------------------------
    def fresh(self, timestamp: str) -> None:
        """Refuse (403) a timestamp more than two minutes from our clock: an old signed request
        cannot be replayed once its signature has left the replay memory."""
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise HTTPException(400, "timestamp must be Unix seconds")
        skew = int(timestamp) - self.clock()
        if abs(skew) > WINDOW:
            raise HTTPException(403, f"timestamp {timestamp} is {abs(skew):.0f} s from the server's clock "
                                     f"(at most {WINDOW} s allowed)")

    def first_use(self, signature: str) -> None:
        """Refuse (403) a signature seen before within the window. Called only once the signature
        has been verified, so unsigned traffic cannot fill the memory or claim a genuine one."""
        store = self.conversation.store  # shared by every worker process; this process's memory until ready
        if store is not None:
            first = store.claim(f"wx-signature:{signature}", self._used.ttl)
        else:
            first = self._used.get(signature) is None
            self._used.put(signature, True)
        if not first:
            raise HTTPException(403, "replayed request: this signature, timestamp and nonce were already used")

    def check(self, signature: str, timestamp: str, nonce: str) -> None:
        if not (signature and timestamp and nonce):
            raise HTTPException(400, "signature, timestamp and nonce are required")
        self.fresh(timestamp)
        try:
            check_signature(self.token, signature, timestamp, nonce)
        except InvalidSignatureException:
            raise HTTPException(403, "bad signature") from None

    def _decrypt(self, outer: dict[str, str], params: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
        assert self.crypto is not None
        signature, timestamp, nonce = (params.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        if not (signature and timestamp and nonce and outer.get("Encrypt")):
            raise HTTPException(400, "msg_signature, timestamp, nonce and Encrypt are required")
        self.fresh(timestamp)
        try:
            plain = self.crypto.decrypt_message(outer, signature, timestamp, nonce)
        except Exception:
            raise HTTPException(403, "bad signature or undecryptable message") from None
        plain = plain.encode("utf-8") if isinstance(plain, str) else plain
        inner = parse_xml(plain)
        # compatible mode repeats the fields in plaintext: they must say the same as the sealed copy
        if any(k in inner and inner[k] != v for k, v in outer.items() if k != "Encrypt"):
            raise HTTPException(403, "the plaintext fields differ from the encrypted message")
        return plain, inner

    async def handle(self, params: Mapping[str, str], body: bytes) -> Response:
        outer = parse_xml(body)
        mode = params.get("encrypt_type", "raw")
        if self.crypto is not None and mode != "aes":
            raise HTTPException(403, "safe mode is configured (CPC_WECHAT_AES_KEY): plaintext messages are refused; "
                                     "set the message mode to safe or compatible")
        if self.crypto is None and mode != "raw":
            raise HTTPException(403, "safe mode is not configured (CPC_WECHAT_AES_KEY, CPC_WECHAT_APPID)")
        safe = mode == "aes"
        if safe:
            xml, fields = self._decrypt(outer, params)
            signed = "msg:" + params["msg_signature"]
        else:
            signature = params.get("signature", "")
            self.check(signature, params.get("timestamp", ""), params.get("nonce", ""))
            xml, fields, signed = body, outer, "sig:" + signature
        try:
            message = parse_message(xml.decode("utf-8"))
        except Exception:
            raise HTTPException(400, "not a WeChat message") from None
        if not message.source:
            raise HTTPException(400, "FromUserName is required")
        if typed_text(message) is not None:
            try:
                self.conversation.assistant
            except NotReady:
                raise HTTPException(503, "the index is not loaded yet") from None
        self.first_use(signed)  # only now: a request refused above (503, 400) may come again unchanged
        content = await self.answer(message, fields)
        if content is None:
            return PlainTextResponse("success")
        out = reply_xml(message, content)
        if safe:
            out = self.crypto.encrypt_message(out, params["nonce"], params["timestamp"])
        return Response(out, media_type="application/xml")

    # -- answering ----------------------------------------------------------------------
    async def answer(self, message, fields: Mapping[str, str]) -> str | None:
        """The passive reply, or None when there is none or it will be pushed later.

        ``fields`` are the message's top-level XML fields: wechatpy has no class for newer events
        (subscribe_msg_popup_event ...), which it parses as messages of an unknown type.
        Retries are recognised by sender and MsgId (message ids are not unique across users),
        events by sender, time and event, as WeChat's documentation recommends."""
        event = fields.get("Event", "").lower() if fields.get("MsgType", "").lower() == "event" else None
        kind = event or message.type
        key = f"{message.source}:{message.id}" if message.id else f"{message.source}:{message.time}:{kind}"
        store = self.conversation.store
        delivery, new = self.dedup.start(key, lambda: self._compute(message, event), store)
        if delivery is None:  # another worker process has it
            return await self._answer_of_another_worker(store, key)
        if new and store is not None:
            delivery.task.add_done_callback(lambda t: self._share(store, key, delivery, t))
        if delivery.late:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(delivery.task), self.timeout)
        except TimeoutError:
            if delivery.task.done():
                return delivery.task.result()
            if not delivery.late:
                delivery.late = True
                delivery.task.add_done_callback(lambda t: self._push_later(message.source, t))
            return None

    def _share(self, store, key: str, delivery, task: asyncio.Task) -> None:
        """Leave the finished answer for a retry that reached another worker: the reply itself, or
        None when it is pushed through customer service (it must not be sent twice)."""
        if task.cancelled() or task.exception() is not None:
            return
        try:
            store.put(f"wx-answer:{key}", {"reply": None if delivery.late else task.result()}, self.dedup.ttl)
        except Exception:
            log.warning("answer not shared with the other workers", exc_info=True)

    async def _answer_of_another_worker(self, store, key: str) -> str | None:
        """A retry of a message another worker is answering: its reply when it is ready within the
        reply timeout, else None (acknowledged; that worker pushes it)."""
        deadline = time.monotonic() + self.timeout
        while True:
            shared = store.get(f"wx-answer:{key}")
            if shared is not None:
                return shared["reply"]
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)

    async def _compute(self, message, event: str | None) -> str | None:
        sid = self.session_id(message.source)
        try:
            if typed_text(message) is not None:
                return await self._converse(self.inbound(message))
            if event is not None:  # unsubscribe, menu, template and subscribe_msg_* events: no reply
                return welcome() if event in WELCOME_EVENTS else None
            return text("media", self.conversation.session_lang(sid) or "zh")
        except Exception:
            log.exception("wechat message %s failed", message.id)
            return text("error", "zh")

    def inbound(self, message) -> Inbound:
        """WeChat users are taken to read Chinese until they write otherwise."""
        return Inbound(message.source, typed_text(message) or "", "zh", str(message.id))

    async def _converse(self, message: Inbound) -> str:
        sid = self.session_id(message.user)
        async with self.conversation.lock(sid):
            if MORE.match(clean(message.text)):
                left = self.conversation.assistant.store.pop(f"wx-more:{sid}")
                if left is not None:
                    return self._cut(sid, *left)
            reply = await self.conversation.respond(sid, message.text, message.lang_hint)
            return self.render(reply, sid)

    def _cut(self, sid: str, reply_text: str, lang: str, links: str = "") -> str:
        """A page of the reply within WeChat's size, with room kept for its menu ``links``."""
        head, rest = fit(reply_text, lang, MAX_BYTES - utf8_len(links))
        store = self.conversation.assistant.store  # shared: "更多" may reach another worker process
        if rest:
            store.put(f"wx-more:{sid}", [rest, lang, links], OVERFLOW_TTL)
        else:
            store.pop(f"wx-more:{sid}")
        return head + links

    def render(self, reply: Reply, session_id: str) -> str:
        """The reply's text; a result list is followed by the "tell me when new ones fit" link."""
        offers_alert = bool(reply.results) and reply.intent in LIST_INTENTS
        return self._cut(session_id, reply.text, reply.lang, menu_lines(["alert"] if offers_alert else [], reply.lang))

    def _push_later(self, openid: str, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None or not task.result():
            return
        push = asyncio.ensure_future(self.send(openid, task.result()))
        self._pushing.add(push)
        push.add_done_callback(self._pushing.discard)

    async def send(self, user: str, reply: Reply | str) -> None:
        """A customer-service text message (allowed within 48 hours of the user's last message)."""
        content = reply if isinstance(reply, str) else self.render(reply, self.session_id(user))
        if self.client is None:
            log.warning("answer for a WeChat user dropped: no customer-service client configured")
            return
        try:
            await asyncio.to_thread(self.client.message.send_text, user, content)
        except Exception:
            log.exception("customer-service message failed")


    async def deliver(self, user: str, message: str, menu: tuple[str, ...] = (), lang: str = "zh") -> None:
        """A staff message or an alert notice as customer-service messages (cut at 2,047 bytes; ``menu``
        names links for the last one, e.g. ("stop_alerts",), in ``lang``); raises when WeChat refuses it."""
        if self.client is None:
            raise RuntimeError("customer-service messages need CPC_WECHAT_APPID and CPC_WECHAT_SECRET")
        links = menu_lines(menu, lang)
        rest: str | None = message
        while rest:
            head, rest = cut(rest, lang, MAX_BYTES - utf8_len(links))
            await asyncio.to_thread(self.client.message.send_text, user, head + ("" if rest else links))


def wechat_router(connector: WeChatConnector) -> APIRouter:
    """GET answers WeChat's URL verification; POST receives messages and events."""
    router = APIRouter()

    @router.get(PATH, include_in_schema=False)
    async def wechat_verify(signature: str = "", timestamp: str = "", nonce: str = "", echostr: str = "") -> Response:
        connector.check(signature, timestamp, nonce)
        if not echostr:
            raise HTTPException(400, "echostr is required")
        # the signature covers only (timestamp, nonce): each pair verifies once within the window,
        # remembered in the state store every worker shares, so a captured URL cannot be replayed
        connector.first_use(f"verify:{timestamp}:{nonce}")
        return PlainTextResponse(echostr)

    @router.post(PATH, include_in_schema=False)
    async def wechat_receive(request: Request) -> Response:
        body = await read_body(request, MAX_BODY)
        return await connector.handle(request.query_params, body)

    return router
