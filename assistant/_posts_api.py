"""Opportunity post routes: members publish (pending), staff publish and review, both ways matching.

- ``POST /api/v1/posts``: a member's post from the web chat (its ``session_id``), pending review;
- ``GET /api/v1/posts/{id}``, ``GET /api/v1/posts/{id}/matches``: a published, open post and the
  organisations it reaches; ``GET /api/v1/organisations/{id}/posts``: open posts for an organisation;
- staff (``/api/v1/staff/posts``): publish, list by status, approve, reject with a reason (the author
  is told in their language on their channel), withdraw.

After a post is published the alerts matching runs for it as after an ingest (``_alerts.match_new``
over the posts' index) and due notices are sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corpus import detect_lang
from index import POST_TYPES

from . import _posts as posts
from ._auth import audit, author, require_staff
from ._schemas import error_responses

log = logging.getLogger("cpc.posts")

PostTypeName = Literal["rd_partner", "tech_offer", "tech_request", "joint_venture", "distribution", "supplier"]
SESSION = r"^[A-Za-z0-9_.:@-]+$"


class PostBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [{
        "type": "supplier", "title": "Procuramos fornecedores de granulado de cortiça na China",
        "description": "Fabricante de pavimentos procura fornecedor de granulado de cortiça.", "sectors": ["cortiça"],
        "side_sought": "CN", "closes": "2027-06-30"}]})

    type: PostTypeName
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=4000)
    sectors: list[str] = Field(default_factory=list, max_length=10)
    side_sought: Literal["PT", "CN"]
    closes: dt.date
    lang: Literal["pt", "zh", "en"] | None = Field(None, description="The author's language (default: the description's)")


class MemberPost(PostBody):
    session_id: str = Field(min_length=1, max_length=128, pattern=SESSION, description="The web chat's session_id")


class StaffPost(PostBody):
    author: str | None = Field(None, max_length=200, description="The organisation id of the author, when it is in the directory")


class PostCorrections(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] | None = Field(None, description="Staff's corrections: type, title, description, sectors,"
                                                          " side_sought, closes (validated as a new post is)")


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="Told to the author in their language's message "
                                                                   "(marked as the original when written in another)")


def _desk(request: Request) -> posts.PostDesk:
    desk = getattr(request.app.state, "posts", None)
    catalog = getattr(request.app.state, "catalog", None)
    if desk is None or catalog is None or not catalog.ready:
        raise HTTPException(503, "the index is not loaded yet")
    return desk


def _data(body: PostBody) -> dict[str, Any]:
    data = body.model_dump(exclude={"session_id"})
    if not data.get("lang"):
        found = detect_lang(body.description, default="en")
        data["lang"] = found if found in ("pt", "zh", "en") else "en"
    return data


def _submit(desk: posts.PostDesk, data: dict, channel: str, address: str, staff: bool = False, reviewer: str | None = None) -> dict:
    try:
        return desk.submit(data, channel, address, staff=staff, reviewer=reviewer)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise HTTPException(422, f"{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _public(row: dict, lang: str) -> dict:
    return {**{k: row[k] for k in ("id", "type", "lang", "title", "description", "sectors", "side_sought", "closes", "author")},
            "status": row["status"], "type_label": posts.type_label(row["type"], lang),
            "closes_label": posts.say("closes", lang, date=row["closes"])}


def _open_row(desk: posts.PostDesk, post_id: str) -> dict:
    row = desk.store.post(post_id)
    if row is None or row["status"] != "published" or row["closes"] < dt.date.today().isoformat():
        raise HTTPException(404, f"no open post with id '{post_id}'")
    return row


async def after_publish(app, post_id: str) -> None:
    """The alerts step for a newly published post, as after an ingest; never fails the publishing."""
    try:
        from . import _alerts as alerts
        from ._alerts_api import run_delivery

        desk: posts.PostDesk = app.state.posts
        index = await asyncio.to_thread(desk.index)
        if index.engine is None:
            return
        stats = await asyncio.to_thread(alerts.match_new, index.engine, desk.store, [post_id])
        log.info("alerts: %d new notices for post %s", stats.notices, post_id)
        await run_delivery(app)
    except Exception:
        log.exception("alerts after publishing a post failed; the notices written are delivered by the next run")


async def tell_author(app, row: dict) -> str:
    """The review's outcome on the author's channel: the web chat shows it when they return,
    Telegram and WeChat get a message. Returns how it went ("sent", "waiting", "failed")."""
    desk: posts.PostDesk = app.state.posts
    text = desk.verdict(row)
    channel, address = row["channel"], row["address"]
    try:
        if channel == "web":
            await asyncio.to_thread(desk.store.add_staff_message, 0, address, "web", text, "waiting", "posts")
            return "waiting"
        connector = getattr(app.state, {"telegram": "telegram", "wechat": "wechat"}.get(channel, ""), None)
        if connector is None:
            return "failed"
        await connector.deliver(address.split("-", 1)[1], text)
        return "sent"
    except Exception:
        log.exception("the author of post %s could not be told of the review", row["id"])
        return "failed"


router = APIRouter(prefix="/api/v1", tags=["posts"])
staff_router = APIRouter(prefix="/api/v1/staff", tags=["staff"], dependencies=[Depends(require_staff)])


@router.post("/posts", status_code=201, responses=error_responses(400, 404, 413, 422, 429, 503))
def member_post(body: MemberPost, request: Request) -> dict:
    """A member publishes an opportunity from the web chat: it waits for staff approval, and the
    outcome is shown in the chat (in the author's language)."""
    from ._sessions import browser_of

    desk = _desk(request)
    conversation = request.app.state.web_sessions.resolve(body.session_id, browser_of(request))
    if conversation is None:
        raise HTTPException(404, "no conversation for this session_id")
    row = _submit(desk, _data(body), "web", conversation)
    return {**_public(row, row["lang"]), "message": posts.say("submitted", row["lang"], title=row["title"])}


@router.get("/posts/{post_id}", responses=error_responses(404, 422, 429, 503))
def get_post(request: Request, post_id: str = Path(max_length=200),
             lang: Literal["pt", "zh", "en"] | None = Query(None)) -> dict:
    """A published post, while it is open."""
    row = _open_row(_desk(request), post_id)
    return _public(row, lang or row["lang"])


@router.get("/posts/{post_id}/matches", responses=error_responses(404, 422, 429, 503))
def post_matches(request: Request, post_id: str = Path(max_length=200), limit: int = Query(10, ge=1, le=50),
                 lang: Literal["pt", "zh", "en"] | None = Query(None)) -> dict:
    """Organisations an open post should reach, with reasons: the post is the asker ("we seek ..."),
    judged as any search is, on the side it seeks."""
    from ._present import hit_view

    desk = _desk(request)
    row = _open_row(desk, post_id)
    lang = lang or row["lang"]
    result = desk.organisations(posts.post_of(row), limit, lang)
    return {"post": _public(row, lang), "lang": lang, "total": result.total, "matches": result.matches,
            "less_close": result.less_close, "understood": result.analysis.understood(),
            "results": [hit_view(h, lang, result.analysis) for h in result.hits]}


@router.get("/organisations/{org_id}/posts", tags=["organisations"], responses=error_responses(404, 422, 429, 503))
def organisation_posts(request: Request, org_id: str = Path(max_length=200), limit: int = Query(10, ge=1, le=50),
                       lang: Literal["pt", "zh", "en"] | None = Query(None),
                       type: list[str] = Query(default_factory=list, description="Post types (default: all)")) -> dict:
    """Open posts an organisation should be shown (the sibling of ``/matches``): asked from both
    sides, the organisation seeking and each post seeking."""
    desk = _desk(request)
    bad = [t for t in type if t not in POST_TYPES]
    if bad:
        raise HTTPException(422, f"type: unknown post type '{bad[0]}' (one of {', '.join(POST_TYPES)})")
    if org_id not in desk.engine.records:
        raise HTTPException(404, f"no organisation with id '{org_id}'")
    result = desk.for_organisation(org_id, limit, lang, type or None)
    if result is None:
        return {"organisation": org_id, "lang": lang or "en", "total": 0, "matches": 0, "less_close": 0, "results": []}
    lang = lang or result.analysis.lang
    less_close = sum(1 for h in result.hits if h.less_close)
    return {"organisation": org_id, "lang": lang, "total": len(result.hits), "matches": len(result.hits) - less_close,
            "less_close": less_close,
            "results": [posts.post_view(h, lang, result.analysis) for h in result.hits]}


# -- staff ---------------------------------------------------------------------------------------
@staff_router.post("/posts", status_code=201, responses=error_responses(400, 401, 403, 413, 422, 429, 503))
async def staff_post(body: StaffPost, request: Request) -> dict:
    """Staff publish an opportunity at once (for the alliance or for a member, ``author``)."""
    desk = _desk(request)
    row = await run_in_threadpool(_submit, desk, _data(body), "staff", author(request), True, author(request))
    audit(request, "post.publish", row["id"])
    await after_publish(request.app, row["id"])
    return _public(row, row["lang"])


@staff_router.get("/posts", responses=error_responses(401, 403, 422, 429, 503))
def staff_posts(request: Request, status: Literal["pending", "published", "rejected", "withdrawn"] | None = Query(None),
                limit: int = Query(200, ge=1, le=1000)) -> dict:
    """Posts by status, newest first (``pending``: the moderation queue)."""
    rows = _desk(request).store.posts(status=status, limit=limit)
    return {"total": len(rows), "posts": [{**r, "type_label": posts.type_label(r["type"], "en")} for r in rows]}


async def review(request: Request, post_id: str, approve: bool, reason: str | None,
                 corrections: dict[str, Any] | None = None) -> dict:
    """Approve (after ``corrections``, if any) or reject a pending post; the author is told, alerts
    run for a published one. The moderation queue (``_moderation_api.py``) decides through this too."""
    desk = _desk(request)
    try:
        row = await run_in_threadpool(desk.review, post_id, approve, reason, author(request), corrections)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise HTTPException(422, f"{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if row is None:
        raise HTTPException(404 if desk.store.post(post_id) is None else 409, f"no pending post with id '{post_id}'")
    audit(request, "post.approve" if approve else "post.reject", post_id,
          corrected=sorted(corrections) if approve and corrections else None, reason=None if approve else reason)
    told = await tell_author(request.app, row)
    if approve:
        await after_publish(request.app, post_id)
    return {**_public(row, row["lang"]), "reason": row.get("reason"), "author_told": told}


@staff_router.post("/posts/{post_id}/approve", responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def approve_post(request: Request, post_id: str = Path(max_length=200), body: PostCorrections | None = None) -> dict:
    """Publish a pending member post (after staff's corrections in ``data``, if any); the author is
    told, and alerts run for it."""
    return await review(request, post_id, True, None, body.data if body and body.data else None)


@staff_router.post("/posts/{post_id}/reject", responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def reject_post(body: Rejection, request: Request, post_id: str = Path(max_length=200)) -> dict:
    """Refuse a pending member post with a reason the author is told, in their language's message."""
    return await review(request, post_id, False, body.reason)


@staff_router.post("/posts/{post_id}/withdraw", responses=error_responses(400, 401, 403, 404, 413, 422, 429, 503))
def withdraw_post(request: Request, post_id: str = Path(max_length=200)) -> dict:
    """Take a published post down before its date."""
    desk = _desk(request)
    row = desk.store.set_post_status(post_id, "withdrawn", expect="published", reviewer=author(request))
    if row is None:
        raise HTTPException(404, f"no published post with id '{post_id}'")
    audit(request, "post.withdraw", post_id)
    return _public(row, row["lang"])


page_router = APIRouter()


@page_router.get("/staff/posts", include_in_schema=False)
def posts_page():
    """The console's page for posts: review queue, publishing, published (assistant/static/staff-posts.html)."""
    from ._web import _page

    return _page("staff-posts.html")
