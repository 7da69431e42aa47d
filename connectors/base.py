"""What every channel shares: the channel interface, the conversation runner, delivery
de-duplication, length-limited splitting and the few texts that belong to channels.

A channel turns an inbound request into an :class:`Inbound` (user key, text, language hint),
renders a :class:`~assistant.dialogue.Reply` into its own payload and can send a message later,
for answers that were not ready while the platform waited.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, TypeVar

from fastapi import HTTPException, Request

from assistant import Assistant, Reply, SessionConflict, StateStore, TokenBuckets, retry_after
from corpus import has_han

T = TypeVar("T")
log = logging.getLogger("cpc.connectors")
LANGS = ("pt", "zh", "en")

# Texts that only channels say (everything else comes from the assistant).
TEXTS: dict[str, dict[str, str]] = {
    "media": {
        "pt": "Por agora só leio mensagens escritas. Escreva o que procura, por exemplo «fabricantes de moldes na China».",
        "zh": "抱歉，目前只能处理文字消息。请直接输入您的问题，例如“葡萄牙的软木合作伙伴”。",
        "en": "For now I only read typed messages. Please type what you are looking for, e.g. “Portuguese cork companies”.",
    },
    "stale": {
        "pt": "Esta lista já não está atual: faça uma nova pesquisa.",
        "zh": "这个列表已过期，请重新搜索。",
        "en": "This list is out of date: please search again.",
    },
    "error": {
        "pt": "Desculpe, algo correu mal. Tente de novo daqui a pouco.",
        "zh": "抱歉，系统暂时出错，请稍后再试。",
        "en": "Sorry, something went wrong. Please try again shortly.",
    },
    "cut": {
        "pt": "(Escreva «mais» para ver o resto.)",
        "zh": "（回复“更多”查看更多内容）",
        "en": "(Reply “more” to see the rest.)",
    },
    "slow_down": {
        "pt": "Está a enviar mensagens depressa demais. Aguarde {seconds} s e escreva de novo, por favor.",
        "zh": "您发送消息太频繁了，请等{seconds}秒后再试。",
        "en": "You are sending messages too fast. Please wait {seconds} s and try again.",
    },
    "share_contact": {"pt": "📱 Partilhar o meu número", "zh": "📱 分享我的手机号", "en": "📱 Share my phone number"},
    "not_own_contact": {
        "pt": "Partilhe o seu próprio contacto (botão abaixo) ou escreva um e-mail ou telefone.",
        "zh": "请分享您本人的联系方式（下方按钮），或直接输入邮箱或电话。",
        "en": "Please share your own contact (button below) or type an e-mail or phone number.",
    },
    "more_button": {"pt": "Mais resultados ▸", "zh": "更多结果 ▸", "en": "More results ▸"},
    "interest_button": {"pt": "🤝 Tenho interesse", "zh": "🤝 我感兴趣", "en": "🤝 I'm interested"},
    # the alert button's label is also what its press says (assistant/_alerts.py reads it as a subscription)
    "alert_button": {"pt": "Avisar-me de novos", "zh": "有新的通知我", "en": "Tell me when new ones fit"},
    # what "stop alerts" says (a WeChat menu link under an alert notice sends it; read by meaning)
    "say_stop_alerts": {"pt": "parar alertas", "zh": "停止提醒", "en": "stop alerts"},
    # what a button press says to the assistant, in the session's language
    "say_more": {"pt": "mais", "zh": "更多", "en": "more"},
    "say_details": {"pt": "detalhes do {n}", "zh": "第{n}个的详细信息", "en": "details of {n}"},
    "say_interest": {"pt": "tenho interesse no {n}", "zh": "我对第{n}个感兴趣", "en": "I'm interested in {n}"},
}


def text(key: str, lang: str | None, **values: object) -> str:
    table = TEXTS[key]
    return table.get(lang or "en", table["en"]).format(**values)


def lang_hint(code: str | None) -> str | None:
    """A platform language code ("pt-BR", "zh-hans", "en") as one of ours; None when unknown."""
    code = (code or "").strip().lower()
    return next((lang for lang in LANGS if code.startswith(lang)), None)


@dataclass
class Inbound:
    """One user message as the assistant sees it."""

    user: str  # the channel's user or chat key
    text: str
    lang_hint: str | None = None
    message_id: str | None = None
    group: bool = False  # a chat several people share (a Telegram group): nothing personal is taken there


class Channel(ABC):
    """The three things a connector does besides routing."""

    name: str  # the channel recorded with each query ("telegram", "wechat")
    prefix: str  # of session ids ("tg", "wx")

    def session_id(self, user: str) -> str:
        return f"{self.prefix}-{user}"

    @abstractmethod
    def inbound(self, raw: Any) -> Inbound:
        """The user key, text and language hint of a platform message."""

    @abstractmethod
    def render(self, reply: Reply, session_id: str) -> Any:
        """The channel's payload for a reply (formatting, escaping, length limits, buttons)."""

    @abstractmethod
    async def send(self, user: str, reply: Reply | str) -> None:
        """Deliver a message outside a request/response exchange."""

    async def deliver(self, user: str, message: str, menu: tuple[str, ...] = (), lang: str | None = None) -> None:
        """A message from staff or an alert notice; raises when the platform refuses it, so staff are
        told. ``menu`` names what the user may answer with one tap (e.g. ("stop_alerts",)), in ``lang``,
        on channels that can offer it."""
        await self.send(user, message)


class NotReady(Exception):
    """The assistant (index) is not loaded yet: the platform should retry later."""


