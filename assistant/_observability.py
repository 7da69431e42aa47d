"""Request ids, one JSON log line per request, and Prometheus metrics at /metrics.

Log lines carry no secrets and no user texts at INFO: searches and chat messages are logged
as their length and language (the texts themselves only at DEBUG). Client addresses appear
only as a keyed hash that changes with every process start, enough to follow one client
through a burst of requests and useless for finding who it was.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.datastructures import MutableHeaders

log = logging.getLogger("cpc.request")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_QUIET_ROUTES = {"/healthz", "/readyz", "/metrics"}  # probes and scrapes: DEBUG, not INFO
_SALT = secrets.token_bytes(16)

request_id: ContextVar[str | None] = ContextVar("cpc_request_id", default=None)
_fields: ContextVar[dict[str, Any] | None] = ContextVar("cpc_log_fields", default=None)


def note(**fields: Any) -> None:
    """Add fields to the current request's log line (e.g. lang, query length)."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


@functools.lru_cache(maxsize=4096)  # one HMAC per address, not per request
def client_hash(address: str) -> str:
    return hmac.new(_SALT, address.encode(), hashlib.sha256).hexdigest()[:12]


# -- logging ---------------------------------------------------------------------------------
class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra={"fields": {...}}`` adds keys; known secrets are masked."""

    def __init__(self, secrets_: Iterable[str] = ()):
        super().__init__()
        self.secrets = sorted({s for s in secrets_ if s and len(s) >= 6}, key=len, reverse=True)

    def _mask(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker of `cpc serve --workers`
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            out["request_id"] = rid
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return self._mask(json.dumps(out, ensure_ascii=False, default=str))


_RAW_LEVELS = {"E": "error", "F": "critical", "W": "warning", "I": "info", "D": "debug"}


class _RawLines:
    """What is written straight to file descriptor 2 by native code (gRPC's C core under pymilvus,
    milvus-lite, FAISS) or by a child process, turned into log lines of the same JSON shape: fd 2
    becomes a pipe whose reader writes JSON lines as they are and wraps any other line. Our own
    handler writes to the original stream, so nothing goes round twice."""

    def __init__(self, secrets_: Iterable[str] = ()):
        self.formatter = JsonFormatter(secrets_)
        self.original = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace", buffering=1)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        sys.stderr = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace", buffering=1)
        self.reader = os.fdopen(read, "rb")
        self.thread = threading.Thread(target=self._pump, name="stderr-lines", daemon=True)
        self.thread.start()
        import atexit

        atexit.register(self.close)

    def _pump(self) -> None:
        for raw in self.reader:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            if not text.strip():
                continue
            if text.startswith("{") and text.endswith("}"):
                try:
                    json.loads(text)
                    self.original.write(text + "\n")  # a JSON line already (a worker's, the write process's)
                    continue
                except ValueError:
                    pass
            record = logging.LogRecord("stderr", logging.INFO, "", 0, text, None, None)
            level = _RAW_LEVELS.get(text[:1]) if len(text) > 5 and text[1:5].isdigit() else None  # glog: "I1206 ..."
            out = json.loads(self.formatter.format(record))
            out["level"] = level or "info"
            self.original.write(json.dumps(out, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """At exit: give the reader what is left (fd 2 back to the original), briefly."""
        try:
            sys.stderr.flush()
            os.dup2(self.original.fileno(), 2)
            sys.stderr.close()
        except OSError:
            return
        self.thread.join(timeout=1)


_raw: _RawLines | None = None


def capture_raw_stderr(secrets_: Iterable[str] = ()) -> None:
    """Once a process: every line on fd 2 leaves as a JSON object (see _RawLines)."""
    global _raw
    if _raw is None:
        _raw = _RawLines(secrets_)


class CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is written, not the one there when it was
    made: a `cpc` command run in process (the tests do) would otherwise keep its handler on a
    stream that was replaced and closed since, and every later line failed with "I/O operation on
    closed file" ("--- Logging error ---" and a traceback on the real stderr)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass  # StreamHandler sets it; the current stderr is always used


def configure_logging(level: str = "info", secrets_: Iterable[str] = (), stream=None,
                      capture_raw: bool = False) -> logging.Handler:
    """JSON lines on stderr for our loggers, uvicorn's and the libraries' (pymilvus and milvus-lite
    log through Python's logging too); the write process's lines are JSON as well (index/_writer.py).

    httpx logs every request URL at INFO, and a Telegram bot's URLs contain its token: httpx is
    held at WARNING, and the formatter masks the configured secrets in any line that slips through.
    """
    if capture_raw and stream is None:
        capture_raw_stderr(secrets_)
    if stream is not None or _raw is not None:
        handler: logging.StreamHandler = logging.StreamHandler(stream or _raw.original)
    else:
        handler = CurrentStderr()
    handler.setFormatter(JsonFormatter(secrets_))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a library's warning is a log line too, not raw text on stderr
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # one line per request comes from us
    for noisy in ("httpx", "httpcore", "telegram", "urllib3", "jieba"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler


def configured_secrets(settings) -> list[str]:
    names = ("admin_token", "telegram_token", "telegram_secret", "wechat_token", "wechat_aes_key", "wechat_secret")
    values = []
    for name in names:
        value = getattr(settings, name, None)
        if value is not None:
            values.append(value.get_secret_value())
    return values


# -- metrics ---------------------------------------------------------------------------------
class _IndexCollector:
    """Index size read at scrape time from whichever engine is current."""

    def __init__(self, catalog: Callable[[], Any]):
        self.catalog = catalog

    def collect(self):
        records = GaugeMetricFamily("cpc_index_records", "Organisations in the serving index")
        vectors = GaugeMetricFamily("cpc_index_vectors", "Dense vectors in the serving index")
        catalog = self.catalog()
        if catalog is not None and catalog.ready:
            manifest = catalog.engine.manifest
            records.add_metric([], float(manifest.get("records") or 0))
            vectors.add_metric([], float(manifest.get("vectors") or 0))
        yield records
        yield vectors

    def describe(self):
        return []


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """One registry per app, so several apps in one process (the tests) keep separate counts.

    Under ``cpc serve --workers`` (which sets PROMETHEUS_MULTIPROC_DIR to a folder of its run) the
    client library's multiprocess mode is on: each worker writes its counts to files there and a
    scrape of any worker adds up every worker's, those of workers that died included."""

    def __init__(self, catalog: Callable[[], Any]):
        self.registry = r = CollectorRegistry()
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        if not self.multiprocess:  # per-process figures mean little summed over workers
            ProcessCollector(registry=r)
        self.requests = Counter("cpc_http_requests", "HTTP requests by route template and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("cpc_http_request_duration_seconds", "HTTP request latency by route template",
                                 ["method", "route"], registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120))
        self.searches = Counter("cpc_searches", "New searches (first pages) by source", ["source"], registry=r)
        self.zero_results = Counter("cpc_zero_result_searches", "New searches that found nothing, by source",
                                    ["source"], registry=r)
        self.encode = Histogram("cpc_query_encode_seconds", "Time to encode one query", registry=r,
                                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.search_time = Histogram("cpc_search_seconds", "Engine time per search (encode, retrieve, rank)",
                                     ["source"], registry=r,
                                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self._index = _IndexCollector(catalog)
        r.register(self._index)
        for source in ("api", "assistant"):  # present from the start, so rates work from zero
            self.searches.labels(source)
            self.zero_results.labels(source)

    def observe_search(self, result, source: str, new_query: bool = True) -> None:
        timings = result.timings or {}
        if "encode" in timings:
            self.encode.observe(timings["encode"])
        if "total" in timings:
            self.search_time.labels(source).observe(timings["total"])
        if new_query:
            self.searches.labels(source).inc()
            if result.total == 0:
                self.zero_results.labels(source).inc()

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        merged.register(self._index)  # the index this worker serves (every worker follows the same)
        return generate_latest(merged)

    def process_ended(self, pid: int | None = None) -> None:
        """Multiprocess mode: a worker's live gauges go with it (its counts stay in the sums)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid or os.getpid())


class MeteredEngine:
    """The engine as the assistant sees it: searches are counted, all else passes through."""

    def __init__(self, engine, metrics: Metrics):
        self._engine = engine
        self._metrics = metrics

    def search(self, query, filters=None, limit: int = 10, offset: int = 0, **kwargs):
        result = self._engine.search(query, filters, limit=limit, offset=offset, **kwargs)
        self._metrics.observe_search(result, "assistant", new_query=offset == 0)
        return result

    def __getattr__(self, name: str):
        return getattr(self._engine, name)


# -- the middleware --------------------------------------------------------------------------
def route_template(scope: dict[str, Any]) -> str:
    """The matched route's path template; one label for everything unmatched (no cardinality blow-up)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestObserver:
    """Outermost: gives each request an id, times it, counts it and logs one line for it."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-request-id"), "")
        rid = given if _VALID_ID.match(given) else uuid.uuid4().hex
        fields: dict[str, Any] = {}
        tokens = (request_id.set(rid), _fields.set(fields))
        status = 500  # unless a response starts: an exception escaped
        start = time.perf_counter()

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"
            route = route_template(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            client = scope.get("client")
            line = {"method": method, "route": route, "status": status, "duration_ms": round(elapsed * 1000, 2),
                    "client": client_hash(client[0]) if client else None, **fields}
            level = logging.DEBUG if route in _QUIET_ROUTES and status < 400 else logging.INFO
            log.log(level, "%s %s %s", method, route, status, extra={"fields": line, "request_id": rid})
            request_id.reset(tokens[0])
            _fields.reset(tokens[1])


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text format"}})
def metrics(request: Request) -> Response:
    """Counters and histograms for Prometheus: requests, latency, searches, zero results, index size."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def install_observability(app: FastAPI, catalog: Callable[[], Any]) -> Metrics:
    """Add last, so it wraps every other middleware and sees their refusals (413, 429) too."""
    app.state.metrics = Metrics(catalog)
    app.add_middleware(RequestObserver, metrics=app.state.metrics)
    app.include_router(router)
    return app.state.metrics
