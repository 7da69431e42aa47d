"""Routes for member profiles: the web form, the owner's view/edit/delete, the e-mailed one-time
link, and staff's decisions (the console's one queue for profiles and posts is ``_moderation_api.py``).

An approved profile is published through the same write process as ``POST /api/v1/admin/ingest``
(``Catalog.upsert``, then the alerts' ``after_ingest``), so it is searchable at once and alerts
see it; a deleted one leaves the index through ``Catalog.delete``. The member hears of approval or
rejection on the channel they joined from, in their language. The core (fields, validation,
states) is ``_profiles.py``; the table is ``_profiles_store.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from corpus import Organisation

from . import _mail as mail
from . import _profiles as profiles
from ._auth import audit, require_staff
from ._messages import as_written
from ._schemas import ApiError, error_responses
from ._web import _page

log = logging.getLogger("cpc.profiles")

SESSION = Query(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")
LINK_TTL = 24 * 3600  # an e-mailed link works once, within a day
KEY_TTL = 30 * 60  # what a used link gives: this long to view, edit or delete
MAIL_TEXTS = {
    "pt": ("CPC Alliance: o seu perfil no diretório", "Para ver, alterar ou apagar o perfil da sua organização, abra esta ligação (válida uma vez, durante 24 horas):\n{url}\n\nSe não pediu esta mensagem, ignore-a."),
    "zh": ("CPC联盟：您在名录中的资料", "如需查看、修改或删除您机构的资料，请打开以下链接（仅可使用一次，24小时内有效）：\n{url}\n\n如果您没有申请此邮件，请忽略。"),
    "en": ("CPC Alliance: your directory profile", "To view, edit or delete your organisation's profile, open this link (it works once, within 24 hours):\n{url}\n\nIf you did not ask for this message, ignore it."),
}


class ProfileIn(BaseModel):
    """The form's fields as the member typed them; validated by ``_profiles.validate`` in ``lang``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "lang": "pt", "name": "Moldes Exemplo Lda (teste)", "kind": "company", "country": "PT", "city": "Marinha Grande",
        "sectors": "moldes, plásticos", "offers": "Moldes de injeção para peças plásticas", "contact": "geral@example.pt",
        "consent": True}]})

    session_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$",
                                   description="The web chat's session_id: the profile belongs to that conversation")
    lang: str = Field("en", pattern="^(pt|zh|en)$")
    name: str | None = Field(None, max_length=1000)
    kind: str | None = Field(None, max_length=100)
    country: str | None = Field(None, max_length=100)
    city: str | None = Field(None, max_length=1000)
    sectors: str | list[str] | None = Field(None, max_length=1000)
    offers: str | None = Field(None, max_length=5000)
    seeks: str | None = Field(None, max_length=5000)
    website: str | None = Field(None, max_length=1000)
    contact: str | None = Field(None, max_length=1000)
    consent: bool = False


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=254)
    lang: str | None = Field(None, pattern="^(pt|zh|en)$")


class Redeem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")


class Approve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] | None = Field(None, description="Staff's corrections, validated like the member's own")


class Reject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="Told to the member, as written")


def _parts(request: Request):
    assistant = getattr(request.app.state, "assistant", None)
    catalog = getattr(request.app.state, "catalog", None)
    if assistant is None or catalog is None or not catalog.ready:
        raise HTTPException(503, "the index is not loaded yet")
    return assistant.store, catalog


def _invalid(err: profiles.ProfileError, lang: str) -> ApiError:
    first = next(iter(err.errors.items()))
    return ApiError(422, f"{first[0]}: {first[1]}" + (f" (+{len(err.errors) - 1})" if len(err.errors) > 1 else ""),
                    err.errors)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- publishing and telling the member ------------------------------------------------------------
async def publish(app, profile: dict[str, Any]) -> str:
    """The profile as a record, through the write process (as an ingest), then the alerts' matching."""
    from ._alerts_api import after_ingest

    record = Organisation.model_validate(profiles.to_record(profile))
    await run_in_threadpool(app.state.catalog.upsert, [record])
    await after_ingest(app, [record.id])
    return record.id


