"""Resolving a caller's credential into an Identity (the seed's three auth paths).

- Path 1, the static service key: compared as HMAC-SHA256 digests under a per-process random key
  with `hmac.compare_digest`, so neither the comparison time nor the digest leaks the key.
- Path 2, a session token (Bearer, or the browser cookie `nno_session`): IAM `GET /api/nno/session`.
- Path 3, a programmatic key (`x-api-key: nno_...`): IAM `POST /api/nno/apikey/validate`, which
  answers with the role the key's maker holds on its platform right now.

IAM answers are cached in-process for `auth_cache_ttl_s` (DECISIONS 3), keyed by a SHA-256 of the
credential (the cache never holds a credential in clear); refusals are cached briefly too, so a
client hammering with a bad token does not hammer IAM. A revoked token stops working within the TTL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import structlog

from nno.gateway.ttl_cache import TTLCache
from nno.kernel.bindings import Bindings, UpstreamError
from nno.kernel.config import Settings
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, ROLE_USER, SERVICE_IDENTITY, Identity

log = structlog.get_logger("nno.gateway.auth")

SESSION_COOKIE = "nno_session"
API_KEY_PREFIX = "nno_"
NEGATIVE_TTL_CAP_S = 2.0
# IAM statuses that mean "this credential is not valid" (anything else: IAM is in trouble).
_REFUSAL_STATUSES = frozenset({400, 401, 403, 404, 422})
# The roles a key may act as: never an operator's or a service's.
_KEY_ROLES = frozenset({ROLE_PLATFORM_ADMIN, ROLE_USER})


class AuthUnavailable(Exception):
    """IAM could not be asked (not running, unreachable, or answered 5xx)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A credential's outcome: an identity with its upstream headers, or None for a refusal."""

    identity: Identity | None
    headers: tuple[tuple[bytes, bytes], ...] = ()


def identity_headers(identity: Identity) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((k.encode("latin-1"), v.encode("utf-8")) for k, v in identity.to_headers().items())


REFUSED = Resolved(None)
SERVICE = Resolved(SERVICE_IDENTITY, identity_headers(SERVICE_IDENTITY))
DEV_IDENTITY = Identity(auth_type="dev", role="service")
DEV = Resolved(DEV_IDENTITY, identity_headers(DEV_IDENTITY))
ANONYMOUS = Resolved(Identity(), identity_headers(Identity()))
_SERVICE_HEADERS = SERVICE_IDENTITY.to_headers()


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def session_identity(data: dict[str, Any]) -> Identity | None:
    """The identity of IAM's session answer (contracts §3), or None if it names no user."""
    user_id = _text(data.get("userId"))
    if not user_id:
        return None
    perms = data.get("permissions") or ()
    return Identity(
        auth_type="session",
        user_id=user_id,
        role=_text(data.get("role")) or ROLE_USER,
        platform_id=_text(data.get("platformId")),
        email=_text(data.get("email")),
        permissions=tuple(str(p) for p in perms) if isinstance(perms, list | tuple) else (),
    )


def apikey_identity(data: dict[str, Any]) -> Identity | None:
    """The identity of IAM's key-validation answer; a key always carries a platform (seed). Its role
    is its maker's current role on that platform as IAM resolved it (docs/security.md): at most
    `platform-admin`, and `user` when IAM names nothing else."""
    platform_id = _text(data.get("platformId"))
    if not platform_id:
        return None
    perms = data.get("permissions") or ()
    role = _text(data.get("role"))
    return Identity(
        auth_type="apikey",
        role=role if role in _KEY_ROLES else ROLE_USER,
        user_id=_text(data.get("userId")),
        platform_id=platform_id,
        key_id=_text(data.get("keyId")),
        permissions=tuple(str(p) for p in perms) if isinstance(perms, list | tuple) else (),
    )