class Conversation:
    """Runs the synchronous assistant in a worker thread, one turn at a time per session.

    Each user (session) has a message budget (``per_minute``, 0 for none), kept in the state
    store so several worker processes share it: over it, the user is asked to slow down in their
    language, and the assistant is not run at all.
    """

    def __init__(self, assistant: Callable[[], Assistant], channel: str, per_minute: int = 0):
        self._assistant = assistant
        self.channel = channel
        self.limits = TokenBuckets(per_minute, scope="chat")
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def assistant(self) -> Assistant:
        return self._assistant()

    @property
    def store(self) -> StateStore | None:
        """The state store every worker process shares; None until the assistant is ready."""
        try:
            return self.assistant.store
        except NotReady:
            return None

    def lock(self, session_id: str) -> asyncio.Lock:
        """Hold this while answering so two messages of one user never interleave."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        return lock

    def session_lang(self, session_id: str) -> str | None:
        return self.assistant.store.load(session_id).lang

    def _seed(self, assistant: Assistant, session_id: str, hint: str | None) -> None:
        """A new session starts in the platform's language, so "mais"/"更多" alone are understood."""
        if hint not in LANGS:
            return
        state, version = assistant.store.load_versioned(session_id)
        if state.lang is None:
            state.lang = hint
            try:
                assistant.store.save(session_id, state, version=version)
            except SessionConflict:
                pass  # another worker saved the session first: it has a language by now

    def seed(self, session_id: str, hint: str | None) -> None:
        self._seed(self.assistant, session_id, hint)

    def slow_down(self, session_id: str, message: str, hint: str | None, wait: float) -> Reply:
        """The "slow down" reply, in the message's language as far as one can tell without the assistant."""
        lang = "zh" if has_han(message) else (self.session_lang(session_id) or hint or "en")
        return Reply(text("slow_down", lang, seconds=retry_after(wait)), lang, "rate_limited")

    async def respond(self, session_id: str, message: str, hint: str | None = None, group: bool = False) -> Reply:
        assistant = self.assistant
        self.limits.store = assistant.store
        wait = self.limits.take(session_id)
        if wait:
            return await asyncio.to_thread(self.slow_down, session_id, message, hint, wait)

        def turn() -> Reply:
            self._seed(assistant, session_id, hint)
            return assistant.respond(session_id, message, self.channel, group=group)

        return await asyncio.to_thread(turn)


class TTLCache(Generic[T]):
    """A bounded in-memory map whose entries expire; the oldest go first when full."""

    def __init__(self, ttl: float, max_items: int = 10_000):
        self.ttl = ttl
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def _purge(self, now: float) -> None:
        while self._items:
            key, (stamp, _) = next(iter(self._items.items()))
            if now - stamp <= self.ttl and len(self._items) <= self.max_items:
                break
            self._items.popitem(last=False)

    def get(self, key: str) -> T | None:
        now = time.monotonic()
        self._purge(now)
        item = self._items.get(key)
        return item[1] if item else None

    def put(self, key: str, value: T) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        self._purge(time.monotonic())

    def pop(self, key: str) -> T | None:
        item = self._items.pop(key, None)
        return item[1] if item else None

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Delivery:
    """The processing of one platform message id; a retry of the id joins it."""

    task: asyncio.Task
    late: bool = False  # the answer goes out later through the channel's send
    extra: dict[str, Any] = field(default_factory=dict)


class Deduplicator:
    """Process each delivery id once; a retried id gets the same (possibly pending) result.

    With a state store, the id is also claimed there (under ``namespace``), so of several worker
    processes receiving the same delivery only one processes it."""

    def __init__(self, ttl: float = 900, max_items: int = 10_000, namespace: str = "delivery"):
        self.ttl = ttl
        self.namespace = namespace
        self._seen: TTLCache[Delivery] = TTLCache(ttl, max_items)
        self._running: set[asyncio.Task] = set()  # the event loop only keeps weak references

    def _claim(self, key: str, store: StateStore | None) -> bool:
        if store is None:
            return True
        try:
            return store.claim(f"{self.namespace}:{key}", self.ttl)
        except Exception:  # the store is unreachable: de-duplicate within this process only
            log.warning("delivery %s not claimed in the state store", key, exc_info=True)
            return True

    def start(self, key: str, work: Callable[[], Awaitable[T]],
              store: StateStore | None = None) -> tuple[Delivery | None, bool]:
        """The delivery for ``key`` and whether it is new (``work`` started) or a retry; the
        delivery is None when another process claimed ``key`` (it answers, this one does not)."""
        found = self._seen.get(key)
        if found is not None:
            return found, False
        if not self._claim(key, store):
            return None, False
        task = asyncio.ensure_future(work())
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        delivery = Delivery(task)
        self._seen.put(key, delivery)
        return delivery, True


def utf16_len(s: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(s.encode("utf-16-le")) // 2


def utf8_len(s: str) -> int:
    return len(s.encode("utf-8"))


def wrap_line(line: str, limit: int, size: Callable[[str], int]) -> list[str]:
    """Cut one over-long line into pieces that fit, at spaces where possible."""
    pieces: list[str] = []
    while size(line) > limit:
        lo, hi = 1, len(line)  # longest prefix that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if size(line[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        cut = line.rfind(" ", 0, lo + 1)
        if cut < lo // 2:
            cut = lo
        pieces.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    if line or not pieces:
        pieces.append(line)
    return pieces


def split_lines(lines: list[str], limit: int, size: Callable[[str], int]) -> list[str]:
    """Pack lines into messages of at most ``limit`` (by ``size``), breaking only between lines.

    Every line must already fit on its own (see :func:`wrap_line`).
    """
    chunks: list[str] = []
    current: list[str] = []
    for line in lines:
        if current and size("\n".join([*current, line])) > limit:
            chunks.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        chunks.append("\n".join(current))
    return [c for c in chunks if c.strip()] or [""]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing anything larger than ``limit`` bytes with 413."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"request body over {limit} bytes")
    return bytes(body)
