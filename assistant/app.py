"""The FastAPI application: thin routers over the search core (and, later, the assistant)."""

from __future__ import annotations

import gc
import logging
import sqlite3
import sys
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from corpus import warm_langdetect
from index import (
    AST_LOCK, Catalog, Encoder, EncoderBusy, FilterValueError, SearchConfig, StorageFullError, VectorStoreUnavailable,
    WriteProcessError, WriterBusyError, disk_full, load_encoder,
)

from dataclasses import asdict

import orjson

from ._accounts_api import admin_router as accounts_admin_router, page_router as accounts_page_router, router as accounts_router
from ._admin_api import router as admin_router
from ._docs import install_docs
from ._extensions import mount_extensions
from ._guards import ConfiguredRedirects, MetricsGuard
from ._limits import install_cors, install_limits, request_client
from ._observability import MeteredEngine, install_observability, note
from ._present import hit_view
from ._schemas import ChatRequest, ChatResponse, MatchesResponse, SearchRequest, SearchResponse, error_responses
from ._sessions import WebSessions, keep_browser
from ._staff_api import chat_messages_router, log_search, router as staff_router
from ._state import StateUnavailableError, StoredTextError, open_state_store
from ._web import router as web_router
from .dialogue import Assistant
from .settings import Settings, get_settings

log = logging.getLogger("cpc.api")

TAGS = [
    {"name": "search", "description": "Multilingual partner search over clusters, firms and institutions"},
    {"name": "chat", "description": "The conversational assistant and the leads it records"},
    {"name": "organisations", "description": "Organisation records"},
    {"name": "health", "description": "Liveness and readiness probes"},
    {"name": "staff", "description": "Exports, query log and lead follow-up (staff key required)"},
    {"name": "admin", "description": "Ingest, delete and re-index records (staff key required)"},
    {"name": "posts", "description": "Opportunity posts: members publish (reviewed by staff), matched with organisations both ways"},
]
# The refusals each kind of route really gives (the schema fuzz test holds the routes to them).
PUBLIC_BODY = error_responses(400, 413, 422, 429, 503)
PUBLIC_GET = error_responses(404, 422, 429, 503)


SWITCH_INTERVAL = 0.001  # seconds; see the lifespan


def search_config(settings: Settings) -> SearchConfig:
    """The index settings every command and the service use alike (the vector store among them)."""
    return SearchConfig(calibrate=settings.calibration, exact_max=settings.exact_max,
                        encode_chars_max=settings.query_chars_max, vector_url=settings.vector_url)


def open_catalog(settings: Settings, progress=None, group: int | None = None, encoder: Encoder | None = None,
                 second: Encoder | None | str = "config") -> Catalog:
    """The data folder as the service opens it (seeded from ``settings.corpus`` and built when
    empty). ``group``: the worker group (serve parent's pid) it writes for; ``encoder`` and
    ``second`` replace the configured model and second-signal encoder (bench/scale.py builds with
    composed vectors)."""
    # a serving process writes through a child process that loads the same model (index/_writer.py)
    write_process = (settings.model, settings.threads) if encoder is None else None
    encoder = encoder or load_encoder(settings.model, settings.threads)
    catalog = Catalog(settings.data_dir, encoder, search_config(settings), group=group, write_process=write_process,
                      second=second)
    catalog.open(settings.corpus, progress)
    return catalog


def worker_app(settings: Settings, group: int) -> FastAPI:
    """The app of one `cpc serve --workers` process: the parent built the index and holds the
    data folder for the group, so this only loads the current generation (and writes as one of
    the group)."""
    import sys

    from uvicorn.config import STARTUP_FAILURE

    from ._observability import configure_logging, configured_secrets

    configure_logging(settings.log_level, configured_secrets(settings), capture_raw=True)
    try:
        catalog = open_catalog(settings, group=group)
    except Exception:  # the next worker would fail the same way: stop the serve instead of restarting it
        log.exception("a worker could not open the data folder %s", settings.data_dir)
        sys.exit(STARTUP_FAILURE)
    return create_app(settings, catalog)


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog | None = getattr(request.app.state, "catalog", None)
    if catalog is None or not catalog.ready:
        raise HTTPException(503, "the index is not loaded yet")
    return catalog


