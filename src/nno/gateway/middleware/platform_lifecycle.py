"""platformLifecycle: after auth, refuses requests for a platform that is `suspended` (451
`PLATFORM_SUSPENDED`, the seed's exact envelope) or `cancelled`/`deleted` (410 `PLATFORM_GONE`).

Skipped for service-key and dev-bypass callers (the seed: service calls bypass the check), for
callers without a platform, and for public routes. Also exempt: the few IAM routes a member of a
suspended platform needs to leave it (see who they are, switch the active platform, sign out), and
Billing's routes while it is suspended (paying is how a platform suspended for non-payment comes back).

The status comes from the shared status cache the Registry writes on every change (KV
`platform-status:{id}`, DECISIONS 5); on a miss the gateway asks the Registry
(`GET /{id}/status` as a service) and keeps that answer in-process for `status_cache_ttl_s`.
Fail open: when neither knows the platform (unknown id) or the Registry cannot be reached, the
request passes and a warning is logged. A platform's own services still enforce membership, so a
lifecycle outage degrades to "not enforced" rather than "API down".
"""

from __future__ import annotations

from urllib.parse import quote

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.routing import is_public
from nno.gateway.state import get_state, send_error
from nno.gateway.ttl_cache import TTLCache
from nno.kernel.bindings import Bindings, UpstreamError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.kv import KeyValueStore
from nno.kernel.platform_status import GONE_STATUSES, status_cache_key

log = structlog.get_logger("nno.gateway.lifecycle")

UNKNOWN = "unknown"
EXEMPT_PATHS = frozenset(
    {
        "/api/v1/iam/api/nno/session",
        "/api/v1/iam/api/nno/session/active-platform",
        "/api/v1/iam/api/auth/sign-out",
    }
)
# A platform suspended for non-payment must still be able to see its bill and pay it (which
# restores it); a cancelled or deleted one cannot.
BILLING_PREFIX = "/api/v1/billing/"
_SERVICE_HEADERS = SERVICE_IDENTITY.to_headers()


class PlatformStatusLookup:
    def __init__(self, kv: KeyValueStore, bindings: Bindings, ttl_s: float, *, max_entries: int = 10_000) -> None:
        self.kv = kv
        self.bindings = bindings
        self.ttl_s = ttl_s
        self.cache: TTLCache[str] = TTLCache(max_entries)
        self.registry_calls = 0

    async def status(self, platform_id: str) -> str | None:
        """The platform's status; None when it cannot be known right now (fail open)."""
        try:
            value = await self.kv.get(status_cache_key(platform_id))
        except Exception as exc:  # the shared cache is down: ask the Registry instead
            log.warning("status_cache_unavailable", error=f"{exc.__class__.__name__}: {exc}")
            value = None
        if value:
            return value
        cached = self.cache.get(platform_id)
        if cached is not None:
            return cached
        registry = self.bindings.get("registry")
        if registry is None:
            return None
        self.registry_calls += 1
        try:
            resp = await registry.request("GET", f"/{quote(platform_id, safe='')}/status", headers=_SERVICE_HEADERS)
        except UpstreamError as exc:
            log.warning("platform_status_unavailable_fail_open", platformId=platform_id, error=str(exc))
            self.cache.set(platform_id, UNKNOWN, min(self.ttl_s, 1.0))  # don't hammer a Registry in trouble
            return None
        if resp.status == 404:
            self.cache.set(platform_id, UNKNOWN, self.ttl_s)
            return UNKNOWN
        data = resp.json() if resp.ok else None
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, str) or not status:
            log.warning("platform_status_unavailable_fail_open", platformId=platform_id, status=resp.status)
            self.cache.set(platform_id, UNKNOWN, min(self.ttl_s, 1.0))
            return None
        self.cache.set(platform_id, status, self.ttl_s)
        return status


class PlatformLifecycleMiddleware:
    def __init__(self, app: ASGIApp, lookup: PlatformStatusLookup) -> None:
        self.app = app
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identity = get_state(scope).identity
        if (
            identity is None
            or identity.is_service
            or not identity.platform_id
            or scope["path"] in EXEMPT_PATHS
            or is_public(scope["method"], scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        status = await self.lookup.status(identity.platform_id)
        if status == "suspended" and not scope["path"].startswith(BILLING_PREFIX):
            await send_error(scope, send, 451, "PLATFORM_SUSPENDED", "This platform has been suspended.")
            return
        elif status in GONE_STATUSES:
            await send_error(scope, send, 410, "PLATFORM_GONE", f"This platform has been {status}.")
            return
        await self.app(scope, receive, send)
