"""Staff endpoints behind the staff key: exports, the query log and its stats, lead status.

Also ``log_search``, which the public search endpoint calls so API and console queries
land in the same log as the assistant's (channel "api", or "staff" with a valid key).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import smtplib
import sqlite3
import time
from datetime import datetime, timezone
from typing import Any, Iterable, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response

from . import _contact as contact
from . import _mail as mail
from ._auth import audit, author, is_staff, require_staff
from ._present import hit_view
from ._schemas import (FAQ_LANGS, ApiError, ChatMessages, FaqEntry, FaqEntryIn, Introduction, Lead, LeadStatusUpdate, LeadUpdate,
                       QueryLogEntry, QueryStats, SearchRequest, StaffMessage, StaffReply, UnansweredQuestion, error_responses)
from ._state import StateStore

log = logging.getLogger("cpc.staff")

ERRORS = error_responses(401, 403, 404, 422, 503)
WITH_BODY = error_responses(400, 401, 403, 404, 413, 422, 503)
DELIVERY = error_responses(400, 401, 403, 404, 409, 413, 422, 502, 503)
WECHAT_WINDOW = 48 * 3600  # customer-service messages only this long after the user's last message
Format = Literal["csv", "json"]
SEARCH_COLUMNS = ("rank", "id", "name", "kind", "country", "region", "city", "sectors", "score",
                  "why_sectors", "why_terms", "why_boosts", "website", "snippet")
LEAD_COLUMNS = ("id", "created", "updated", "status", "outcome", "assignee", "name", "asker_org", "contact", "contact_kind",
                "need", "org_id", "org_name", "organisations", "lang", "channel", "session_id", "message", "notes", "consent_at", "conversation")

router = APIRouter(prefix="/api/v1", tags=["staff"], dependencies=[Depends(require_staff)])


def _store(request: Request) -> StateStore:
    assistant = getattr(request.app.state, "assistant", None)
    if assistant is None:
        raise HTTPException(503, "the service is still starting")
    return assistant.store


def log_search(request: Request, lang: str, query: str, results: int) -> None:
    """Log one search; the client address is only stored hashed. Logging never fails a search."""
    assistant = getattr(request.app.state, "assistant", None)
    if assistant is None:
        return
    channel = "staff" if is_staff(request) else "api"
    client = request.client.host if request.client else "unknown"
    try:
        assistant.store.log_query(channel, lang, query, results, client)
    except sqlite3.Error:
        log.warning("could not log a search query", exc_info=True)


def _cell(value: Any) -> str:
    """One CSV cell; text that a spreadsheet would run as a formula is quoted with a leading '."""
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(v) for v in value)
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> str:
    """UTF-8 with a byte-order mark: without it Excel reads Chinese and Portuguese names as mojibake."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    columns = list(columns)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _download(content: Any, fmt: Format, stem: str, columns: Iterable[str], rows: list[dict[str, Any]]) -> Response:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    headers = {"Content-Disposition": f'attachment; filename="{stem}-{stamp}.{fmt}"', "Cache-Control": "no-store"}
    if fmt == "csv":
        return Response(_csv(columns, rows), media_type="text/csv; charset=utf-8", headers=headers)
    body = json.dumps(content, ensure_ascii=False, indent=1)
    return Response(body, media_type="application/json", headers=headers)


@router.post("/staff/export", responses={**WITH_BODY, 200: {"content": {"text/csv": {}, "application/json": {}}}})
def export_search(body: SearchRequest, request: Request, fmt: Format = Query("csv", alias="format")) -> Response:
    """The results of a search (same body as /search) as a CSV or JSON file, for the staff console."""
    catalog = getattr(request.app.state, "catalog", None)
    if catalog is None or not catalog.ready:
        raise HTTPException(503, "the index is not loaded yet")
    f = body.filters
    filters = catalog.resolve_filters(f.country, f.region, f.kind, f.sectors)
    result = catalog.engine.search(body.query, filters, limit=body.limit, offset=body.offset)
    lang = result.analysis.lang
    hits = [hit_view(h, lang) for h in result.hits]
    rows = [
        {**h, "rank": body.offset + i, "why_sectors": h["why"]["sectors"], "why_terms": h["why"]["terms"],
         "why_boosts": h["why"]["boosts"]}
        for i, h in enumerate(hits, start=1)
    ]
    content = {"query": body.query, "lang": lang, "total": result.total, "matches": result.matches,
               "less_close": result.less_close, "limit": body.limit,
               "offset": body.offset, "filters": f.model_dump(), "results": hits}
    audit(request, "search.export", "", format=fmt, rows=len(rows))
    return _download(content, fmt, "cpc-search", SEARCH_COLUMNS, rows)


@router.get("/staff/queries", response_model=list[QueryLogEntry], responses=ERRORS)
def queries(request: Request, limit: int = Query(100, ge=1, le=1000),
            zero: bool = Query(False, description="Only queries that found nothing")) -> list[dict]:
    """Recent queries from every channel, newest first."""
    return _store(request).queries(limit=limit, zero_only=zero)


@router.get("/staff/stats", response_model=QueryStats, responses=ERRORS)
def stats(request: Request) -> dict:
    """Query counts by language and channel, and how often a query found nothing."""
    counts = _store(request).query_counts()
    totals = counts["totals"]
    counts["zero_rate"] = round(totals["zero_results"] / totals["all"], 4) if totals["all"] else 0.0
    return counts


LeadId = Path(ge=1, le=2**63 - 1)


def _lead(store: StateStore, lead_id: int) -> dict:
    lead = store.lead(lead_id)
    if lead is None:
        raise HTTPException(404, f"no lead with id {lead_id}")
    return lead


@router.get("/leads", response_model=list[Lead], responses=ERRORS)
def leads(request: Request, status: str | None = Query(None, max_length=32), channel: str | None = Query(None, max_length=32),
          lang: str | None = Query(None, max_length=8), assignee: str | None = Query(None, max_length=80),
          q: str | None = Query(None, max_length=200, description="Text in the asker's name, organisation, contact or need"),
          limit: int = Query(200, ge=1, le=1000)) -> list[dict]:
    """Leads newest first, with who asked, how to reach them, their need, the organisations of interest
    and what staff sent them."""
    store = _store(request)
    found = store.leads(status=status, channel=channel, lang=lang, assignee=assignee, text=q, limit=limit)
    sent = store.messages_by_lead([lead["id"] for lead in found])
    return [_with_thread(lead, sent[lead["id"]]) for lead in found]


def _with_thread(lead: dict, messages: list[dict]) -> dict:
    """The lead with its two-sided thread and how many of the user's answers staff have not opened."""
    unread = sum(1 for m in messages if m.get("sender") == "user" and m["delivery"] == "unread")
    last_user = max((m["created"] for m in messages if m.get("sender") == "user"), default=0)
    return {**lead, "messages": messages, "unread": unread, "last_user_message_at": last_user}


