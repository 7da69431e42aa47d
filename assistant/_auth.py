"""Who is asking: a named staff account (console session cookie) or the shared key (CPC_ADMIN_TOKEN).

The key is for automation: ``Authorization: Bearer <key>``, acting as an admin named "token" in
the audit log. People sign in with a named account (``cpc staff add``); the console then holds
an HttpOnly, SameSite=Strict cookie whose session lives in the state store. A state-changing
request authenticated by the cookie must also carry the session's CSRF token in ``X-CSRF-Token``:
a cookie is sent by the browser on its own, a header only by the console's script.

Roles: viewer reads; staff also works leads; admin also manages accounts, records and the index
and reads the audit log. No key configured and no account means staff endpoints are disabled,
never open.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

from . import _accounts as accounts

log = logging.getLogger("cpc.staff")

COOKIE = "cpc_staff"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# POSTs that only read (a search exported with its body; a lead marked read by this person)
READING_POSTS = ("/api/v1/staff/export",)


@dataclass(frozen=True)
class Principal:
    name: str  # the account's name, or "token" for the shared key
    role: str
    via: str  # "session" or "token"
    csrf: str | None = None


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-staff-key")


def _key_matches(request: Request, key: str) -> bool:
    configured = request.app.state.settings.admin_token
    if configured is None or not configured.get_secret_value():
        return False
    return hmac.compare_digest(key.encode(), configured.get_secret_value().encode())


def _store(request: Request) -> Any:
    assistant = getattr(request.app.state, "assistant", None)
    return None if assistant is None else assistant.store


def session_principal(request: Request) -> Principal | None:
    """The account of a live console session cookie, or None."""
    token = request.cookies.get(COOKIE)
    store = _store(request)
    if not token or store is None or len(token) > 200:
        return None
    found = store.staff_session(accounts.token_hash(token))
    return None if found is None else Principal(found["account"], found["role"], "session", found["csrf"])


def principal(request: Request) -> Principal | None:
    """Who made the request, or None; never raises (the query log uses it)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    key = presented_key(request)
    try:
        if key:
            found = Principal("token", "admin", "token") if _key_matches(request, key) else None
        else:
            found = session_principal(request)
    except Exception:  # the state store is down: nobody is signed in
        log.warning("could not check a staff session", exc_info=True)
        found = None
    if found is not None:
        request.state.principal = found
    return found


def is_staff(request: Request) -> bool:
    return principal(request) is not None


def staff_enabled(request: Request) -> bool:
    configured = request.app.state.settings.admin_token
    if configured is not None and configured.get_secret_value():
        return True
    store = _store(request)
    try:
        return store is not None and store.has_accounts()
    except Exception:
        return False


def _authenticate(request: Request) -> Principal:
    if not staff_enabled(request):
        raise HTTPException(403, "staff endpoints are disabled: add an account with `cpc staff add NAME --role admin` "
                                 "or set CPC_ADMIN_TOKEN to enable them")
    key = presented_key(request)
    if key:
        if not _key_matches(request, key):
            raise HTTPException(403, "wrong staff key")
        return principal(request)  # type: ignore[return-value]
    if not request.cookies.get(COOKIE):
        raise HTTPException(401, "staff key required (Authorization: Bearer <key>) or sign in at /staff",
                            headers={"WWW-Authenticate": "Bearer"})
    found = principal(request)
    if found is None:
        raise HTTPException(401, "your session has ended: sign in again", headers={"WWW-Authenticate": "Bearer"})
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), (found.csrf or "").encode()):
            raise HTTPException(403, "missing or wrong CSRF token: send the X-CSRF-Token header the sign-in gave")
    return found


def _require(request: Request, role: str) -> Principal:
    found = _authenticate(request)
    if not accounts.at_least(found.role, role):
        raise HTTPException(403, f"'{found.name}' is a {found.role}: this needs the {role} role")
    return found


def require_staff(request: Request) -> Principal:
    """FastAPI dependency of the staff routes: anyone signed in reads; changing needs the staff role."""
    reading = request.method in SAFE_METHODS or request.url.path in READING_POSTS or request.url.path.endswith("/read")
    return _require(request, "viewer" if reading else "staff")


def require_viewer(request: Request) -> Principal:
    return _require(request, "viewer")


def require_admin(request: Request) -> Principal:
    """FastAPI dependency of the admin routes (records, index, accounts, audit)."""
    return _require(request, "admin")


def author(request: Request) -> str:
    """The name notes and messages are signed with: the account, or "token"."""
    found = principal(request)
    return found.name if found else ""


def audit(request: Request, action: str, target: Any = "", **detail: Any) -> None:
    """One audit entry for what the signed-in person (or the key) just did."""
    found = principal(request)
    store = _store(request)
    if found is None or store is None:
        return
    store.audit(found.name, found.role, found.via, action, "" if target is None else str(target),
                {k: v for k, v in detail.items() if v is not None})
