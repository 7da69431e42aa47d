"""Alert routes and the senders that deliver digests on each channel.

``POST /api/v1/alerts`` subscribes from a search (the query and filters as sent to
``/api/v1/search``, and where to say it: the web chat's session and/or an e-mail address);
``DELETE /api/v1/alerts/{id}?token=…`` and ``GET|POST /api/v1/alerts/unsubscribe?token=…`` (the
e-mail's one-click link) stop one. Telegram and WeChat users subscribe by saying so in the chat
(``_alerts.handle_text``): a chat identity cannot be claimed through a public route.
The router's lifespan matches what a restart left marked "to match" and delivers once at start-up,
then every ``CPC_ALERTS_EVERY_SECONDS`` (default 300; 0: only at start-up), so records left unmatched,
digests held back by the once-a-day rule, failed sends and notices left by a restart go out without
another ingest. Matching runs in its own niced process (``_alerts_worker``).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Any, Sequence

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from . import _alerts as alerts
from . import _mail as mail
from ._auth import require_staff
from ._schemas import SearchFilters, error_responses

log = logging.getLogger("cpc.alerts")

EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
TOKEN = Query(min_length=3, max_length=64, pattern=r"^[0-9]{1,18}\.[0-9a-f]{32}$")


class AlertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "fabricantes de moldes na China", "filters": {"country": "CN"}, "email": "ana@example.pt"}]})

    query: str = Field(min_length=1, max_length=500)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    lang: str | None = Field(None, pattern="^(pt|zh|en)$", description="Language of the notices (default: the query's)")
    session_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$",
                                   description="The web chat's session_id: notices appear in the chat when the user returns")
    email: str | None = Field(None, max_length=254, pattern=EMAIL, description="Notices by e-mail, with a one-click unsubscribe")


class AlertCreated(BaseModel):
    ids: list[int]
    lang: str
    understood: dict[str, Any]


def _store(request: Request):
    assistant = getattr(request.app.state, "assistant", None)
    catalog = getattr(request.app.state, "catalog", None)
    if assistant is None or catalog is None or not catalog.ready:
        raise HTTPException(503, "the index is not loaded yet")
    return assistant.store


def _key(store) -> bytes:
    return store.secret("alerts_key")


def public_base(request: Request) -> str:
    return os.environ.get("CPC_PUBLIC_URL") or str(request.base_url).rstrip("/")


def unsubscribe_url(store, sub: dict[str, Any]) -> str:
    base = os.environ.get("CPC_PUBLIC_URL") or sub.get("base_url") or ""
    return f"{base.rstrip('/')}/api/v1/alerts/unsubscribe?token={alerts.token(_key(store), sub['id'])}"


# -- senders --------------------------------------------------------------------------------------
def senders(app) -> dict[str, alerts.Sender]:
    """The channels this server can deliver on: web always, Telegram and WeChat when their connectors
    are mounted, e-mail when SMTP is configured."""
    store = app.state.assistant.store
    settings = app.state.settings
    out: dict[str, alerts.Sender] = {}

    async def web(sub, text, notices):  # shown by GET /api/v1/chat/messages, like a staff message
        await asyncio.to_thread(store.add_staff_message, 0, sub["address"], "web", text, "waiting", "alerts")

    out["web"] = web
    telegram = getattr(app.state, "telegram", None)
    if telegram is not None:
        async def tg(sub, text, notices):
            await telegram.deliver(sub["address"].split("-", 1)[1], text, menu=("stop_alerts",), lang=sub["lang"])  # a "stop" button

        out["telegram"] = tg
    wechat = getattr(app.state, "wechat", None)
    if wechat is not None:
        async def wx(sub, text, notices):
            openid = sub["address"].split("-", 1)[1]
            if time.time() - (sub["last_seen"] or sub["created"]) <= alerts.WECHAT_WINDOW:
                await wechat.deliver(openid, text, menu=("stop_alerts",), lang=sub["lang"])  # a "stop alerts" link
                return
            template = os.environ.get("CPC_WECHAT_ALERT_TEMPLATE")
            if not template or wechat.client is None:
                raise alerts.NotYet("outside WeChat's 48-hour window and no subscription-message template")
            names = "、".join(n["record_name"] for n in notices)
            # the official account's subscription message (message/subscribe/bizsend); "thing" fields hold 20 characters
            data = {"thing1": {"value": sub["query"][:20]}, "thing2": {"value": names[:20]}}
            result = await asyncio.to_thread(wechat.client.message.send_subscribe_message, openid, template, data)
            if isinstance(result, dict) and result.get("errcode"):
                raise RuntimeError(f"WeChat refused the subscription message: {result.get('errcode')}")

        out["wechat"] = wx
    if settings.smtp_host and settings.smtp_from:
        async def email(sub, text, notices):
            url = unsubscribe_url(store, sub)
            msg = alerts.alert_email(settings, sub, alerts.digest(sub, notices, url), url)
            await asyncio.to_thread(mail.send, settings, msg)

        out["email"] = email
    return out


async def run_delivery(app) -> alerts.DeliveryStats:
    lease = float(os.environ.get("CPC_ALERTS_LEASE_SECONDS", alerts.LOCK_TTL))
    return await alerts.deliver(app.state.assistant.store, senders(app), lock_ttl=lease)


async def after_ingest(app, ids: list[str]) -> None:
    """The ingest hook: mark the new or changed records "to match" (durable), match them in the
    matching process (``_alerts_worker``), then send what is due. Never fails the ingest: what is
    marked and not matched is matched by the next run (start-up, the delivery loop, the next ingest)."""
    try:
        store = app.state.assistant.store
        await asyncio.to_thread(store.mark_to_match, ids)
        await match_marked(app, ids)
        await run_delivery(app)
    except Exception:
        log.exception("alerts after an ingest failed; the records marked are matched and their notices sent by the next run")


MATCH_WAIT = 600.0  # seconds an ingest waits for another worker's matcher to match its records


async def match_marked(app, ingested: Sequence[str] = ()) -> alerts.MatchStats | None:
    """Every record marked "to match", matched off the serving process; None when nothing was
    marked, or another worker's matcher is at it: then an ingest waits until its own ``ingested``
    records are matched (its answer means they are), at most ``MATCH_WAIT`` seconds."""
    from . import _alerts_worker as worker

    store = app.state.assistant.store
    if not ingested and (await asyncio.to_thread(store.to_match))[1] is None:
        return None  # the periodic run: no process started for nothing
    stats, seconds = await asyncio.to_thread(worker.run, app.state.catalog, store)
    if stats is not None and stats.records:
        log.info("alerts: %d new notices for %d records across %d subscriptions (%.2f s; %d distinct needs judged in "
                 "%.2f s)", stats.notices, stats.records, stats.subscriptions, seconds, stats.searches, stats.seconds)
    if stats is None and ingested:
        mine, deadline = set(ingested), time.monotonic() + MATCH_WAIT
        while mine & set((await asyncio.to_thread(store.to_match))[0]) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    return stats


# -- routes ---------------------------------------------------------------------------------------
@asynccontextmanager
async def lifespan(app):
    every = float(os.environ.get("CPC_ALERTS_EVERY_SECONDS", "300"))

    async def resume() -> None:  # records a restart left marked "to match", and notices left unsent
        await match_marked(app)
        await run_delivery(app)

    async def loop():
        # the app's own lifespan opens the catalog and the store beside this one: start once they are there
        while getattr(app.state, "assistant", None) is None or not getattr(getattr(app.state, "catalog", None), "ready", False):
            await asyncio.sleep(0.5)
        first = True
        while True:
            if not first:
                await asyncio.sleep(every)
            first = False
            try:
                await resume()
            except Exception:
                log.exception("alert matching or delivery failed; retried on the next run")
            if every <= 0:
                return

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()


router = APIRouter(prefix="/api/v1", tags=["alerts"], lifespan=lifespan)
staff_router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_staff)])


@router.post("/alerts", response_model=AlertCreated, status_code=201, responses=error_responses(400, 404, 409, 413, 422, 429, 503))
def create_alert(body: AlertRequest, request: Request) -> dict:
    """Tell me when something new fits: keeps the search (query, filters, what was understood) and
    sends new matches after each ingest, at most once a day, on the web chat and/or by e-mail."""
    store = _store(request)
    if not body.session_id and not body.email:
        raise HTTPException(422, "give a session_id (web chat) or an email, or both: where should the notices go?")
    if body.email and "email" not in senders(request.app):  # before anything is written
        raise HTTPException(409, "e-mail alerts are off on this server: CPC_SMTP_HOST and CPC_SMTP_FROM are not set")
    catalog = request.app.state.catalog
    f = body.filters
    filters = catalog.resolve_filters(f.country, f.region, f.kind, f.sectors)
    ids = []
    base = public_base(request)
    if body.session_id:
        from ._sessions import browser_of

        conversation = request.app.state.web_sessions.resolve(body.session_id, browser_of(request))
        if conversation is None:
            raise HTTPException(404, "no conversation for this session_id")
        ids.append(alerts.subscribe(store, catalog.engine, "web", conversation, body.query, filters, body.lang, base_url=base))
    if body.email:
        ids.append(alerts.subscribe(store, catalog.engine, "email", body.email.lower(), body.query, filters, body.lang,
                                    email=body.email, base_url=base))
    sub = store.alert(ids[0])
    return {"ids": ids, "lang": sub["lang"], "understood": sub["understood"]["needs"]}


def _stop(request: Request, token: str) -> dict[str, Any]:
    store = _store(request)
    alert_id = alerts.token_id(_key(store), token)
    sub = None if alert_id is None else store.alert(alert_id)
    if sub is None:
        raise HTTPException(404, "no alert for this token")
    store.stop_alert(alert_id)
    return sub


@router.delete("/alerts/{alert_id}", responses=error_responses(404, 422, 429, 503))
def delete_alert(request: Request, alert_id: int, token: str = TOKEN) -> dict:
    """Stop one alert (the token comes with every e-mail notice)."""
    sub = _stop(request, token)
    if sub["id"] != alert_id:
        raise HTTPException(404, "no alert for this token")
    return {"stopped": alert_id}


@router.post("/alerts/unsubscribe", response_class=HTMLResponse, include_in_schema=False)  # a link target, not API
def unsubscribe_one_click(request: Request, token: str = TOKEN) -> HTMLResponse:
    """The one-click unsubscribe a mail client posts (RFC 8058)."""
    return unsubscribe(request, token)


@router.get("/alerts/unsubscribe", response_class=HTMLResponse, include_in_schema=False)  # a link target, not API
def unsubscribe(request: Request, token: str = TOKEN) -> HTMLResponse:
    """The link in e-mail notices: stops that alert and says so in the subscriber's language."""
    try:
        sub = _stop(request, token)
    except HTTPException:
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><p>{html.escape(alerts.say('bad_link', 'en'))}</p>", 404)
    text = alerts.say("unsubscribed_page", sub["lang"], query=sub["query"])
    return HTMLResponse(f"<!doctype html><html lang={sub['lang']}><meta charset=utf-8><title>CPC Alliance</title>"
                        f"<p>{html.escape(text)}</p></html>")


@staff_router.post("/alerts/deliver", responses=error_responses(401, 403, 429, 503))
async def deliver_now(request: Request) -> dict:
    """Send the due digests now (as the periodic loop does); ``ran`` is false when another worker is at it."""
    _store(request)
    stats = await run_delivery(request.app)
    return stats.__dict__


@router.get("/me/requests", responses=error_responses(404, 422, 429, 503))
def my_requests(request: Request, session_id: str = Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$"),
                lang: str = Query("en", pattern="^(pt|zh|en)$")) -> dict:
    """The web chat user's requests, with statuses, section by section (leads, alerts, and what else
    registered a section in ``assistant/_my_requests.py``), for the chat page."""
    from ._my_requests import my_requests as mine, render
    from ._sessions import browser_of

    store = _store(request)
    conversation = request.app.state.web_sessions.resolve(session_id, browser_of(request))
    if conversation is None:
        raise HTTPException(404, "no conversation for this session_id")
    found = mine(store, "web", conversation, lang)
    return {"session_id": session_id, "lang": lang, **found, "text": render(found, lang)}

