"""Telegram: a webhook route feeding python-telegram-bot's Application, and long polling for development.

Replies go out with sendMessage in HTML parse mode (everything escaped), split at 4,096
characters on line boundaries, with inline buttons for "details of N" (ℹ️), "I'm interested in N"
(🤝) and "more". Button data
is a short token pointing at server-side state, so it stays under Telegram's 64 bytes and a
button from an old list cannot act on a newer one.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import re
import secrets
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Callable

from fastapi import APIRouter, HTTPException, Request
from telegram import (Bot, InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, LinkPreviewOptions, ReplyKeyboardMarkup,
                      ReplyKeyboardRemove, Update)
from telegram.constants import ParseMode
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from assistant import Assistant, Reply, say, suggestions

from .base import Channel, Conversation, Deduplicator, Inbound, NotReady, lang_hint, read_body, split_lines, text, utf16_len, wrap_line

log = logging.getLogger("cpc.telegram")

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT = 4096  # sendMessage text limit
MAX_BODY = 1 << 20
ALLOWED_UPDATES = ["message", "callback_query"]
LIST_INTENTS = {"search", "refine", "more", "back"}
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
BUTTON_TTL = 2 * 86400  # seconds a result list's buttons keep working (kept in the shared state store)
_CALLBACK = re.compile(r"^(?:m|a|([di]):(\d{1,3})):([A-Za-z0-9_-]{4,16})$")  # more, alert, details, interest
STOP_ALERTS = "s"  # the button under an alert notice: says "stop alerts" for this chat


@dataclass
class ButtonState:
    """What a result list's buttons refer to: its session, its search and its numbered ids."""

    session_id: str
    query: str | None
    ids: dict[int, str]

    def to_json(self) -> dict:
        return {"session_id": self.session_id, "query": self.query, "ids": {str(n): i for n, i in self.ids.items()}}

    @classmethod
    def from_json(cls, data: dict | None) -> "ButtonState | None":
        if data is None:
            return None
        return cls(data["session_id"], data["query"], {int(n): i for n, i in data["ids"].items()})


