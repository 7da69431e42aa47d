"""Staff access: one key (CPC_ADMIN_TOKEN), compared in constant time.

No key configured means staff endpoints are disabled, never open.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-staff-key")


def is_staff(request: Request) -> bool:
    """True when the request carries the configured key; never raises (the query log uses it)."""
    configured = request.app.state.settings.admin_token
    key = presented_key(request)
    if configured is None or not configured.get_secret_value() or not key:
        return False
    return hmac.compare_digest(key.encode(), configured.get_secret_value().encode())


def require_staff(request: Request) -> None:
    """FastAPI dependency: 401 without a key, 403 with a wrong one or when disabled."""
    configured = request.app.state.settings.admin_token
    if configured is None or not configured.get_secret_value():
        raise HTTPException(403, "staff endpoints are disabled: set CPC_ADMIN_TOKEN to enable them")
    key = presented_key(request)
    if not key:
        raise HTTPException(401, "staff key required (Authorization: Bearer <key>)", headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(key.encode(), configured.get_secret_value().encode()):
        raise HTTPException(403, "wrong staff key")
