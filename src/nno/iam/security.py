"""Password hashing and policy, bearer-secret helpers, CSRF tokens and input patterns."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from nno.kernel.errors import NNOError
from nno.kernel.ids import new_token, token_hash

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

PASSWORD_MIN = 8
PASSWORD_MAX = 128

SLUG_RE = re.compile(r"^[a-z0-9-]+$")
# `^{featureId}:[a-z-]+$` with a feature id in lower-case kebab form.
PERMISSION_RE = re.compile(r"^[a-z][a-z0-9-]*:[a-z-]+$")
API_KEY_PREFIX = "nno_"
API_KEY_RE = re.compile(r"^nno_[A-Za-z0-9_-]{32,}$")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Constant work whether or not there is a stored hash."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with other parameters than today's (upgrade it at sign-in)."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return False


def check_password_policy(password: str, email: str | None = None) -> None:
    """8-128 characters, at least one letter and one digit or symbol, not the email itself."""
    problems = []
    if len(password) < PASSWORD_MIN:
        problems.append(f"at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        problems.append(f"at most {PASSWORD_MAX} characters")
    if not any(c.isalpha() for c in password):
        problems.append("at least one letter")
    if not any(not c.isalpha() for c in password):
        problems.append("at least one digit or symbol")
    if password.strip() != password or not password.strip():
        problems.append("no leading or trailing whitespace")
    if email and password.lower() == email.lower():
        problems.append("not the email address")
    if problems:
        raise NNOError(422, "WEAK_PASSWORD", "The password does not meet the password policy",
                       {"field": "password", "requirements": problems})


def new_secret() -> tuple[str, str]:
    """A fresh opaque bearer secret and the digest that is stored for it."""
    token = new_token(32)
    return token, token_hash(token)


def new_api_key() -> tuple[str, str, str]:
    """`nno_` + 43 URL-safe characters (DECISIONS 4): (key, sha256 digest, display prefix)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, token_hash(key), key[: len(API_KEY_PREFIX) + 4]


def csrf_token(secret: bytes, binding: str) -> str:
    """A CSRF token bound to a session id (or a pre-session nonce)."""
    return hmac.new(secret, b"nno-csrf:" + binding.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, binding: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(secret, binding), token or "")


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of HMACs, so even the lengths do not leak."""
    if not given or not expected:
        return False
    key = b"nno-compare"
    return hmac.compare_digest(hmac.new(key, given.encode(), hashlib.sha256).digest(),
                               hmac.new(key, expected.encode(), hashlib.sha256).digest())
