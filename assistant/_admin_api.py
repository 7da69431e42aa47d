"""Admin endpoints behind the staff key: ingest records, delete one, rebuild the index.

The writes are slow (they embed texts and write a new index generation), so they run in a
worker thread: searches keep being answered meanwhile, by the old index until the new one is
swapped in (see ``index.Catalog``). An ingest body is validated in full before anything is
written; one bad record refuses the whole body (422 naming its line and field) unless
``skip_invalid`` is set.

Every write changes the record store and the index together or not at all (``index.Catalog``):
a full disk answers 507 with nothing changed; a server that does not hold the data folder's
writer lock (a second server on the same folder) answers 409 and keeps serving searches.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool

from corpus import CorpusError, RecordError, load_records
from index import Catalog, WriteProcessError

from ._auth import audit, require_admin
from ._schemas import ApiError, IngestReport, IndexManifest, OrgDeleted, error_responses

INGEST_TYPES = {"application/x-ndjson": ".jsonl", "application/jsonl": ".jsonl", "application/ndjson": ".jsonl",
                "text/csv": ".csv"}

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def _catalog(request: Request) -> Catalog:
    catalog = getattr(request.app.state, "catalog", None)
    if catalog is None or not catalog.ready:
        raise HTTPException(503, "the index is not loaded yet")
    return catalog


PROBLEMS_SHOWN = 50  # an answer lists the first problems and counts the rest: 800 KB of bad rows gave 55 MB
MESSAGE_CHARS = 300


class IngestCancelled(Exception):
    """The client went away: the write stops (its child process is killed) and nothing is changed."""


def _problem(e: RecordError) -> dict:
    """A record error without the server's temporary file name, its message bounded."""
    message = e.message if len(e.message) <= MESSAGE_CHARS else e.message[:MESSAGE_CHARS] + "…"
    return {"line": e.line, "field": e.field, "message": message}


def _problems(errors) -> list[dict]:
    return [_problem(e) for e in list(errors)[:PROBLEMS_SHOWN]]


@router.post(
    "/ingest",
    response_model=IngestReport,
    responses=error_responses(401, 403, 409, 413, 415, 422, 503, 507),
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-ndjson": {"schema": {"type": "string"}, "example": '{"id": "pt-example", "kind": "company", ...}'},
        "text/csv": {"schema": {"type": "string"}},
    }}},
)
async def ingest(request: Request,
                 skip_invalid: bool = Query(False, description="Import the valid records and list the rest")) -> dict:
    """Add or update organisations from JSON lines or CSV (the `cpc ingest` formats), then re-index them."""
    catalog = _catalog(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    suffix = INGEST_TYPES.get(media)
    if suffix is None:
        raise ApiError(415, f"unsupported content type '{media or 'none'}': send application/x-ndjson "
                            "(one JSON record a line) or text/csv", {"allowed": sorted(INGEST_TYPES)})
    body = await request.body()  # the size cap (CPC_MAX_INGEST_BYTES) applies while it streams in
    if not body.strip():
        raise HTTPException(422, "the body is empty: send at least one record")

    left = threading.Event()

    def still_wanted(done: int, total: int) -> None:
        """Called as the write progresses: raising here kills the write process (index/_writer.py),
        whose unfinished write changes nothing (the next write repairs it)."""
        if left.is_set():
            raise IngestCancelled()

    ingested: list[str] = []  # the ids the alerts step after the write matches

    def work() -> dict:
        try:
            with tempfile.TemporaryDirectory(prefix="cpc-ingest-") as tmp:
                path = Path(tmp) / f"body{suffix}"
                path.write_bytes(body)
                loaded = load_records(path, skip_invalid=skip_invalid)  # raises before any write
            still_wanted(0, 0)
            catalog.upsert(loaded.records, still_wanted, loaded=loaded, cancel=left)  # refuses what the index cannot hold, before writing
        except WriteProcessError:
            if left.is_set():  # killed because its client left
                raise IngestCancelled() from None
            raise
        except CorpusError as exc:
            problems = _problems(exc.errors)
            first = problems[0]
            more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
            raise ApiError(422, f"line {first['line']}: {first['field']}: {first['message']}{more}; "
                                f"nothing was imported (the first {len(problems)} problems are listed)", problems) from None
        ingested.extend(r.id for r in loaded.records)
        manifest = catalog.engine.manifest
        audit(request, "records.ingest", "", imported=len(loaded.records), skipped=len(loaded.skipped), format=suffix[1:])
        return {"imported": len(loaded.records), "skipped": _problems(loaded.skipped), "skipped_total": len(loaded.skipped),
                "records": manifest.get("records", 0), "vectors": manifest.get("vectors", 0)}

    writing = asyncio.ensure_future(run_in_threadpool(work))
    while not writing.done():
        await asyncio.wait({writing}, timeout=0.5)
        if not writing.done() and await request.is_disconnected():
            left.set()  # the write stops at its next progress report
    try:
        report = writing.result()
    except IngestCancelled:
        raise HTTPException(400, "the client closed the connection: the ingest was stopped and nothing was imported") from None
    # -- alerts: new or changed records become notices for the subscriptions they fit --
    from ._alerts_api import after_ingest

    await after_ingest(request.app, ingested)
    return report


@router.delete("/organisations/{org_id}", response_model=OrgDeleted,
               responses=error_responses(401, 403, 404, 409, 422, 503, 507))
def delete_organisation(request: Request, org_id: str = PathParam(max_length=200)) -> dict:
    """Remove one organisation from the store and the index."""
    catalog = _catalog(request)
    if org_id not in catalog.engine.records and catalog.store.get(org_id) is None:
        raise HTTPException(404, f"no organisation with id '{org_id}'")
    catalog.delete([org_id])
    audit(request, "record.delete", org_id)
    return {"deleted": org_id, "records": catalog.engine.manifest.get("records", 0)}


@router.post("/reindex", response_model=IndexManifest, responses=error_responses(401, 403, 409, 503, 507))
def reindex(request: Request) -> dict:
    """Rebuild the whole index from the record store and swap it in; returns the new manifest.

    Takes as long as embedding every record (about a minute for the shipped corpus on two cores).
    """
    manifest = _catalog(request).rebuild().manifest
    audit(request, "index.rebuild", "", records=manifest.get("records"))
    return manifest
