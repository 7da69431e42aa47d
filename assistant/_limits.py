"""Request limits: body size (413) and per-client rate limits (429), as plain ASGI middleware.

Both refuse before the app does any work: the size cap checks Content-Length first and then
counts bytes while the body streams in (chunked uploads have no length to check); the rate
limit answers from an in-memory token bucket per client address. Refusals are JSON like every
other error, and a 429 says when to come back (Retry-After).
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from ._schemas import ApiError
from .settings import Settings

INGEST_PATH = "/api/v1/admin/ingest"
# The public API: what anyone can call, so what one client could flood.
LIMITED_PREFIXES = ("/api/v1/search", "/api/v1/chat", "/api/v1/organisations/", "/api/v1/facets")


class TokenBuckets:
    """One token bucket per key: ``per_minute`` tokens, refilled evenly; 0 disables.

    A key may burst up to a minute's worth, then gets one request per 60/per_minute seconds.
    At most ``max_keys`` buckets are kept (least recently used go first), so a flood of
    distinct addresses cannot grow memory without bound.
    """

    def __init__(self, per_minute: int, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)
        self._lock = threading.Lock()  # the chat channels call from worker threads too

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key: str) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until a token is available."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, when = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait: float) -> int:
    """Whole seconds for the Retry-After header (at least 1)."""
    return max(1, math.ceil(wait))


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _json(status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


class BodySizeLimit:
    """413 for a body over the limit: refused on its Content-Length, or stopped while it streams.

    The admin ingest route has its own, larger limit (it is behind the staff key, which is
    checked before its body is read).
    """

    def __init__(self, app, limit: int, ingest_limit: int):
        self.app = app
        self.limit = limit
        self.ingest_limit = ingest_limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.ingest_limit if scope.get("path") == INGEST_PATH else self.limit
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _json(413, f"request body over {limit} bytes", {"limit": limit})(scope, receive, send)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # FastAPI passes an HTTPException from body reading through to the handler
                    raise ApiError(413, f"request body over {limit} bytes", {"limit": limit})
            return message

        await self.app(scope, counted, send)


class RateLimit:
    """429 once a client address has used up its bucket on the public API.

    The address is the connection's, or the one a trusted proxy forwarded (uvicorn's
    ``--forwarded-allow-ips``). Requests with the staff key are not limited: the staff console
    runs its searches through the public endpoints.
    """

    def __init__(self, app, settings: Settings, buckets: TokenBuckets):
        self.app = app
        self.settings = settings
        self.buckets = buckets

    def _is_staff(self, scope) -> bool:
        token = self.settings.admin_token
        if token is None or not token.get_secret_value():
            return False
        auth = _header(scope, b"authorization") or ""
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else _header(scope, b"x-staff-key")
        return bool(key) and hmac.compare_digest(key.encode(), token.get_secret_value().encode())

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or not self.buckets.enabled
                or not scope.get("path", "").startswith(LIMITED_PREFIXES) or self._is_staff(scope)):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "unknown")
        if wait:
            seconds = retry_after(wait)
            per = self.buckets.per_minute
            await _json(429, f"too many requests: at most {per} a minute from one client; retry in {seconds} s",
                        {"retry_after": seconds, "limit_per_minute": per},
                        {"Retry-After": str(seconds)})(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_limits(app: FastAPI, settings: Settings) -> None:
    """Rate limit outside the size cap: a throttled client's body is never read."""
    app.state.rate_limits = TokenBuckets(settings.rate_limit_per_minute)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes, ingest_limit=settings.max_ingest_bytes)
    app.add_middleware(RateLimit, settings=settings, buckets=app.state.rate_limits)


class JsonCORS(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered in JSON like every other refusal."""

    def preflight_response(self, request_headers: Headers):
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode("utf-8", "replace")
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        return _json(response.status_code, f"CORS preflight refused: {reason}", None, headers)


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Browsers on the configured origins may call the API; with none configured, no CORS headers at all."""
    if not settings.cors_origins:
        return
    app.add_middleware(JsonCORS, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                       allow_headers=["Authorization", "Content-Type", "X-Staff-Key", "X-Request-ID"],
                       expose_headers=["X-Request-ID", "Retry-After"], max_age=600)