def unpublish_now(app, profile: dict[str, Any]) -> None:
    """Remove a published profile's record from the index (the write process); blocking."""
    org = profile.get("org_id")
    catalog = app.state.catalog
    if org and (org in catalog.engine.records or catalog.store.get(org) is not None):
        catalog.delete([org])


async def notify(app, profile: dict[str, Any], text: str) -> bool:
    """Tell the member on the channel they joined from; False when it could not go out (logged)."""
    channel, owner = profile["channel"], profile["owner"]
    try:
        if channel == "web":
            store = app.state.assistant.store
            await asyncio.to_thread(store.add_staff_message, 0, owner, "web", text, "waiting", "profiles")
        elif channel in ("telegram", "wechat") and getattr(app.state, channel, None) is not None:
            await getattr(app.state, channel).deliver(owner.split("-", 1)[1], text)
        elif channel == "email" and app.state.settings.smtp_host:
            await asyncio.to_thread(mail.send, app.state.settings, _mail(app.state.settings, owner, profile["lang"],
                                                                          "CPC Alliance", text))
        else:
            return False
        return True
    except Exception:
        log.warning("could not tell the owner of profile %s on %s", profile["id"], channel, exc_info=True)
        return False


def _mail(settings, to: str, lang: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = formataddr(("CPC Alliance", settings.smtp_from))
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rsplit("@", 1)[-1])
    msg.set_content(body + "\n")
    return msg


# -- routes -----------------------------------------------------------------------------------------
@asynccontextmanager
async def lifespan(app):
    """The chat deletes a published profile through this app's write process."""
    assistant = getattr(app.state, "assistant", None)
    if assistant is not None:
        assistant.unpublish = lambda profile: unpublish_now(app, profile)
    yield


router = APIRouter(prefix="/api/v1", tags=["profiles"], lifespan=lifespan)
staff_router = APIRouter(prefix="/api/v1/staff", tags=["staff"], dependencies=[Depends(require_staff)])
page_router = APIRouter(include_in_schema=False)


def _web_owner(request: Request, session_id: str | None) -> str | None:
    if not session_id:
        return None
    from ._sessions import browser_of

    conversation = request.app.state.web_sessions.resolve(session_id, browser_of(request))
    if conversation is None:
        raise HTTPException(404, "no conversation for this session_id")
    return conversation


def _owned(request: Request, profile_id: int, session_id: str | None, key: str | None) -> dict[str, Any]:
    """The profile, if the caller owns it: its web conversation, or a key from a used e-mail link."""
    store, _ = _parts(request)
    profile = store.profile(profile_id)
    if key:
        held = store.get(f"profile-key:{_hash(key)}")
        if held and profile is not None and profile.get("email") == held.get("email"):
            return profile
    elif session_id:
        owner = _web_owner(request, session_id)
        if profile is not None and profile["channel"] == "web" and profile["owner"] == owner:
            return profile
    else:
        raise HTTPException(401, "give the session_id of the conversation the profile was made in, or the key of an e-mailed link")
    raise HTTPException(404, "no profile of yours with this id")


@router.post("/profiles", status_code=201, responses=error_responses(400, 404, 413, 422, 429, 503))
def create_profile(body: ProfileIn, request: Request) -> dict:
    """Join the directory: a profile that waits for staff review (errors are in ``lang``, per field)."""
    store, _ = _parts(request)
    try:
        data = profiles.validate(body.model_dump(exclude={"session_id", "lang"}), body.lang)
    except profiles.ProfileError as err:
        raise _invalid(err, body.lang) from None
    email = data["contact"] if "@" in data["contact"] else None
    owner = _web_owner(request, body.session_id)
    if owner is None and email is None:
        raise ApiError(422, "contact: " + profiles.say("bad_contact", body.lang),
                       {"contact": profiles.say("bad_contact", body.lang)})
    pid = store.add_profile("web" if owner else "email", owner or email, body.lang, data, time.time(), email=email)
    return profiles.public_view(store.profile(pid))