def _error(status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=jsonable_encoder({"error": message, "detail": detail}), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        broken = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if broken is not None:  # the body could not be read at all: 400, like a body that is not UTF-8
            where = broken.get("loc", ("body", None))[-1]
            reason = (broken.get("ctx") or {}).get("error", "invalid JSON")
            return _error(400, f"the body is not valid JSON: {reason} at character {where}",
                          {"position": where, "message": reason})
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return _error(422, f"{first['field'] or 'body'}: {first['message']}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "body_detail", None), getattr(exc, "headers", None))

    @app.exception_handler(EncoderBusy)
    async def _encoder_busy(_: Request, exc: EncoderBusy) -> JSONResponse:
        seconds = max(1, round(exc.retry_after))
        return _error(429, f"the search engine is busy with other clients' work: retry in {seconds} s",
                      {"retry_after": seconds}, {"Retry-After": str(seconds)})

    @app.exception_handler(StoredTextError)
    async def _nul(_: Request, exc: StoredTextError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(ValueError)
    async def _value(request: Request, exc: ValueError) -> JSONResponse:
        # json.loads turns a number of more than 4,300 digits into an int and Python refuses:
        # a ValueError that is not a JSONDecodeError, which FastAPI leaves to the 500 handler
        if "digits" in str(exc) and "limit" in str(exc):
            return _error(400, "the body is not valid JSON: a number has more than 4,300 digits")
        return await _unexpected(request, exc)

    @app.exception_handler(FilterValueError)
    async def _filter(_: Request, exc: FilterValueError) -> JSONResponse:
        return _error(422, str(exc), {"field": f"filters.{exc.field}", "value": exc.value, "allowed": exc.allowed})

    @app.exception_handler(WriterBusyError)
    async def _busy(_: Request, exc: WriterBusyError) -> JSONResponse:
        return _error(409, str(exc), {"data_dir": str(exc.data_dir), "holder": exc.holder})

    @app.exception_handler(StorageFullError)
    async def _full(_: Request, exc: StorageFullError) -> JSONResponse:
        return _error(507, str(exc), {"data_dir": str(exc.data_dir)})

    @app.exception_handler(StateUnavailableError)
    async def _state_down(_: Request, exc: StateUnavailableError) -> JSONResponse:
        # a chat turn, a lead, a staff page: what needs the state store says so at once (searches do not need it)
        return _error(503, "the conversation store is not answering: please try again in a minute",
                      {"store": "state"}, {"Retry-After": "5"})

    @app.exception_handler(VectorStoreUnavailable)
    async def _vectors_down(_: Request, exc: VectorStoreUnavailable) -> JSONResponse:
        log.error("%s", exc)
        return _error(503, "the search index is not answering: please try again in a minute",
                      {"store": "vectors"}, {"Retry-After": "5"})

    @app.exception_handler(WriteProcessError)
    async def _write_failed(_: Request, exc: WriteProcessError) -> JSONResponse:
        log.error("%s", exc)
        return _error(503, str(exc))

    async def _disk(_: Request, exc: Exception) -> JSONResponse:
        if not disk_full(exc):
            raise exc  # not a full disk: the 500 handler below
        log.warning("disk full: %s", exc)  # e.g. a lead on a full disk: say so, not "internal error"
        return _error(507, "the disk holding the data folder is full: nothing was saved; try again later")

    app.add_exception_handler(OSError, _disk)
    app.add_exception_handler(sqlite3.OperationalError, _disk)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - a bug
        log.exception("unhandled error")
        return _error(500, "internal error")


def get_assistant(request: Request) -> Assistant:
    get_catalog(request)
    return request.app.state.assistant


class FastJSONResponse(JSONResponse):
    """orjson renders a page of results in a fraction of the time json.dumps takes."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


search_router = APIRouter(prefix="/api/v1", tags=["search"])
chat_router = APIRouter(prefix="/api/v1", tags=["chat"])
org_router = APIRouter(prefix="/api/v1", tags=["organisations"])
health_router = APIRouter(tags=["health"])


@search_router.post("/search", response_model=SearchResponse, responses=PUBLIC_BODY)
async def search(body: SearchRequest, request: Request) -> FastJSONResponse:
    """Rank organisations for a query in pt, zh or en; filters are hard, query words are soft boosts."""
    # Async on purpose: the encoder call goes straight to the encoder's thread and the body is
    # built here, without the two thread-pool hops (endpoint, response check) a sync route takes.
    # The response is built to SearchResponse (the schema tests hold it to that).
    catalog = get_catalog(request)
    f = body.filters
    filters = catalog.resolve_filters(f.country, f.region, f.kind, f.sectors)
    from ._posts import post_view, wanted_types  # opportunity posts

    organisations, post_types = wanted_types(f.type)
    # what is embedded is capped in the engine (CPC_QUERY_CHARS_MAX): encoder time grows with the text
    query = body.query
    async with request.app.state.long_texts.hold(request_client(request), query):  # a ceiling on long work (F6)
        result = await catalog.engine.asearch(query, filters, limit=body.limit if organisations else 1,
                                              offset=body.offset)
        found_posts = None
        if post_types:  # the posts' own small index, the same analysis and judgement (docs/opportunity-posts.md)
            found_posts = await run_in_threadpool(request.app.state.posts.search, query, post_types, body.offset + body.limit,
                                                  analysis=result.analysis)
    truncated = result.truncated
    lang = result.analysis.lang
    request.app.state.metrics.observe_search(result, "api", new_query=body.offset == 0)
    note(lang=lang, query_chars=len(body.query), results=result.total)
    log.debug("search query %r", body.query)  # user text: never at INFO
    if body.offset == 0:  # a new query, not a further page of it
        log_search(request, lang, query, result.total)
    results = [hit_view(h, lang, result.analysis) for h in result.hits] if organisations else []
    total = result.total if organisations else 0
    less_close = result.less_close if organisations else 0
    if found_posts is not None:
        shown = [post_view(h, lang, found_posts.analysis) for h in found_posts.hits]
        total += len(shown)
        less_close += sum(1 for h in found_posts.hits if h.less_close)
        if organisations:  # one list, by score: both were ranked by the same stages
            results = sorted(results + shown, key=lambda r: -r["score"])[: body.limit]
        else:
            results = shown[body.offset: body.offset + body.limit]
    return FastJSONResponse({
        "query": query,
        "truncated": truncated,
        "lang": lang,
        "total": total,
        "matches": total - less_close,
        "less_close": less_close,
        "limit": body.limit,
        "offset": body.offset,
        "understood": result.analysis.understood(),
        "results": results,
        "nearest": [hit_view(h, lang, result.analysis) for h in result.nearest] if organisations else [],
    })


@chat_router.post("/chat", response_model=ChatResponse, responses=PUBLIC_BODY)
async def chat(body: ChatRequest, request: Request, response: Response) -> dict:
    """One turn of a conversation; the reply is in the language of the message.

    Send the reply's ``session_id`` back to continue. Only ids this server issued continue a
    conversation (see assistant/_sessions.py): any other starts a new one (``new_session``).
    """
    async with request.app.state.long_texts.hold(request_client(request), body.text):  # a ceiling on long work (F6)
        return await run_in_threadpool(chat_turn, body, request, response)


def chat_turn(body: ChatRequest, request: Request, response: Response) -> dict:
    assistant = get_assistant(request)
    sessions: WebSessions = request.app.state.web_sessions
    browser = keep_browser(request, response)
    session_id = sessions.resolve(body.session_id, browser)
    new_session = session_id is None
    if new_session:
        session_id = sessions.new_id()
    reply = assistant.respond(session_id, body.text, "web")
    note(lang=reply.lang, text_chars=len(body.text), intent=reply.intent, handoff=reply.handoff,
         new_session=new_session)
    log.debug("chat message %r", body.text)  # user text: never at INFO
    return {
        "session_id": sessions.token(session_id, browser),
        "new_session": new_session,
        "reply": reply.text,
        "lang": reply.lang,
        "intent": reply.intent,
        "step": reply.step,
        "results": [asdict(c) for c in reply.results],
        "suggestions": reply.suggestions,
        "handoff": reply.handoff,
        "lead_id": reply.lead_id,
        "form": reply.form,
        "posts": reply.posts,  # open opportunity posts that fit, with type and deadline labelled
    }


@org_router.get("/organisations/{org_id}", responses=PUBLIC_GET)
def organisation(request: Request, org_id: str = Path(max_length=200)) -> dict:
    """The full record, with its translations and sources, and ``derived_sectors``: the taxonomy
    sectors its own labels and texts were mapped to, each with a confidence and where it came from."""
    engine = get_catalog(request).engine
    rec = engine.records.get(org_id)
    if rec is None:
        raise HTTPException(404, f"no organisation with id '{org_id}'")
    # "field:lang" shown to readers of lang in the original (staff see what lacks a translation)
    return {**rec.model_dump(mode="json", exclude_none=True), "untranslated": rec.untranslated(),
            "derived_sectors": engine.derived_sectors(org_id)}


@org_router.get("/organisations/{org_id}/matches", response_model=MatchesResponse, responses=PUBLIC_GET)
def organisation_matches(request: Request, org_id: str = Path(max_length=200),
                         limit: int = Query(10, ge=1, le=50),
                         lang: str | None = Query(None, pattern="^(pt|zh|en)$",
                                                  description="Language of names and reasons (default: the record's)")) -> FastJSONResponse:
    """Partners on the other side for one organisation, with reasons: for staff preparing matchmaking.

    Uses the record's `seeks` (else its description), its sectors and the value chain between sectors."""
    engine = get_catalog(request).engine
    if org_id not in engine.records:
        raise HTTPException(404, f"no organisation with id '{org_id}'")
    result = engine.matches(org_id, limit=limit, lang=lang)
    lang = lang or result.analysis.lang
    return FastJSONResponse({
        "organisation": org_id,
        "lang": lang,
        "total": result.total,
        "matches": result.matches,
        "less_close": result.less_close,
        "understood": result.analysis.understood(),
        "results": [hit_view(h, lang, result.analysis) for h in result.hits],
        "nearest": [hit_view(h, lang, result.analysis) for h in result.nearest],
    })


@health_router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


READY_TIMEOUT = 1.0  # seconds each store has to answer a readiness probe


def vector_backend(engine) -> str:
    """Where the serving index keeps its vectors, for the start-up log and /readyz (no password)."""
    raw = engine.raw
    if getattr(raw, "kind", None) == "milvus":
        from index import milvus_client_target as client_target

        return f"milvus {client_target(raw.url)[0]} collection {raw.collection}"
    return f"faiss ({getattr(raw, 'kind', None)}) in the data folder"


@health_router.get("/readyz", responses=error_responses(503))
def readyz(request: Request) -> Any:
    """Ready to serve: the index is loaded and each store it needs answers within a second; 503
    (saying which store and why) otherwise. /healthz is the liveness check: the process answers."""
    catalog = get_catalog(request)
    engine = catalog.engine
    m = engine.manifest
    stores: dict[str, dict[str, Any]] = {}
    state = getattr(request.app.state, "state_store", None)
    checks = [("vectors", vector_backend(engine), getattr(engine.raw, "ping", None))]
    if state is not None:
        checks.insert(0, ("state", state.describe(), state.ping))
    for name, backend, ping in checks:
        entry: dict[str, Any] = {"backend": backend, "ok": True}
        if ping is not None:
            try:
                ping(READY_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - any failure to answer is "not ready"
                entry.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
        stores[name] = entry
    ready = all(e["ok"] for e in stores.values())
    body = {"status": "ready" if ready else "unavailable", "records": m.get("records"), "model": m.get("model_id"),
            "built_at": m.get("built_at"), "generation": engine.generation, "stores": stores}
    if not ready:
        return JSONResponse(status_code=503, content={"error": "a store the service needs does not answer: "
                            + ", ".join(f"{k} ({v['backend']})" for k, v in stores.items() if not v["ok"]),
                            "detail": body})
    return body


ROUTE_BUILD_PATH = "/.cpc-build-routes"  # a path no route takes: every router is tried, none answers


async def build_routes(app: FastAPI) -> None:
    """Build every route now, at start-up, not in the first request that reaches it.

    FastAPI builds an included router's routes (their parameters and pydantic validators) the first
    time a request is matched against it. That reads builtins' signatures with ``ast``, which
    CPython 3.11 cannot run on two threads at once (index/_npy.py): two services in one process
    (the two-worker tests) answering their first requests together failed one with a 500. One
    request that matches no route, sent to the router alone (no middleware: nothing is counted
    or logged), makes FastAPI build them all, holding the lock array reads take (another service in
    the process may be reading arrays meanwhile)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": ROUTE_BUILD_PATH, "raw_path": ROUTE_BUILD_PATH.encode(), "root_path": "", "query_string": b"",
             "headers": [], "client": None, "server": None, "state": {}}

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    with AST_LOCK:  # the router builds synchronously; its 404 goes to ``send``, which waits for nothing
        await app.router(scope, receive, send)


def create_app(settings: Settings | None = None, catalog: Catalog | None = None) -> FastAPI:
    """Build the app; the catalog (index) is opened once in the lifespan unless one is given."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        own = catalog is None
        app.state.catalog = catalog or open_catalog(settings)
        app.state.catalog.serving = True  # writes here must not stall searches (Catalog.serving)
        # A thread that gives up the GIL (a search calling the encoder or numpy) waits for it again
        # until the holder's switch interval ends: 5 ms by default, paid at every hand-off while a
        # new index generation loads beside it. 1 ms cut the worst search overlapping a 100k reload
        # from ~120 to ~60-75 ms (in process, bench/scale.py measures it through the API).
        sys.setswitchinterval(SWITCH_INTERVAL)
        store = open_state_store(settings)
        app.state.state_store = store
        log.info("state store: %s", store.describe(), extra={"fields": {"store": "state", "backend": store.backend}})
        engine = app.state.catalog.engine
        log.info("vector store: %s", vector_backend(engine),
                 extra={"fields": {"store": "vectors", "backend": engine.manifest.get("index_type")}})
        if settings.vector_url and engine.manifest.get("index_type") != "milvus":
            log.warning("CPC_VECTOR_URL is set but the index keeps its vectors in FAISS: `cpc index build` (or the"
                        " admin reindex) moves them to %s", settings.vector_url)
        app.state.rate_limits.store = app.state.encoder_budget.store = store  # budgets shared by every worker
        app.state.web_sessions = WebSessions(store.secret("web_session_key"))
        store.purge(settings.retention_query_log_days or None, settings.retention_closed_leads_days or None)
        app.state.assistant = Assistant(lambda: MeteredEngine(app.state.catalog.engine, app.state.metrics), store,
                                        text_cap=settings.query_chars_max)
        from ._posts import PostDesk  # opportunity posts

        app.state.posts = PostDesk(store, lambda: app.state.catalog.engine)
        app.state.assistant.posts = app.state.posts
        import threading  # the open posts are encoded now, beside the first requests, not inside one of them

        threading.Thread(target=app.state.posts.warm, name="posts-warm", daemon=True).start()
        await build_routes(app)  # before the first request: see build_routes
        app.state.assistant.scope  # warm the intent examples before the first message
        app.state.assistant.team.warm()  # and the staff's FAQ
        warm_langdetect()  # its ~50 MB of profiles now, not under the first burst of traffic
        # What start-up made lives as long as the process: out of the collector's sight, a full
        # collection no longer walks it (one stalled a search by 110-140 ms every few hundred requests)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            app.state.rate_limits.store = app.state.encoder_budget.store = None
            store.close()
            app.state.metrics.process_ended()
            if own:
                app.state.catalog.close()

    app = FastAPI(
        title="CPC Alliance partner finder",
        version="0.1.0",
        description="Find partners across Portugal and China in Portuguese, Chinese or English.",
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # served from installed assets by install_docs (_docs.py), not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_limits(app, settings)  # body size and rate limits
    install_cors(app, settings)  # outside the limits, so a 429 still carries CORS headers
    app.add_middleware(MetricsGuard, settings=settings)  # /metrics behind the staff key (F12)
    app.add_middleware(ConfiguredRedirects, origins=settings.cors_origins)  # no redirect to the Host header's host
    install_observability(app, lambda: getattr(app.state, "catalog", None))  # outermost: sees every request
    app.include_router(search_router)
    app.include_router(chat_router)
    app.include_router(org_router)
    app.include_router(health_router)
    app.include_router(staff_router)
    app.include_router(chat_messages_router)
    app.include_router(admin_router)
    app.include_router(accounts_router)  # named staff accounts, audit log, inbox reads (_accounts_api.py)
    app.include_router(accounts_admin_router)
    app.include_router(accounts_page_router)
    app.include_router(web_router)
    install_docs(app)
    from ._alerts_api import router as alerts_router, staff_router as alerts_staff_router  # alerts (members)
    app.include_router(alerts_router), app.include_router(alerts_staff_router)  # alerts (members)
    from ._opportunities_api import page_router as map_page, router as map_router  # opportunity map (members)
    app.include_router(map_router), app.include_router(map_page)  # opportunity map (members)
    from ._profiles_api import page_router as join_page, router as join_router, staff_router as join_staff  # join (members)
    app.include_router(join_router), app.include_router(join_staff), app.include_router(join_page)  # join (members)
    from ._posts_api import page_router as posts_page, router as posts_router, staff_router as posts_staff_router  # opportunity posts
    app.include_router(posts_router), app.include_router(posts_staff_router), app.include_router(posts_page)  # opportunity posts
    from ._moderation_api import page_router as moderation_page, router as moderation_router  # one review queue
    app.include_router(moderation_router), app.include_router(moderation_page)  # one review queue
    mount_extensions(app, settings)  # e.g. the Telegram and WeChat routes, when configured
    return app
