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

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool

from corpus import CorpusError, RecordError, load_records
from index import Catalog

from ._auth import require_staff
from ._schemas import ApiError, IngestReport, IndexManifest, OrgDeleted, error_responses

INGEST_TYPES = {"application/x-ndjson": ".jsonl", "application/jsonl": ".jsonl", "application/ndjson": ".jsonl",
                "text/csv": ".csv"}

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_staff)])


def _catalog(request: Request) -> Catalog:
    catalog = getattr(request.app.state, "catalog", None)
    if catalog is None or not catalog.ready:
        raise HTTPException(503, "the index is not loaded yet")
    return catalog


def _problem(e: RecordError) -> dict:
    """A record error without the server's temporary file name."""
    return {"line": e.line, "field": e.field, "message": e.message}


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

    ingested: list[str] = []  # alerts (members): the ids the hook below matches

    def work() -> dict:
        try:
            with tempfile.TemporaryDirectory(prefix="cpc-ingest-") as tmp:
                path = Path(tmp) / f"body{suffix}"
                path.write_bytes(body)
                loaded = load_records(path, skip_invalid=skip_invalid)  # raises before any write
            catalog.upsert(loaded.records, loaded=loaded)  # refuses what the index cannot hold, before writing
        except CorpusError as exc:
            problems = [_problem(e) for e in exc.errors]
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ApiError(422, f"line {first['line']}: {first['field']}: {first['message']}{more}; "
                                "nothing was imported", problems) from None
        ingested.extend(r.id for r in loaded.records)
        manifest = catalog.engine.manifest
        return {"imported": len(loaded.records), "skipped": [_problem(e) for e in loaded.skipped],
                "records": manifest.get("records", 0), "vectors": manifest.get("vectors", 0)}

    report = await run_in_threadpool(work)
    # -- alerts (members): new or changed records become notices for the subscriptions they fit --
    from ._alerts_api import after_ingest
    await after_ingest(request.app, ingested)
    # -- end alerts --
    return report


@router.delete("/organisations/{org_id}", response_model=OrgDeleted,
               responses=error_responses(401, 403, 404, 409, 422, 503, 507))
def delete_organisation(request: Request, org_id: str = PathParam(max_length=200)) -> dict:
    """Remove one organisation from the store and the index."""
    catalog = _catalog(request)
    if org_id not in catalog.engine.records and catalog.store.get(org_id) is None:
        raise HTTPException(404, f"no organisation with id '{org_id}'")
    catalog.delete([org_id])
    return {"deleted": org_id, "records": catalog.engine.manifest.get("records", 0)}


@router.post("/reindex", response_model=IndexManifest, responses=error_responses(401, 403, 409, 503, 507))
def reindex(request: Request) -> dict:
    """Rebuild the whole index from the record store and swap it in; returns the new manifest.

    Takes as long as embedding every record (about a minute for the shipped corpus on two cores).
    """
    return _catalog(request).rebuild().manifest
