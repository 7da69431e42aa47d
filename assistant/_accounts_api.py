"""Signing in and out of the console, the accounts admins manage, the audit log, and what each
person has read in the lead inbox.

Sign-in is throttled per account name and per client address with the shared token buckets of
the state store (the same budgets as the public API): a guesser gets a few tries, then 429.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from . import _accounts as accounts
from ._auth import COOKIE, Principal, audit, principal, require_admin, require_staff, require_viewer, session_principal
from ._schemas import ApiError, error_responses

LOGIN_TRIES, LOGIN_REFILL_SECONDS = 5, 60.0  # 5 failed tries at once, then one a minute, per name (x4 per address)
Format = Literal["csv", "json"]
AUDIT_COLUMNS = ("id", "at", "actor", "role", "via", "action", "target", "detail")

router = APIRouter(prefix="/api/v1", tags=["staff"])
admin_router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])
page_router = APIRouter()


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=accounts.PASSWORD_MAX)


class Me(BaseModel):
    name: str
    role: str
    via: str
    csrf: str | None = None
    expires: float | None = None
    overdue_days: float


class NewAccount(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: str
    password: str = Field(min_length=1, max_length=accounts.PASSWORD_MAX)


class AccountChange(BaseModel):
    role: str | None = None
    disabled: bool | None = None
    password: str | None = Field(None, max_length=accounts.PASSWORD_MAX)


class Account(BaseModel):
    name: str
    role: str
    disabled: bool
    created: float
    updated: float


class AuditEntry(BaseModel):
    id: int
    at: float
    actor: str
    role: str
    via: str
    action: str
    target: str
    detail: dict


def _store(request: Request):
    assistant = getattr(request.app.state, "assistant", None)
    if assistant is None:
        raise HTTPException(503, "the service is still starting")
    return assistant.store


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _me(request: Request, found: Principal, expires: float | None = None) -> dict:
    return {"name": found.name, "role": found.role, "via": found.via, "csrf": found.csrf, "expires": expires,
            "overdue_days": request.app.state.settings.lead_overdue_days}


@router.post("/staff/login", response_model=Me, responses=error_responses(400, 401, 413, 422, 429, 503))
def login(body: Login, request: Request, response: Response) -> dict:
    """Sign in with a named account: sets the session cookie; the answer's ``csrf`` goes in the
    X-CSRF-Token header of every change made with it."""
    store = _store(request)
    # failed attempts spend the budgets; a budget without a whole attempt left refuses before any hashing
    rate = 1 / LOGIN_REFILL_SECONDS
    budgets = ((f"login:name:{body.name.lower()}", LOGIN_TRIES), (f"login:addr:{_client(request)}", LOGIN_TRIES * 4))
    short = max(1 - store.balance(key, rate, capacity) for key, capacity in budgets)
    if short > 0:
        wait = int(short / rate) + 1
        raise HTTPException(429, f"too many failed sign-in attempts: try again in {wait} s", headers={"Retry-After": str(wait)})
    account = store.account(body.name)
    if not accounts.verify(account, body.password):
        for key, capacity in budgets:
            store.take(key, 1, rate, capacity)
        if account is not None:
            store.audit(body.name, account["role"], "session", "login.refused", body.name,
                        {"disabled": True} if account["disabled"] else {})
        raise HTTPException(401, "wrong name or password")
    token, hashed = accounts.new_token()
    csrf = secrets.token_urlsafe(24)
    settings = request.app.state.settings
    expires = time.time() + settings.staff_session_hours * 3600
    store.add_staff_session(hashed, account["name"], csrf, expires)
    response.set_cookie(COOKIE, token, max_age=int(settings.staff_session_hours * 3600), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    found = Principal(account["name"], account["role"], "session", csrf)
    store.audit(found.name, found.role, "session", "login", found.name)
    return _me(request, found, expires)


@router.post("/staff/logout", status_code=204, responses=error_responses(503))
def logout(request: Request, response: Response) -> Response:
    """Ends the session in the store (every worker forgets it) and clears the cookie."""
    store = _store(request)
    token = request.cookies.get(COOKIE)
    found = session_principal(request) if token else None
    if token and len(token) <= 200:
        store.end_staff_session(accounts.token_hash(token))
    if found is not None:
        store.audit(found.name, found.role, "session", "logout", found.name)
    out = Response(status_code=204)
    out.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return out


@router.get("/staff/me", response_model=Me, responses=error_responses(401, 403, 503))
def me(request: Request, found: Principal = Depends(require_viewer)) -> dict:
    """Who is signed in (name, role) and the CSRF token of their session."""
    expires = None
    if found.via == "session":
        expires = _store(request).staff_session(accounts.token_hash(request.cookies[COOKIE]))["expires"]
    return _me(request, found, expires)


# -- the inbox: what this person has read ------------------------------------------------------
@router.get("/staff/reads", response_model=dict[int, float], responses=error_responses(401, 403, 503))
def reads(request: Request, found: Principal = Depends(require_viewer)) -> dict:
    """When the signed-in person last opened each lead (lead id → unix time)."""
    return _store(request).lead_reads(found.name)


@router.post("/leads/{lead_id}/read", responses=error_responses(401, 403, 404, 422, 503))
def mark_read(request: Request, lead_id: int = Path(ge=1, le=2**63 - 1), found: Principal = Depends(require_staff)) -> dict:
    """The signed-in person has opened this lead: its unread and "user replied" markers go away for them."""
    store = _store(request)
    if store.lead(lead_id) is None:
        raise HTTPException(404, f"no lead with id {lead_id}")
    return {"id": lead_id, "read_at": store.mark_lead_read(found.name, lead_id)}


# -- accounts (admins) ----------------------------------------------------------------------------
def _refusal(exc: accounts.AccountError) -> ApiError:
    return ApiError(422, str(exc), [{"field": exc.field, "message": exc.message}])


@admin_router.get("/accounts", response_model=list[Account], responses=error_responses(401, 403, 503))
def list_accounts(request: Request) -> list[dict]:
    return _store(request).accounts()


@admin_router.post("/accounts", response_model=Account, status_code=201,
                   responses=error_responses(400, 401, 403, 409, 413, 422, 503))
def add_account(body: NewAccount, request: Request) -> dict:
    """A named account for one person; they sign in at /staff with it."""
    try:
        name, role = accounts.check_name(body.name), accounts.check_role(body.role)
        hashed = accounts.hash_password(body.password)
    except accounts.AccountError as exc:
        raise _refusal(exc) from None
    try:
        made = _store(request).add_account(name, role, hashed)
    except accounts.AccountExists:
        raise ApiError(409, f"there is already an account named '{name}'", {"name": name}) from None
    audit(request, "account.add", name, role=role)
    return made


@admin_router.patch("/accounts/{name}", response_model=Account, responses=error_responses(400, 401, 403, 404, 413, 422, 503))
def change_account(body: AccountChange, request: Request, name: str = Path(max_length=64)) -> dict:
    """Change a role, disable or enable an account, or set a new password; disabling or a new
    password signs the account out everywhere."""
    try:
        role = None if body.role is None else accounts.check_role(body.role)
        hashed = None if body.password is None else accounts.hash_password(body.password)
    except accounts.AccountError as exc:
        raise _refusal(exc) from None
    found = principal(request)
    if found is not None and found.name == name and (body.disabled or (role and role != "admin")):
        raise ApiError(422, "you cannot disable your own account or take away your own admin role",
                       [{"field": "disabled" if body.disabled else "role", "message": "not on your own account"}])
    changed = _store(request).update_account(name, role=role, disabled=body.disabled, password_hash=hashed)
    if changed is None:
        raise HTTPException(404, f"no account named '{name}'")
    audit(request, "account.change", name, role=role, disabled=body.disabled, password=True if hashed else None)
    return changed


# -- the audit log (admins) ---------------------------------------------------------------------
@admin_router.get("/audit", response_model=list[AuditEntry], responses=error_responses(401, 403, 422, 503))
def audit_log(request: Request, limit: int = Query(200, ge=1, le=1000), actor: str | None = Query(None, max_length=64),
              action: str | None = Query(None, max_length=64), before: int | None = Query(None, ge=1, le=2**63 - 1)) -> list[dict]:
    """Who did what, newest first: sign-ins, lead changes, replies, introductions, exports, ingests,
    deletions, re-indexing, account changes. Append-only."""
    return _store(request).audit_entries(limit=limit, actor=actor, action=action, before=before)


@admin_router.get("/audit/export", responses={**error_responses(401, 403, 422, 503),
                                              200: {"content": {"text/csv": {}, "application/json": {}}}})
def export_audit(request: Request, fmt: Format = Query("csv", alias="format")) -> Response:
    """The whole audit log as a CSV or JSON file, newest first."""
    from ._staff_api import _download

    rows = list(_store(request).iter_audit())
    audit(request, "audit.export", "", format=fmt, rows=len(rows))
    iso = [{**r, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["at"])), "detail": _flat(r["detail"])} for r in rows]
    return _download(rows, fmt, "cpc-audit", AUDIT_COLUMNS, iso)


def _flat(detail: dict) -> str:
    return "; ".join(f"{k}={v}" for k, v in sorted(detail.items()))


# -- the admin page ------------------------------------------------------------------------------
@page_router.get("/staff/admin", include_in_schema=False)
def admin_page() -> HTMLResponse:
    from ._web import _page

    return _page("staff-admin.html")


async def audit_async(request: Request, action: str, target: object = "", **detail: object) -> None:
    """:func:`audit` from an async route, off the event loop."""
    await asyncio.to_thread(audit, request, action, target, **detail)
