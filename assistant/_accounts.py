"""Named staff accounts: names, roles, password hashing and session tokens, without HTTP.

Passwords are hashed with argon2id (argon2-cffi, its recommended parameters); a session token
is 32 random bytes given to the browser once, and only its SHA-256 is stored, so a copy of the
state store opens no console. Used by the console's sign-in (_accounts_api.py) and `cpc staff`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ._staff_state import ROLES, AccountExists  # noqa: F401 - re-exported for the CLI and the API

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
RESERVED = {"token"}  # the shared CPC_ADMIN_TOKEN's name in the audit log
PASSWORD_MIN, PASSWORD_MAX = 10, 1024  # argon2 takes any length; a cap keeps a request's hashing bounded
RANK = {role: i for i, role in enumerate(ROLES)}  # viewer < staff < admin

_hasher = PasswordHasher()
# verified when no account has the name, so an unknown name costs what a known one does
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A name, role or password that cannot be used; the message says why, for the person typing it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise AccountError("name", "1-64 letters, digits or . _ @ -, starting with a letter or digit")
    if name.lower() in RESERVED:
        raise AccountError("name", f"'{name}' is reserved for the shared staff key")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError("role", f"one of {', '.join(ROLES)}")
    return role


def hash_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AccountError("password", f"{PASSWORD_MIN} to {PASSWORD_MAX} characters")
    return _hasher.hash(password)


def verify(account: dict[str, Any] | None, password: str) -> bool:
    """True for an enabled account whose hash matches; the same work when there is no account."""
    if len(password) > PASSWORD_MAX:
        return False
    stored = account["password_hash"] if account else _DUMMY
    try:
        ok = _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    return bool(ok and account and not account["disabled"])


def new_token() -> tuple[str, str]:
    """(token for the cookie, its hash for the store)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def at_least(role: str, needed: str) -> bool:
    return RANK.get(role, -1) >= RANK[needed]
