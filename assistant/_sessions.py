"""Web chat sessions: ids the server issues, handed out as signed tokens, bound to the browser.

A conversation on ``POST /api/v1/chat`` is stored under ``web-<random>``; the client gets
``web-<random>.<signature>`` and sends it back as ``session_id`` to continue. The signature is
an HMAC with a key kept in the state file, so a token cannot be guessed or forged, and the
public route can never reach a Telegram (``tg-``) or WeChat (``wx-``) session, nor another
user's web session: anything that is not a token this server signed starts a new conversation.

Browsers also carry a random ``cpc_browser`` cookie (HttpOnly, so no script reads it; SameSite=
Strict, so no other site's request carries it), given with the chat page and with chat replies. A token minted for a request
that carried the cookie is signed over it too, so it continues the conversation only from that
browser: a token copied out of the page's storage is of no use elsewhere. Clients without
cookies (curl, scripts) get tokens signed without a browser, which work from anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from fastapi import Request, Response

PREFIX = "web-"
COOKIE = "cpc_browser"
COOKIE_PATH = "/"  # the chat page must see it too, or a reload would hand out a new one
COOKIE_MAX_AGE = 180 * 86400  # renewed with every reply; must outlive a session (CPC_SESSION_TTL_MINUTES)
_BROWSER = re.compile(r"^[A-Za-z0-9_-]{32}$")
_SIG_CHARS = 22  # 132 bits of HMAC-SHA256


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class WebSessions:
    """Mints and checks session tokens with one secret key."""

    def __init__(self, key: bytes):
        if len(key) < 32:
            raise ValueError("the session key must have at least 32 bytes")
        self._key = key

    @staticmethod
    def new_id() -> str:
        return PREFIX + secrets.token_urlsafe(16)

    def _signature(self, session_id: str, browser: str | None) -> str:
        mac = hmac.new(self._key, f"{session_id}\n{browser or ''}".encode(), hashlib.sha256).digest()
        return _b64(mac)[:_SIG_CHARS]

    def token(self, session_id: str, browser: str | None) -> str:
        """What the client sends back: bound to ``browser`` when the request came with one."""
        return f"{session_id}.{self._signature(session_id, browser)}"

    def resolve(self, token: str | None, browser: str | None) -> str | None:
        """The session a token stands for, or None when this server did not sign it (for no
        browser, or for this request's browser)."""
        if not token:
            return None
        session_id, dot, given = token.rpartition(".")
        if not dot or not session_id.startswith(PREFIX) or len(given) != _SIG_CHARS:
            return None
        for bound in ((None, browser) if browser else (None,)):
            if hmac.compare_digest(given, self._signature(session_id, bound)):
                return session_id
        return None


def browser_of(request: Request) -> str | None:
    """The request's browser cookie when it is one we could have issued."""
    value = request.cookies.get(COOKIE, "")
    return value if _BROWSER.match(value) else None


def keep_browser(request: Request, response: Response) -> str | None:
    """(Re)send the browser cookie on ``response``; a new one when the request had none.
    Returns the request's own cookie (None when it had none): tokens are bound to that one."""
    browser = browser_of(request)
    response.set_cookie(COOKIE, browser or secrets.token_urlsafe(24), max_age=COOKIE_MAX_AGE, path=COOKIE_PATH,
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return browser