class CredentialResolver:
    def __init__(self, settings: Settings, bindings: Bindings, *, max_entries: int = 10_000) -> None:
        self.bindings = bindings
        self.ttl_s = settings.auth_cache_ttl_s
        self.negative_ttl_s = min(self.ttl_s, NEGATIVE_TTL_CAP_S)
        # HMAC-SHA256 under a per-process random key, with the padded-key states precomputed
        # (RFC 2104): equal to hmac.digest(key, value, "sha256") at a third of the cost.
        hmac_key = secrets.token_bytes(32).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in hmac_key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in hmac_key))
        self._static_digest = (
            self._digest(settings.auth_api_key) if settings.auth_api_key else None
        )
        self.cache: TTLCache[Resolved] = TTLCache(max_entries)
        self.iam_calls = 0  # for tests and diagnostics

    def _digest(self, value: str) -> bytes:
        inner = self._inner.copy()
        inner.update(value.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def is_service_key(self, token: str) -> bool:
        """Path 1: constant-time comparison of HMACs of both values."""
        if self._static_digest is None:
            return False
        return hmac.compare_digest(self._digest(token), self._static_digest)

    def cached_session(self, token: str) -> Resolved | None:
        """The cached outcome for a session token, if any. A cached token was resolved by IAM, so
        it is not the service key (that one never reaches IAM, and it is fixed per resolver)."""
        return self.cache.get(hashlib.sha256(b"s\0" + token.encode("utf-8")).digest())

    async def session(self, token: str, *, from_cookie: bool = False) -> tuple[Resolved, bool]:
        """(outcome, whether IAM was asked) for a session token."""
        key = hashlib.sha256(b"s\0" + token.encode("utf-8")).digest()
        cached = self.cache.get(key)
        if cached is not None:
            return cached, False
        if from_cookie:
            headers = {"cookie": f"{SESSION_COOKIE}={token}"}
        else:
            headers = {"authorization": f"Bearer {token}"}

        async def load() -> tuple[Resolved, float]:
            data = await self._ask_iam("GET", "/api/nno/session", headers=headers)
            identity = session_identity(data) if data is not None else None
            return self._outcome(identity)

        return await self.cache.get_or_load(key, load), True

    def cached_api_key(self, key_value: str) -> Resolved | None:
        return self.cache.get(hashlib.sha256(b"k\0" + key_value.encode("utf-8")).digest())

    async def api_key(self, key_value: str) -> tuple[Resolved, bool]:
        key = hashlib.sha256(b"k\0" + key_value.encode("utf-8")).digest()
        cached = self.cache.get(key)
        if cached is not None:
            return cached, False

        async def load() -> tuple[Resolved, float]:
            data = await self._ask_iam(
                "POST", "/api/nno/apikey/validate", headers=_SERVICE_HEADERS, json={"key": key_value}
            )
            identity = apikey_identity(data) if data is not None else None
            return self._outcome(identity)

        return await self.cache.get_or_load(key, load), True

    def _outcome(self, identity: Identity | None) -> tuple[Resolved, float]:
        if identity is None:
            return REFUSED, self.negative_ttl_s
        return Resolved(identity, identity_headers(identity)), self.ttl_s

    async def _ask_iam(
        self, method: str, path: str, *, headers: dict[str, str], json: Any = None
    ) -> dict[str, Any] | None:
        """IAM's JSON answer on 2xx, None on a refusal (4xx); AuthUnavailable otherwise."""
        iam = self.bindings.get("iam")
        if iam is None:
            raise AuthUnavailable("the IAM service is not available")
        self.iam_calls += 1
        started = time.perf_counter()
        try:
            resp = await iam.request(method, path, headers=headers, json=json)
        except UpstreamError as exc:
            log.warning("iam_unreachable", path=path, error=str(exc))
            raise AuthUnavailable(str(exc)) from exc
        if resp.ok:
            try:
                data = resp.json()
            except ValueError as exc:
                raise AuthUnavailable("IAM answered with invalid JSON") from exc
            return data if isinstance(data, dict) else None
        if resp.status in _REFUSAL_STATUSES:
            return None
        log.warning("iam_error", path=path, status=resp.status,
                    duration=round((time.perf_counter() - started) * 1000, 3))
        raise AuthUnavailable(f"IAM answered {resp.status}")