@router.get("/profiles/mine", responses=error_responses(401, 404, 422, 429, 503))
def my_profiles(request: Request, session_id: str | None = SESSION,
                x_profile_key: str | None = Header(None, max_length=100)) -> dict:
    """The caller's profiles with their status (web conversation, or the key of a used e-mail link)."""
    store, _ = _parts(request)
    if x_profile_key:
        held = store.get(f"profile-key:{_hash(x_profile_key)}")
        if not held:
            raise HTTPException(401, "this key is unknown or expired: ask for a new link")
        return {"profiles": [profiles.public_view(p) for p in store.profiles(email=held["email"])]}
    owner = _web_owner(request, session_id)
    if owner is None:
        raise HTTPException(401, "give a session_id or an X-Profile-Key")
    return {"profiles": profiles.profiles_of(store, "web", owner)}


@router.put("/profiles/{profile_id}", responses=error_responses(400, 401, 404, 413, 422, 429, 503))
def edit_profile(profile_id: int, body: ProfileIn, request: Request, session_id: str | None = SESSION,
                 x_profile_key: str | None = Header(None, max_length=100)) -> dict:
    """The owner's new version: back to moderation (a published version stays until staff approve this one)."""
    profile = _owned(request, profile_id, session_id or body.session_id, x_profile_key)
    store, _ = _parts(request)
    try:
        data = profiles.validate(body.model_dump(exclude={"session_id", "lang"}), body.lang)
    except profiles.ProfileError as err:
        raise _invalid(err, body.lang) from None
    email = data["contact"] if "@" in data["contact"] else profile.get("email")
    store.update_profile(profile_id, data=data, status="pending", consent_at=time.time(), email=email)
    return profiles.public_view(store.profile(profile_id))


@router.delete("/profiles/{profile_id}", responses=error_responses(401, 404, 409, 422, 429, 503, 507))
async def delete_profile(profile_id: int, request: Request, session_id: str | None = SESSION,
                         x_profile_key: str | None = Header(None, max_length=100)) -> dict:
    """Delete the profile; a published one leaves the index first (the write process)."""
    profile = _owned(request, profile_id, session_id, x_profile_key)
    store, _ = _parts(request)
    if profile.get("published"):
        await run_in_threadpool(unpublish_now, request.app, profile)
    store.delete_profile(profile_id)
    return {"deleted": profile_id}


@router.post("/profiles/link", status_code=202, responses=error_responses(400, 409, 413, 422, 429, 502, 503))
async def send_link(body: LinkRequest, request: Request) -> dict:
    """E-mail a one-time link to the profiles whose contact is this address. The answer is the same
    whether or not there is one (nobody learns who is in the directory this way)."""
    store, _ = _parts(request)
    settings = request.app.state.settings
    if not settings.smtp_host or not settings.smtp_from:
        raise HTTPException(409, "e-mail is off on this server: CPC_SMTP_HOST and CPC_SMTP_FROM are not set")
    from ._contact import valid_email

    email = valid_email(body.email.strip())
    if email is None:
        raise HTTPException(422, "not a valid e-mail address")
    found = store.profiles(email=email)
    if found:
        token = secrets.token_urlsafe(24)
        store.put(f"profile-link:{_hash(token)}", {"email": email}, LINK_TTL)
        import os

        base = (os.environ.get("CPC_PUBLIC_URL") or str(request.base_url)).rstrip("/")
        lang = body.lang or found[0]["lang"]
        subject, text = MAIL_TEXTS.get(lang, MAIL_TEXTS["en"])
        msg = _mail(settings, email, lang, subject, text.format(url=f"{base}/join?token={token}"))
        try:
            await asyncio.to_thread(mail.send, settings, msg)
        except Exception:
            log.warning("the profile link could not be sent", exc_info=True)
            raise HTTPException(502, "the mail server refused the message; try again later") from None
    return {"sent": True}