def _check_status(status: str | None, outcome: str | None) -> None:
    if status == "closed" and outcome is None:
        raise ApiError(422, "outcome: a closed lead needs an outcome", [{"field": "outcome", "message": "required when status is closed"}])
    if outcome is not None and status not in (None, "closed"):
        raise ApiError(422, "outcome: only a closed lead has an outcome", [{"field": "outcome", "message": "only with status closed"}])


@router.post("/leads/{lead_id}/status", responses=WITH_BODY)
def set_lead_status(body: LeadStatusUpdate, request: Request, lead_id: int = LeadId) -> dict:
    """Move a lead along new → contacted → introduced → closed (with an outcome), or back."""
    _check_status(body.status, body.outcome)
    lead = _store(request).update_lead(lead_id, status=body.status, outcome=body.outcome, author=author(request))
    if lead is None:
        raise HTTPException(404, f"no lead with id {lead_id}")
    audit(request, "lead.status", lead_id, status=body.status, outcome=body.outcome)
    return {"id": lead_id, "status": body.status, **({"outcome": body.outcome} if body.outcome else {})}


@router.patch("/leads/{lead_id}", response_model=Lead, responses=WITH_BODY)
def update_lead(body: LeadUpdate, request: Request, lead_id: int = LeadId) -> dict:
    """Status (closed needs an outcome), assignee ("" clears it) and/or one note to add."""
    if body.outcome is not None and body.status is None:
        body.status = "closed"
    _check_status(body.status, body.outcome)
    lead = _store(request).update_lead(lead_id, status=body.status, outcome=body.outcome, assignee=body.assignee,
                                       note=body.note, author=author(request))
    if lead is None:
        raise HTTPException(404, f"no lead with id {lead_id}")
    audit(request, "lead.update", lead_id, status=body.status, outcome=body.outcome, assignee=body.assignee,
          note=True if body.note else None)
    return lead