class TelegramConnector(Channel):
    name = "telegram"
    prefix = "tg"

    def __init__(self, settings, assistant: Callable[[], Assistant], *, webhook: bool = True):
        if settings.telegram_token is None:
            raise ValueError("CPC_TELEGRAM_TOKEN is not set")
        builder = Application.builder().token(settings.telegram_token.get_secret_value()).base_url(settings.telegram_api_base)
        if webhook:
            builder = builder.updater(None)  # updates arrive through our route
        self.application: Application = builder.build()
        self.bot = self.application.bot
        self.secret = settings.telegram_secret.get_secret_value() if settings.telegram_secret else ""
        self.conversation = Conversation(assistant, self.name, settings.chat_rate_limit_per_minute)
        self.dedup = Deduplicator(ttl=3600, namespace="tg-update")
        self._start_lock = asyncio.Lock()
        self._install()

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> bool:
        """Initialise (getMe) and start the Application; False, logged, when Telegram is unreachable."""
        async with self._start_lock:
            if self.application.running:
                return True
            try:
                await self.application.initialize()
                await self.application.start()
            except Exception:
                log.exception("could not start the Telegram bot; the webhook answers 503 until it can")
                return False
            log.info("telegram bot @%s ready", self.bot.username)
            return True

    async def stop(self) -> None:
        try:
            if self.application.running:
                await self.application.stop()
            await self.application.shutdown()
        except Exception:  # pragma: no cover - shutting down anyway
            log.exception("telegram shutdown")

    async def feed(self, data: dict) -> bool:
        """Process one webhook update; False when its update_id was seen before."""
        if not await self.start():
            raise HTTPException(503, "the Telegram bot is not connected yet")
        try:
            self.conversation.assistant
        except NotReady:
            raise HTTPException(503, "the index is not loaded yet") from None
        try:
            update = Update.de_json(data, self.bot)
        except Exception:
            raise HTTPException(400, "not a Telegram update") from None
        delivery, new = self.dedup.start(str(update.update_id), lambda: self.application.process_update(update),
                                         self.conversation.store)
        if new:
            try:
                await asyncio.shield(delivery.task)
            except Exception:
                log.exception("telegram update %s failed", update.update_id)
        return new

    # -- handlers -----------------------------------------------------------------------
    def _install(self) -> None:
        app = self.application
        message = filters.UpdateType.MESSAGE
        app.add_handler(CommandHandler("start", self.on_start, filters=message))
        app.add_handler(CommandHandler("help", self.on_help, filters=message))
        app.add_handler(MessageHandler(message & filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(MessageHandler(message & filters.CONTACT, self.on_contact))
        app.add_handler(CallbackQueryHandler(self.on_button))
        app.add_handler(MessageHandler(message & filters.COMMAND, self.on_other_command))
        # photos, voice, stickers, locations ...; group service messages (joins, leaves, pins,
        # new titles) are not something a user said to the bot and get no handler, so no reply
        app.add_handler(MessageHandler(message & filters.ATTACHMENT, self.on_other))
        app.add_error_handler(self.on_error)

    def _who(self, update: Update) -> tuple[str, str, str | None]:
        chat = update.effective_chat
        user = update.effective_user
        key = str(chat.id)
        return key, self.session_id(key), lang_hint(user.language_code if user else None)

    async def _command(self, update: Update, key: str) -> None:
        user, sid, hint = self._who(update)
        async with self.conversation.lock(sid):
            self.conversation.seed(sid, hint)
            lang = hint or self.conversation.session_lang(sid) or "en"
            await self.send(user, Reply(say(key, lang), lang, key))

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._command(update, "greeting")

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._command(update, "help")

    def addressed_to_us(self, message) -> bool:
        """False for ``/cmd@otherbot``: in a group, commands for other bots reach us too."""
        command = (message.text or "/").split(maxsplit=1)[0]  # "/help@otherbot" of "/help@otherbot now"
        _, at, bot = command.partition("@")
        return not at or bot.lower() == (self.bot.username or "").lower()

    async def on_other_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command we do not have gets the help text (python-telegram-bot's CommandHandler has
        already passed over /start and /help addressed to other bots, so they land here too)."""
        if self.addressed_to_us(update.effective_message):
            await self._command(update, "help")

    @staticmethod
    def in_group(update: Update) -> bool:
        """A chat other people read (group, supergroup, channel): its session is the whole group's."""
        chat = update.effective_chat
        return chat is not None and chat.type != "private"

    def inbound(self, update: Update) -> Inbound:
        user, _, hint = self._who(update)
        return Inbound(user, update.effective_message.text or "", hint, str(update.update_id), self.in_group(update))

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._converse(self.inbound(update))

    async def on_contact(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The "share contact" button: the user's own phone number answers the contact question."""
        shared = update.effective_message.contact
        user, sid, hint = self._who(update)
        if self.in_group(update):  # a phone number is no answer to give in a group
            await self.send(user, say("private_only", self.conversation.session_lang(sid) or hint or "en"))
            return
        if shared.user_id is not None and update.effective_user and shared.user_id != update.effective_user.id:
            await self.send(user, text("not_own_contact", self.conversation.session_lang(sid) or hint))
            return
        phone = shared.phone_number if shared.phone_number.startswith("+") else "+" + shared.phone_number
        await self._converse(Inbound(user, phone, hint, str(update.update_id)))

    async def _converse(self, message: Inbound) -> None:
        sid = self.session_id(message.user)
        async with self.conversation.lock(sid):
            try:
                reply = await self.conversation.respond(sid, message.text, message.lang_hint, message.group)
            except Exception:
                log.exception("assistant failed")
                reply = Reply(text("error", message.lang_hint), message.lang_hint or "en", "error")
            await self.send(message.user, reply)

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user, sid, hint = self._who(update)
        lang = self.conversation.session_lang(sid) or hint
        await self.send(user, text("media", lang))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        hint = lang_hint(query.from_user.language_code)
        if query.data == STOP_ALERTS:
            await self._stop_alerts(update, hint)
            return
        m = _CALLBACK.match(query.data or "")
        button = ButtonState.from_json(self.conversation.assistant.store.get(f"tg-button:{m.group(3)}")) if m else None
        chat = update.effective_chat
        sid = self.session_id(str(chat.id)) if chat else None
        if button is None or button.session_id != sid:
            await query.answer(text("stale", hint))
            return
        async with self.conversation.lock(sid):
            state = self.conversation.assistant.store.load(sid)
            lang = state.lang or hint or "en"
            if not state.query:  # the conversation expired under the list: say so, and offer a new search
                await query.answer()
                await self.send(str(chat.id), Reply(say("no_list", lang), lang, m.group(1) and "details" or "more",
                                                    suggestions=suggestions("start", lang), step="no_list"))
                return
            if m.group(1) is None:  # more, or "tell me when new ones fit" (said as the button's label)
                key = "alert_button" if query.data.startswith("a:") else "say_more"
                phrase = text(key, lang) if state.query == button.query else None
            else:
                wanted = button.ids.get(int(m.group(2)))
                key = "say_details" if m.group(1) == "d" else "say_interest"
                phrase = text(key, lang, n=state.shown.index(wanted) + 1) if wanted in state.shown else None
            if phrase is None:
                await query.answer(text("stale", lang))
                return
            await query.answer()
            reply = await self.conversation.respond(sid, phrase, lang, self.in_group(update))
            await self.send(str(chat.id), reply)

    async def _stop_alerts(self, update: Update, hint: str | None) -> None:
        """The notice's button says "stop alerts" for the chat that pressed it, in its language: the
        same words typed would do the same, so no state rides on the button."""
        query, chat = update.callback_query, update.effective_chat
        if chat is None:
            await query.answer(text("stale", hint))
            return
        sid = self.session_id(str(chat.id))
        async with self.conversation.lock(sid):
            lang = self.conversation.assistant.store.load(sid).lang or hint or "en"
            await query.answer()
            reply = await self.conversation.respond(sid, text("say_stop_alerts", lang), lang, self.in_group(update))
            await self.send(str(chat.id), reply)

    async def deliver(self, user: str, message: str, menu: tuple[str, ...] = (), lang: str | None = None) -> None:
        """A staff message or an alert notice; an alert notice ("stop_alerts" in ``menu``) carries a
        button that stops this chat's alerts."""
        if "stop_alerts" not in menu:
            await self.send(user, message)
            return
        button = InlineKeyboardButton("🔕 " + text("say_stop_alerts", lang), callback_data=STOP_ALERTS)
        chunks = self.render(Reply(message, lang or "en", "notice"), self.session_id(user))
        for i, (body, markup) in enumerate(chunks):
            last = i == len(chunks) - 1
            await self.bot.send_message(chat_id=int(user), text=body, parse_mode=ParseMode.HTML,
                                        reply_markup=InlineKeyboardMarkup([[button]]) if last else markup,
                                        link_preview_options=NO_PREVIEW)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = getattr(update, "update_id", None)  # not the update itself: it holds the user's message
        log.error("telegram handler failed on update %s", update_id, exc_info=context.error)

    # -- rendering and sending ----------------------------------------------------------
    def render(self, reply: Reply, session_id: str) -> list[tuple[str, InlineKeyboardMarkup | None]]:
        """HTML messages of at most 4,096 characters; the buttons ride on the last one."""
        heads = {f"{c.number}. {c.name}" for c in reply.results}
        lines: list[str] = []
        for raw in reply.text.split("\n"):
            for piece in wrap_line(raw, MAX_TEXT, lambda s: utf16_len(html.escape(s, quote=False)) + 7):
                lines.append(_line_html(piece, heads))
        chunks = split_lines(lines, MAX_TEXT, utf16_len)
        markup = self._keyboard(reply, session_id)
        return [(c, markup if i == len(chunks) - 1 else None) for i, c in enumerate(chunks)]

    def _keyboard(self, reply: Reply, session_id: str):
        if reply.form:  # a contact request: Telegram's own "share contact" button when we ask for a contact
            if reply.form.get("step") != "contact":
                return ReplyKeyboardRemove()
            rows = [[KeyboardButton(text("share_contact", reply.lang), request_contact=True)]]
            rows += [[KeyboardButton(s)] for s in reply.suggestions]
            return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)
        if not reply.results or reply.intent not in LIST_INTENTS:
            return None
        token = secrets.token_urlsafe(6)
        query = self.conversation.assistant.store.load(session_id).query
        button = ButtonState(session_id, query, {c.number: c.id for c in reply.results})
        self.conversation.assistant.store.put(f"tg-button:{token}", button.to_json(), BUTTON_TTL)
        details = [InlineKeyboardButton(f"ℹ️ {c.number}", callback_data=f"d:{c.number}:{token}") for c in reply.results]
        interest = [InlineKeyboardButton(f"🤝 {c.number}", callback_data=f"i:{c.number}:{token}") for c in reply.results]
        more = [InlineKeyboardButton(text("more_button", reply.lang), callback_data=f"m:{token}"),
                InlineKeyboardButton(text("interest_button", reply.lang), callback_data=f"i:{reply.results[0].number}:{token}")]
        alert = [InlineKeyboardButton("🔔 " + text("alert_button", reply.lang), callback_data=f"a:{token}")]
        return InlineKeyboardMarkup([details, interest, more, alert])

    async def send(self, user: str, reply: Reply | str) -> None:
        if isinstance(reply, str):
            reply = Reply(reply, "en", "notice")
        for body, markup in self.render(reply, self.session_id(user)):
            await self.bot.send_message(chat_id=int(user), text=body, parse_mode=ParseMode.HTML,
                                        reply_markup=markup, link_preview_options=NO_PREVIEW)


def _line_html(line: str, heads: set[str]) -> str:
    """One escaped line; a result's "N. Name" opening in bold."""
    for head in heads:
        if line.startswith(head):
            return f"<b>{html.escape(head, quote=False)}</b>{html.escape(line[len(head):], quote=False)}"
    return html.escape(line, quote=False)


def telegram_router(connector: TelegramConnector) -> APIRouter:
    """The webhook route; the Application starts and stops with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(_app):
        await connector.start()
        try:
            yield
        finally:
            await connector.stop()

    router = APIRouter(lifespan=lifespan)

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def telegram_webhook(request: Request) -> dict:
        given = request.headers.get(SECRET_HEADER, "")
        if not connector.secret or not hmac.compare_digest(given.encode(), connector.secret.encode()):
            raise HTTPException(403, "missing or wrong secret token")
        body = await read_body(request, MAX_BODY)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            raise HTTPException(400, "the body is not JSON") from None
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            raise HTTPException(400, "not a Telegram update")
        new = await connector.feed(data)
        return {"ok": True, "duplicate": not new}

    return router


# -- command line ---------------------------------------------------------------------------
def run_polling(settings) -> int:
    """``cpc telegram poll``: long polling for development (deletes any webhook first)."""
    from assistant import open_catalog, open_state_store

    catalog = open_catalog(settings)
    store = open_state_store(settings)
    assistant = Assistant(lambda: catalog.engine, store)
    connector = TelegramConnector(settings, lambda: assistant, webhook=False)
    log.info("polling Telegram for updates; Ctrl-C stops")
    try:
        connector.application.run_polling(allowed_updates=ALLOWED_UPDATES)
    finally:
        store.close()
        catalog.close()
    return 0


def set_webhook(settings, url: str) -> dict:
    """``cpc telegram set-webhook URL``: register our route with Telegram, with the secret token."""
    if settings.telegram_token is None or settings.telegram_secret is None:
        raise ValueError("set CPC_TELEGRAM_TOKEN and CPC_TELEGRAM_SECRET first")
    if not url.rstrip("/").endswith(WEBHOOK_PATH):
        url = url.rstrip("/") + WEBHOOK_PATH

    async def call() -> dict:
        async with Bot(settings.telegram_token.get_secret_value(), base_url=settings.telegram_api_base) as bot:
            await bot.set_webhook(url, secret_token=settings.telegram_secret.get_secret_value(),
                                  allowed_updates=ALLOWED_UPDATES)
            info = await bot.get_webhook_info()
            return {"url": info.url, "pending_update_count": info.pending_update_count}

    return asyncio.run(call())