@router.post("/profiles/redeem", responses=error_responses(400, 404, 413, 422, 429, 503))
def redeem_link(body: Redeem, request: Request) -> dict:
    """Use an e-mailed link (once): a key for ``X-Profile-Key``, valid 30 minutes, and the profiles."""
    store, _ = _parts(request)
    held = store.pop(f"profile-link:{_hash(body.token)}")
    if not held:
        raise HTTPException(404, "this link was used already or has expired: ask for a new one")
    key = secrets.token_urlsafe(24)
    store.put(f"profile-key:{_hash(key)}", held, KEY_TTL)
    return {"key": key, "expires_in": KEY_TTL, "profiles": [profiles.public_view(p) for p in store.profiles(email=held["email"])]}


# -- staff: the moderation queue -------------------------------------------------------------------
@staff_router.get("/profiles", responses=error_responses(401, 403, 422, 429, 503))
def queue(request: Request, status: str = Query("pending", pattern="^(pending|approved|rejected|all)$")) -> dict:
    """Profiles by status (the queue: pending, oldest first), with the record each would become."""
    store, _ = _parts(request)
    rows = store.profiles(status=None if status == "all" else status)
    return {"profiles": [{**profiles.public_view(p), "channel": p["channel"], "consent_at": p["consent_at"],
                          "record": profiles.to_record(p)} for p in rows]}


def _pending(request: Request, profile_id: int) -> dict[str, Any]:
    store, _ = _parts(request)
    profile = store.profile(profile_id)
    if profile is None:
        raise HTTPException(404, f"no profile {profile_id}")
    if profile["status"] != "pending":
        raise HTTPException(409, f"profile {profile_id} is {profile['status']}, not pending")
    return profile


@staff_router.post("/profiles/{profile_id}/approve", responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503, 507))
async def approve(profile_id: int, body: Approve, request: Request) -> dict:
    """Publish (after staff's corrections, if any): the write process, alerts, then the member is told."""
    store, _ = _parts(request)
    profile = _pending(request, profile_id)
    if body.data:
        try:
            data = profiles.validate({**profile["data"], **body.data}, profile["lang"], require_consent=False)
        except profiles.ProfileError as err:
            raise _invalid(err, profile["lang"]) from None
        profile = {**profile, "data": data}
    if not store.claim(f"profile:{profile_id}:publish", 600):
        raise HTTPException(409, f"profile {profile_id} is being approved by someone else")
    try:
        org = await publish(request.app, profile)  # nothing is marked approved unless this wrote
        if not store.update_profile(profile_id, data=profile["data"], status="approved", org_id=org,
                                    published=time.time(), expect=("pending",)):
            raise HTTPException(409, f"profile {profile_id} changed while it was being approved")
    finally:
        store.pop(f"profile:{profile_id}:publish")
    audit(request, "profile.approve", profile_id, organisation=org, corrected=sorted(body.data) if body.data else None)
    told = await notify(request.app, profile, profiles.say("approved", profile["lang"], name=profile["data"]["name"]))
    return {**profiles.public_view(store.profile(profile_id)), "told": told}


@staff_router.post("/profiles/{profile_id}/reject", responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def reject(profile_id: int, body: Reject, request: Request) -> dict:
    """Refuse with a reason; the member reads it in their language's frame, on their channel."""
    store, _ = _parts(request)
    profile = _pending(request, profile_id)
    reason = " ".join(body.reason.split())
    if not store.update_profile(profile_id, status="rejected", reason=reason, expect=("pending",)):
        raise HTTPException(409, f"profile {profile_id} changed meanwhile")
    audit(request, "profile.reject", profile_id, reason=reason)
    told = await notify(request.app, profile, profiles.say("rejected", profile["lang"], name=profile["data"]["name"],
                                                           reason=as_written(reason, profile["lang"])))
    return {**profiles.public_view(store.profile(profile_id)), "told": told}


@page_router.get("/join")
def join_page() -> HTMLResponse:
    """The web form: join, or manage a profile from an e-mailed link (``?token=``)."""
    return _page("join.html")