@router.get("/leads/export", responses={**ERRORS, 200: {"content": {"text/csv": {}, "application/json": {}}}})
def export_leads(request: Request, fmt: Format = Query("csv", alias="format"), status: str | None = Query(None, max_length=32),
                 channel: str | None = Query(None, max_length=32), lang: str | None = Query(None, max_length=8),
                 assignee: str | None = Query(None, max_length=80), q: str | None = Query(None, max_length=200),
                 limit: int = Query(10_000, ge=1, le=100_000)) -> Response:
    """The leads (with the same filters as the list) as a CSV or JSON file, newest first."""
    leads = _store(request).leads(status=status, channel=channel, lang=lang, assignee=assignee, text=q, limit=limit)

    def iso(t: float | None) -> str | None:
        return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds") if t else None

    rows = [{**lead, "created": iso(lead["created"]), "updated": iso(lead["updated"]), "consent_at": iso(lead["consent_at"]),
             "organisations": [f"{o['name']} ({o['id']})" for o in lead["organisations"]],
             "notes": [n["text"] for n in lead["notes"]],
             "conversation": [t[1] for t in lead["conversation"]] if lead["conversation"] else None}
            for lead in leads]
    audit(request, "leads.export", "", format=fmt, rows=len(rows), status=status, channel=channel, lang=lang)
    return _download(leads, fmt, "cpc-leads", LEAD_COLUMNS, rows)


@router.get("/leads/{lead_id}", response_model=Lead, responses=ERRORS)
def lead(request: Request, lead_id: int = LeadId,
         mark_read: bool = Query(True, description="Opening the lead marks the user's answers read")) -> dict:
    """One lead with its whole thread (the same messages the list gives); the user's answers are then read."""
    store = _store(request)
    found = _with_thread(_lead(store, lead_id), store.staff_messages(lead_id=lead_id))
    if mark_read and found["unread"]:
        store.mark_read(lead_id)
    return found


@router.get("/leads/{lead_id}/messages", response_model=list[StaffMessage], responses=ERRORS)
def lead_messages(request: Request, lead_id: int = LeadId) -> list[dict]:
    """The lead's thread: what staff sent (replies and introductions) and what the user answered, oldest first."""
    store = _store(request)
    _lead(store, lead_id)
    return store.staff_messages(lead_id=lead_id)


def _connector(request: Request, channel: str):
    found = getattr(request.app.state, channel, None)
    if found is None:
        raise ApiError(409, f"{channel} is not configured on this server", {"channel": channel, "code": "not_configured"})
    return found


@router.post("/leads/{lead_id}/reply", response_model=StaffMessage, responses=DELIVERY)
async def reply(body: StaffReply, request: Request, lead_id: int = LeadId) -> dict:
    """A message to the user where they asked: Telegram and WeChat at once (WeChat only within 48 hours
    of the user's last message), the web chat when the user next opens it."""
    store = _store(request)
    lead = await asyncio.to_thread(_lead, store, lead_id)
    channel, sid = lead["channel"], lead["session_id"]
    message = contact.text("staff_header", lead["lang"], lead=lead_id) + "\n" + body.text
    if channel in ("telegram", "wechat"):
        connector = _connector(request, channel)
        user = sid.split("-", 1)[1]
        if channel == "wechat":
            last = lead["last_inbound"] or lead["created"]
            if time.time() - last > WECHAT_WINDOW:
                when = datetime.fromtimestamp(last, timezone.utc).isoformat(timespec="minutes")
                raise ApiError(409, f"WeChat's 48-hour window has passed: the user last wrote at {when}; "
                               "WeChat only accepts a reply after they write again", {"last_inbound": last, "code": "wechat_window"})
        try:
            await connector.deliver(user, message)
        except Exception as exc:
            log.warning("staff reply on %s failed: %s", channel, type(exc).__name__)
            raise ApiError(502, f"{channel} did not accept the message: {exc}", {"channel": channel, "code": "bad_gateway"}) from None
        delivery = "sent"
    else:
        delivery = "waiting"  # the web chat fetches it when the user comes back
    sent = await asyncio.to_thread(store.add_staff_message, lead_id, sid, channel, message, delivery, author(request))
    await asyncio.to_thread(audit, request, "lead.reply", lead_id, channel=channel, delivery=delivery)
    return sent


def _partner_lang(request: Request, lead: dict) -> str | None:
    """The partner's language from the first organisation of interest the directory holds."""
    assistant = getattr(request.app.state, "assistant", None)
    records = assistant.engine.records if assistant is not None else {}
    for org in lead["organisations"]:
        if org["id"] in records:
            return mail.partner_language(records[org["id"]].country)
    return None


