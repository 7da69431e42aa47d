"""Staff endpoints behind the staff key: exports, the query log and its stats, lead status.

Also ``log_search``, which the public search endpoint calls so API and console queries
land in the same log as the assistant's (channel "api", or "staff" with a valid key).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import time
from datetime import datetime, timezone
from typing import Any, Iterable, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response

from ._auth import is_staff, require_staff
from ._present import hit_view
from ._schemas import LeadStatusUpdate, QueryLogEntry, QueryStats, SearchRequest, error_responses
from ._state import StateStore

log = logging.getLogger("cpc.staff")

ERRORS = error_responses(401, 403, 404, 422, 503)
WITH_BODY = error_responses(400, 401, 403, 404, 413, 422, 503)
Format = Literal["csv", "json"]
SEARCH_COLUMNS = ("rank", "id", "name", "kind", "country", "region", "city", "sectors", "score",
                  "why_sectors", "why_terms", "why_boosts", "website", "snippet")
LEAD_COLUMNS = ("id", "created", "status", "org_id", "org_name", "lang", "channel", "session_id", "message")

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
    content = {"query": body.query, "lang": lang, "total": result.total, "limit": body.limit,
               "offset": body.offset, "filters": f.model_dump(), "results": hits}
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


@router.post("/leads/{lead_id}/status", responses=WITH_BODY)
def set_lead_status(body: LeadStatusUpdate, request: Request, lead_id: int = Path(ge=1, le=2**63 - 1)) -> dict:
    """Mark a lead contacted once the team has followed it up (or back to new)."""
    if not _store(request).set_lead_status(lead_id, body.status):
        raise HTTPException(404, f"no lead with id {lead_id}")
    return {"id": lead_id, "status": body.status}


@router.get("/leads/export", responses={**ERRORS, 200: {"content": {"text/csv": {}, "application/json": {}}}})
def export_leads(request: Request, fmt: Format = Query("csv", alias="format"), status: str | None = Query(None, max_length=32),
                 limit: int = Query(10_000, ge=1, le=100_000)) -> Response:
    """All leads (or those with one status) as a CSV or JSON file, newest first."""
    leads = _store(request).leads(status=status, limit=limit)
    rows = [{**lead, "created": datetime.fromtimestamp(lead["created"], timezone.utc).isoformat(timespec="seconds")}
            for lead in leads]
    return _download(leads, fmt, "cpc-leads", LEAD_COLUMNS, rows)
