"""Staff routes for the opportunity map and unmet demand, and the console page that charts them.

``GET /api/v1/staff/opportunities``: open cross-border pairs, best first, and their count by sector
pair; ``POST /api/v1/staff/opportunities/introduce``: a lead addressed to both sides;
``GET /api/v1/staff/unmet-demand``: zero-result questions grouped and by day. ``/staff/map`` is the
page (assistant/static/staff-map.html), signed in with the console's staff key.
"""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from . import _opportunities as opp
from ._auth import require_staff
from ._schemas import ApiError, error_responses
from ._web import _page

router = APIRouter(prefix="/api/v1/staff", tags=["staff"], dependencies=[Depends(require_staff)])
page_router = APIRouter()
ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)
LANG = Query("en", pattern="^(pt|zh|en)$")

_cache: dict[tuple[str | None, str], list[opp.Opportunity]] = {}
_cache_lock = threading.Lock()


class Proposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    a: str = Field(min_length=1, max_length=200)
    b: str = Field(min_length=1, max_length=200)
    lang: str = Field("en", pattern="^(pt|zh|en)$")
    note: str = Field("", max_length=2000)


def _parts(request: Request):
    catalog = getattr(request.app.state, "catalog", None)
    assistant = getattr(request.app.state, "assistant", None)
    if catalog is None or assistant is None or not catalog.ready:
        raise HTTPException(503, "the index is not loaded yet")
    return catalog.engine, assistant.store


def _pairs(engine, lang: str) -> list[opp.Opportunity]:
    """The candidate pairs of this index generation (one search per member: computed once per generation)."""
    key = (engine.generation, lang)
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            found = opp.candidate_pairs(engine, lang)
            for old in [k for k in _cache if k[1] == lang and k != key]:
                del _cache[old]
            _cache[key] = found
    return found


@router.get("/opportunities", responses=ERRORS)
async def opportunities(request: Request, lang: str = LANG, limit: int = Query(50, ge=1, le=500)) -> dict:
    """Cross-border pairs the engine finds for members that no lead, introduction or conversation concerns yet."""
    engine, store = _parts(request)

    def work() -> dict:
        found = opp.opportunity_map(engine, store.leads(limit=100_000), lang, limit=limit, pairs=_pairs(engine, lang))
        return {"lang": lang, "total": len(found), "opportunities": [o.view(engine, lang) for o in found],
                "by_sector_pair": opp.by_sector_pair(found, lang)}

    return await run_in_threadpool(work)


@router.post("/opportunities/introduce", status_code=201, responses=ERRORS)
def introduce(body: Proposal, request: Request) -> dict:
    """Propose an introduction: a lead addressed to both organisations, followed up like any lead."""
    engine, store = _parts(request)
    for org_id in (body.a, body.b):
        if org_id not in engine.records:
            raise HTTPException(404, f"no organisation with id '{org_id}'")
    if body.a == body.b:
        raise HTTPException(422, "a and b are the same organisation")
    if frozenset((body.a, body.b)) in opp.started_pairs(engine, store.leads(limit=100_000)):
        raise ApiError(409, "a lead already concerns these two organisations", {"a": body.a, "b": body.b})
    lead_id = opp.propose(store, engine, body.a, body.b, body.lang, body.note)
    return {"lead_id": lead_id}


@router.get("/unmet-demand", responses=ERRORS)
async def unmet_demand(request: Request, lang: str = LANG, days: int = Query(90, ge=1, le=3650)) -> dict:
    """Questions that found nothing, by sought sector, side and language, and per day."""
    _, store = _parts(request)

    def work() -> dict:
        since = time.time() - days * 86400
        rows = [q for q in store.queries(limit=20_000, zero_only=True) if q["created"] >= since]
        return opp.unmet_demand(rows, lang)

    return await run_in_threadpool(work)


@page_router.get("/staff/map", include_in_schema=False)
def map_page() -> HTMLResponse:
    return _page("staff-map.html")
