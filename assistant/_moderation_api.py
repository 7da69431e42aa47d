"""One moderation queue for staff: members' profiles and members' posts that wait for review.

Staff used to review profiles and posts on two pages; a person who runs the queue wants one list,
oldest first, and one way to decide: approve, correct then approve, or reject with a reason the
member is told in their language on the channel they came from. The decisions themselves stay with
the profiles and posts routes (``_profiles_api.approve``/``reject``, ``_posts_api.review``), so the
write process, alerts, the member's notice and the audit entry are the same whichever page or API
was used; this module only lists both kinds together and routes a decision to its kind.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from . import _posts as posts
from . import _profiles as profiles
from ._auth import require_staff
from ._schemas import error_responses

Kind = Literal["profile", "post"]
QUEUE_MAX = 1000  # of each kind: a queue longer than this is a backlog nobody reads on one page
POST_FIELDS = ("type", "title", "description", "sectors", "side_sought", "closes")


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] | None = Field(None, description="Staff's corrections, validated as the member's own input is "
                                                          "(a profile: its form's fields; a post: type, title, description,"
                                                          " sectors, side_sought, closes)")


class Refusal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="Told to the member in their language's message; "
                                                                   "marked as the original when written in another")


def _profile_item(p: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "profile", "id": str(p["id"]), "waiting_since": p["updated"], "lang": p["lang"],
            "channel": p["channel"], "title": p["data"].get("name", ""), "fields": p["data"],
            "consent_at": p["consent_at"], "record": profiles.to_record(p)}


def _post_item(r: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "post", "id": r["id"], "waiting_since": r["updated"], "lang": r["lang"], "channel": r["channel"],
            "title": r["title"], "fields": {k: r[k] for k in POST_FIELDS}, "author": r.get("author"),
            "type_label": {lang: posts.type_label(r["type"], lang) for lang in ("pt", "zh", "en")}}


def _store(request: Request):
    from ._profiles_api import _parts  # the state store, once the index is loaded (else 503)

    return _parts(request)[0]


def pending(store) -> list[dict[str, Any]]:
    """Both kinds waiting for review, the longest waiting first."""
    items = [_profile_item(p) for p in store.profiles(status="pending", limit=QUEUE_MAX)]
    items += [_post_item(r) for r in store.posts(status="pending", limit=QUEUE_MAX)]
    return sorted(items, key=lambda item: (item["waiting_since"], item["kind"], item["id"]))


def counts(items: list[dict[str, Any]]) -> dict[str, int]:
    return {kind: sum(1 for item in items if item["kind"] == kind) for kind in ("profile", "post")}


router = APIRouter(prefix="/api/v1/staff/moderation", tags=["staff"], dependencies=[Depends(require_staff)])
page_router = APIRouter(include_in_schema=False)
ItemId = Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")


@router.get("", responses=error_responses(401, 403, 429, 503))
def queue(request: Request) -> dict:
    """Everything members sent that waits for review, oldest first: ``kind`` "profile" (a directory
    profile, with the record it would become) or "post" (an opportunity post); ``counts`` by kind."""
    items = pending(_store(request))
    return {"total": len(items), "counts": counts(items), "items": items}


@router.get("/count", responses=error_responses(401, 403, 429, 503))
def queue_count(request: Request) -> dict:
    """How many items wait, in all and by kind (the console's navigation shows it)."""
    items = pending(_store(request))
    return {"total": len(items), "counts": counts(items)}


def _profile_id(item_id: str) -> int:
    if not item_id.isdigit() or len(item_id) > 12:
        raise HTTPException(404, f"no profile {item_id}")
    return int(item_id)


@router.post("/{kind}/{item_id}/approve", responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503, 507))
async def approve(kind: Kind, body: Approval, request: Request, item_id: str = ItemId) -> dict:
    """Publish one item, after staff's corrections when ``data`` holds any; the member is told."""
    from . import _posts_api, _profiles_api

    if kind == "profile":
        done = await _profiles_api.approve(_profile_id(item_id), _profiles_api.Approve(data=body.data), request)
    else:
        done = await _posts_api.review(request, item_id, True, None, body.data or None)
    return {"kind": kind, **done}


@router.post("/{kind}/{item_id}/reject", responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def reject(kind: Kind, body: Refusal, request: Request, item_id: str = ItemId) -> dict:
    """Refuse one item with a reason; the member reads it in their language's message, on their channel."""
    from . import _posts_api, _profiles_api

    if kind == "profile":
        done = await _profiles_api.reject(_profile_id(item_id), _profiles_api.Reject(reason=body.reason), request)
    else:
        done = await _posts_api.review(request, item_id, False, body.reason)
    return {"kind": kind, **done}


@page_router.get("/staff/moderation")
def moderation_page() -> HTMLResponse:
    """The console's moderation queue (assistant/static/staff-moderation.html)."""
    from ._web import _page

    return _page("staff-moderation.html")


@page_router.get("/staff/profiles")
def old_profiles_page() -> RedirectResponse:
    """Profiles were reviewed here before posts joined the same queue."""
    return RedirectResponse("/staff/moderation", status_code=308)
