"""Request limits: body size (413), per-client request and cost limits (429), as plain ASGI middleware.

All refuse before the app does any work: the size cap checks Content-Length first and then
counts bytes while the body streams in (chunked uploads have no length to check); the rate
limits answer from buckets per client kept in the state store, so every worker process spends
from the same budget (in memory until the store is open, or while it is down: a search never
waits on a state database that does not answer). A client is its address, with an IPv6
address taken as its /64 (what one subscriber is given), so rotating within it or writing one
address another way buys nothing. Besides a number of requests a minute, each client has a
budget of encoder work a minute, in tokens: every encode is charged its texts' tokens (encoder
time is close to proportional to them), and a client in debt is refused until the debt has refilled.
Tokens, not measured time: the cost of a text does not change with how busy the machine is.
Refusals are JSON like every other error, and a 429 says when to come back (Retry-After).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from index import EncoderClient, encoder_client, text_width

from ._schemas import ApiError
from ._state import spend
from .settings import Settings

if TYPE_CHECKING:
    from ._state import StateStore

log = logging.getLogger("cpc.limits")

INGEST_PATH = "/api/v1/admin/ingest"
# The public API: what anyone can call, so what one client could flood.
LIMITED_PREFIXES = ("/api/v1/search", "/api/v1/chat", "/api/v1/organisations/", "/api/v1/facets")


class TokenBuckets:
    """One token bucket per key: ``per_minute`` tokens, refilled evenly; 0 disables.

    A key may burst up to a minute's worth, then gets one request per 60/per_minute seconds.
    With a ``store`` the buckets live there, under "<scope>:<key>", shared by every worker
    process; without one (or while it fails) in memory, where at most ``max_keys`` are kept (least
    recently used go first), so a flood of distinct addresses cannot grow memory without bound.
    """

    def __init__(self, per_minute: int, max_keys: int = 100_000, clock: Callable[[], float] = time.time,
                 scope: str = "rate", store: StateStore | None = None):
        self.scope = scope
        self.store = store
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
        if self.store is not None and not self.store.down:  # a store that is down is not waited for
            try:
                return self.store.take(f"{self.scope}:{key}", 1.0, self.rate, self.capacity, now=now)
            except Exception as exc:
                log.warning("rate budget not read from the state store: counted in this process: %s", exc)
        with self._lock:
            tokens, when = self._buckets.pop(key, (self.capacity, now))
            tokens, wait = spend(tokens, when, now, 1.0, self.rate, self.capacity, debt=False)
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


class CostBudget:
    """Per-key budget of a cost (encoder tokens) refilling at ``per_minute`` a minute, holding at
    most ``burst_seconds`` of refill; 0 disables.

    A key may start work while its balance is positive; the work is charged afterwards, when
    its cost is known, and may leave the balance negative. The key then waits until the debt
    has refilled. The small burst is on purpose: a minute's budget spent at once would be a
    minute's worth of extra load on the encoder at once. With a ``store`` the balances live there
    (shared by every worker process), else in memory, where at most ``max_keys`` are kept (least
    recently used go first).
    """

    def __init__(self, per_minute: float, burst_seconds: float = 10.0, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.time, scope: str = "encoder", store: StateStore | None = None):
        self.scope = scope
        self.store = store
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = self.rate * burst_seconds
        self.max_keys = max_keys
        self.clock = clock
        self._balances: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (balance, when)
        self._lock = threading.Lock()  # charged from the encoder's thread

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def _spend(self, key: str, now: float, cost: float) -> float:
        """The in-memory step (the store's arithmetic, ``spend``): charge ``cost`` and say the wait."""
        balance, when = self._balances.pop(key, (self.capacity, now))
        balance, wait = spend(balance, when, now, cost, self.rate, self.capacity, debt=True)
        self._store(key, balance, now)
        return wait

    def wait(self, key: str) -> float:
        """0.0 when ``key`` may start work, else the seconds until its balance is positive again."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        if self.store is not None and not self.store.down:
            try:  # a read: only a charge writes
                balance = self.store.balance(f"{self.scope}:{key}", self.rate, self.capacity, now=now)
                return 0.0 if balance > 0 else (-balance) / self.rate + 1e-3
            except Exception as exc:
                log.warning("encoder budget not read from the state store: counted in this process: %s", exc)
        with self._lock:
            return self._spend(key, now, 0.0)

    def charge(self, key: str, cost: float) -> None:
        if not self.enabled or cost <= 0:
            return
        now = self.clock()
        if self.store is not None and not self.store.down:
            try:
                self.store.take(f"{self.scope}:{key}", cost, self.rate, self.capacity, debt=True, now=now)
                return
            except Exception as exc:
                log.warning("encoder budget not charged in the state store: counted in this process: %s", exc)
        with self._lock:  # a debt is bounded by one burst (``spend``): past that, one call costs no more waiting
            self._spend(key, now, cost)

    def balance(self, key: str) -> float:
        if self.store is not None:
            return self.store.balance(f"{self.scope}:{key}", self.rate, self.capacity, now=self.clock())
        with self._lock:
            balance, when = self._balances.get(key, (self.capacity, self.clock()))
            return min(self.capacity, balance + (self.clock() - when) * self.rate)

    def _store(self, key: str, balance: float, now: float) -> None:
        self._balances[key] = (balance, now)
        while len(self._balances) > self.max_keys:
            self._balances.popitem(last=False)

    def __len__(self) -> int:
        return len(self._balances)


def client_key(host: str | None) -> str:
    """One key per client: an IPv4 address, or the /64 of an IPv6 one; every way of writing an
    address ("2001:DB8::1", "[2001:db8:0::1]:443", "::ffff:192.0.2.1", "fe80::1%eth0") gives the
    same key. Anything that is not an address is used as it is (lower-cased)."""
    text = (host or "").strip().lower()
    if not text:
        return "unknown"
    bare = text
    if bare.startswith("["):  # "[v6]" or "[v6]:port"
        bare = bare[1:].split("]", 1)[0]
    elif bare.count(":") == 1:  # "v4:port"
        bare = bare.split(":", 1)[0]
    bare = bare.split("%", 1)[0]  # an IPv6 zone
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


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
    """429 once a client has used up its requests or its encoder time on the public API.

    The client is the connection's address, or the one a trusted proxy forwarded (``cpc serve
    --forwarded-allow-ips``), keyed by ``client_key``. Every request's encodes queue under that
    key (``index.encoder_client``); on the public API they are charged to its budget. Requests
    with the staff key are not limited: the staff console runs its searches through the public
    endpoints.
    """

    def __init__(self, app, settings: Settings, buckets: TokenBuckets, budget: CostBudget):
        self.app = app
        self.settings = settings
        self.buckets = buckets
        self.budget = budget

    def _is_staff(self, scope) -> bool:
        token = self.settings.admin_token
        if token is None or not token.get_secret_value():
            return False
        auth = _header(scope, b"authorization") or ""
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else _header(scope, b"x-staff-key")
        return bool(key) and hmac.compare_digest(key.encode(), token.get_secret_value().encode())

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client_key(client[0] if client else None)
        limited = scope.get("path", "").startswith(LIMITED_PREFIXES) and not self._is_staff(scope)
        if limited:
            store = self.buckets.store or self.budget.store
            if store is not None and store.remote:  # a network round trip: not on the event loop
                refusal = await asyncio.to_thread(self._refusal, key)
            else:
                refusal = self._refusal(key)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        charge = (lambda tokens: self.budget.charge(key, tokens)) if limited and self.budget.enabled else None
        token = encoder_client.set(EncoderClient(key, charge))
        try:
            await self.app(scope, receive, send)
        finally:
            encoder_client.reset(token)

    def _refusal(self, key: str) -> JSONResponse | None:
        """The 429 for a client over a limit (a refused request spends nothing), or None."""
        wait = self.budget.wait(key)
        if wait:
            seconds = retry_after(wait)
            per = self.budget.per_minute
            return _json(429, f"too much search work from one client: at most {per:g} encoder tokens a minute "
                              f"(long texts cost more); retry in {seconds} s",
                         {"retry_after": seconds, "encoder_tokens_per_minute": per}, {"Retry-After": str(seconds)})
        wait = self.buckets.take(key)
        if wait:
            seconds = retry_after(wait)
            per = self.buckets.per_minute
            return _json(429, f"too many requests: at most {per} a minute from one client; retry in {seconds} s",
                         {"retry_after": seconds, "limit_per_minute": per}, {"Retry-After": str(seconds)})
        return None


class LongTextGate:
    """A global ceiling on long texts in flight in one server process (round 3, F6).

    Per-client budgets hold one address to its share; ten addresses sending long messages at once
    still took most of the process's CPU (the encoder, and the reading of long texts around it),
    and everyone else's search waited behind them. Texts wider than ``long_width`` (a CJK
    character counting two; the service passes what the encoder reads, CPC_QUERY_CHARS_MAX) go through ``slots`` places, taken in arrival order (asyncio's
    semaphore is FIFO), one at a time per client; a client that already has one in flight, or
    whose text waited ``wait`` seconds, gets a 429 with Retry-After. Short texts never wait here.
    """

    def __init__(self, slots: int = 1, wait: float = 3.0, long_width: int = 200):
        self.slots = slots
        self.wait = wait
        self.long_width = long_width
        self._places: asyncio.Semaphore | None = None  # made on the serving loop
        self._clients: set[str] = set()  # clients with a long text waiting or in flight

    def is_long(self, text: str) -> bool:
        return self.slots > 0 and text_width(text) > self.long_width

    def _refuse(self, why: str, seconds: int) -> ApiError:
        return ApiError(429, f"{why}: retry in {seconds} s", {"retry_after": seconds}, {"Retry-After": str(seconds)})

    @asynccontextmanager
    async def hold(self, client: str, text: str) -> AsyncIterator[None]:
        if not self.is_long(text):
            yield
            return
        if client in self._clients:
            raise self._refuse("one long message at a time per client", 1)
        if self._places is None:
            self._places = asyncio.Semaphore(self.slots)
        self._clients.add(client)
        try:
            try:
                await asyncio.wait_for(self._places.acquire(), self.wait)
            except asyncio.TimeoutError:
                raise self._refuse("the server is busy with long messages", retry_after(self.wait)) from None
            try:
                yield
            finally:
                self._places.release()
        finally:
            self._clients.discard(client)


def request_client(scope_or_request) -> str:
    """The client key of a request (its address, or the one a trusted proxy forwarded)."""
    client = getattr(scope_or_request, "client", None)
    return client_key(client[0] if client else None)


def install_limits(app: FastAPI, settings: Settings) -> None:
    """Rate limit outside the size cap: a throttled client's body is never read."""
    app.state.rate_limits = TokenBuckets(settings.rate_limit_per_minute, scope="api")
    app.state.long_texts = LongTextGate(settings.long_text_slots, long_width=settings.query_chars_max)
    app.state.encoder_budget = CostBudget(settings.encoder_tokens_per_minute, scope="encoder")  # given the store in the lifespan
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes, ingest_limit=settings.max_ingest_bytes)
    app.add_middleware(RateLimit, settings=settings, buckets=app.state.rate_limits, budget=app.state.encoder_budget)


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
