"""Two small guards around the app (security review round 3, F12).

- ``/metrics`` tells anyone who can reach it how busy the service is, which routes exist and how
  big the index is: it needs the staff key unless ``CPC_METRICS_PUBLIC`` says the port is only
  reachable by the scraper.
- Starlette's trailing-slash redirect (``/api/v1/search/`` → ``/api/v1/search``) builds its
  ``Location`` from the request's Host header, so anyone can make the server redirect to a host
  of their choosing (cache poisoning behind a proxy). A redirect to another host is rewritten
  to a relative one, unless that host is one of the configured origins (``CPC_CORS_ORIGINS``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.responses import JSONResponse

from ._limits import _header

METRICS_PATH = "/metrics"
REDIRECTS = (301, 302, 303, 307, 308)


class MetricsGuard:
    """401/403 for ``/metrics`` without the staff key (the same check as the staff routes)."""

    def __init__(self, app, settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("path") == METRICS_PATH and not self.settings.metrics_public:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope) -> JSONResponse | None:
        import hmac

        token = self.settings.admin_token
        if token is None or not token.get_secret_value():
            return JSONResponse({"error": "metrics need the staff key: set CPC_ADMIN_TOKEN (or CPC_METRICS_PUBLIC=true "
                                          "when only the scraper can reach this port)", "detail": None}, status_code=403)
        auth = _header(scope, b"authorization") or ""
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else (_header(scope, b"x-staff-key") or "")
        if not key:
            return JSONResponse({"error": "staff key required (Authorization: Bearer <key>)", "detail": None},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(key.encode(), token.get_secret_value().encode()):
            return JSONResponse({"error": "wrong staff key", "detail": None}, status_code=403)
        return None


class ConfiguredRedirects:
    """A redirect's Location keeps its host only when it is a configured origin; else it becomes
    the path (and query) alone, which the client resolves against the URL it asked for."""

    def __init__(self, app, origins: list[str]):
        self.app = app
        self.origins = {o.rstrip("/").lower() for o in origins}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded(message) -> None:
            if message["type"] == "http.response.start" and message["status"] in REDIRECTS:
                message = dict(message, headers=[(k, self._location(v) if k.lower() == b"location" else v)
                                                 for k, v in message.get("headers", [])])
            await send(message)

        await self.app(scope, receive, guarded)

    def _location(self, value: bytes) -> bytes:
        where = urlsplit(value.decode("latin-1"))
        if not where.netloc or f"{where.scheme}://{where.netloc}".lower() in self.origins:
            return value
        relative = "/" + where.path.lstrip("/") + (f"?{where.query}" if where.query else "")
        return relative.encode("latin-1")