@router.post("/leads/{lead_id}/introduce", response_model=StaffMessage, responses=DELIVERY)
async def introduce(body: Introduction, request: Request, lead_id: int = LeadId) -> dict:
    """One e-mail to both sides: the asker (the address they gave) and the partner address staff typed in."""
    store = _store(request)
    lead = await asyncio.to_thread(_lead, store, lead_id)
    if lead["contact_kind"] != "email":
        raise ApiError(409, "the asker gave no e-mail address: reply on their channel instead",
                       {"contact_kind": lead["contact_kind"], "code": "no_email"})
    settings = request.app.state.settings
    try:
        msg = mail.introduction(settings, lead, body.partner_email, body.partner_name, body.text,
                                _partner_lang(request, lead))
    except mail.MailNotConfigured as exc:
        raise ApiError(409, str(exc), {"code": "mail_off"}) from None
    try:
        sent_to = await asyncio.to_thread(mail.send, settings, msg)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("introduction e-mail failed: %s", type(exc).__name__)
        raise ApiError(502, f"the SMTP server did not accept the e-mail: {exc}", {"code": "bad_gateway"}) from None
    record = f"E-mail → {', '.join(sent_to)}\n{body.text}"
    sent = await asyncio.to_thread(store.add_staff_message, lead_id, lead["session_id"], "email", record, "e-mail", author(request))
    await asyncio.to_thread(audit, request, "lead.introduce", lead_id, recipients=len(sent_to))
    return sent


# -- the web chat fetches what staff sent (no staff key: the session id is the user's) -----------
chat_messages_router = APIRouter(prefix="/api/v1", tags=["chat"])


@chat_messages_router.get("/chat/messages", response_model=ChatMessages, responses=error_responses(404, 422, 429, 503))
def chat_messages(request: Request, session_id: str = Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$"),
                  after: int = Query(0, ge=0, le=2**63 - 1, description="Only messages with a larger id")) -> dict:
    """Messages from the CPC Alliance team to this web conversation, for the chat to show on load.

    ``session_id`` is the token the chat route issued; like a chat turn, it opens only the
    conversation it was signed for (and only from its browser, when it was bound to one)."""
    from ._sessions import browser_of

    store = _store(request)
    conversation = request.app.state.web_sessions.resolve(session_id, browser_of(request))
    if conversation is None:
        raise HTTPException(404, "no conversation for this session_id")
    found = [m for m in store.staff_messages(session_id=conversation, after=after) if m.get("sender", "staff") == "staff"]
    if found:
        store.mark_shown(conversation)
    return {"session_id": session_id, "messages": [m for m in found if m["delivery"] != "e-mail"]}


# -- the FAQ staff keep (answered in the chat by meaning: assistant/_faq.py) --------------------------
FaqId = Path(ge=1, le=2**63 - 1)


def _faq_view(entry: dict) -> dict:
    return {**entry, "missing": [lang for lang in FAQ_LANGS if not entry["answers"].get(lang)]}


def _faq_book(request: Request):
    assistant = getattr(request.app.state, "assistant", None)
    if assistant is None:
        raise HTTPException(503, "the service is still starting")
    return assistant.team.book


@router.get("/staff/faq", response_model=list[FaqEntry], responses=ERRORS)
def faq_list(request: Request) -> list[dict]:
    """The FAQ entries, oldest first (the shipped ones are stored on first start)."""
    book = _faq_book(request)
    book.seed()
    return [_faq_view(e) for e in book.store.faq_entries()]


@router.post("/staff/faq", response_model=FaqEntry, status_code=201, responses=WITH_BODY)
def faq_add(body: FaqEntryIn, request: Request) -> dict:
    book = _faq_book(request)
    book.seed()
    return _faq_view(book.store.add_faq(body.questions, body.answers))


@router.put("/staff/faq/{faq_id}", response_model=FaqEntry, responses=WITH_BODY)
def faq_edit(body: FaqEntryIn, request: Request, faq_id: int = FaqId) -> dict:
    found = _faq_book(request).store.update_faq(faq_id, body.questions, body.answers)
    if found is None:
        raise ApiError(404, f"no FAQ entry with id {faq_id}", {"code": "faq_not_found", "id": faq_id})
    return _faq_view(found)


@router.delete("/staff/faq/{faq_id}", status_code=204, responses=ERRORS)
def faq_delete(request: Request, faq_id: int = FaqId) -> Response:
    if not _faq_book(request).store.delete_faq(faq_id):
        raise ApiError(404, f"no FAQ entry with id {faq_id}", {"code": "faq_not_found", "id": faq_id})
    return Response(status_code=204)


@router.get("/staff/faq/unanswered", response_model=list[UnansweredQuestion], responses=ERRORS)
def faq_unanswered(request: Request, limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
    """Questions about the alliance the FAQ could not answer, newest first: candidates for new entries."""
    return _store(request).unanswered(limit=limit)


@router.delete("/staff/faq/unanswered/{item_id}", status_code=204, responses=ERRORS)
def faq_unanswered_delete(request: Request, item_id: int = Path(ge=1, le=2**63 - 1)) -> Response:
    if not _store(request).delete_unanswered(item_id):
        raise ApiError(404, f"no unanswered question with id {item_id}", {"code": "question_not_found", "id": item_id})
    return Response(status_code=204)
