"""platformLifecycle: after auth, refuses requests for a platform that is `suspended` (451
`PLATFORM_SUSPENDED`, the seed's exact envelope) or `cancelled`/`deleted` (410 `PLATFORM_GONE`).

The platforms a request is checked against are every one it names: the platform in the path
(`/api/v1/platforms/{id}/...`), `platformId` in the query, a top-level `platformId` in a JSON body,
an API key's platform, and the session's active platform when the request names no other. So
switching one's active platform to another does not reopen a suspended one; the services refuse
such writes themselves too (`nno.kernel.platform_status.check_not_suspended`).

Skipped for service-key and dev-bypass callers (the seed: service calls bypass the check) and NNO
operators (who restore suspended platforms), for requests naming no platform, and for public
routes. Also exempt: the few IAM routes a member of a suspended platform needs to leave it (see who
they are, switch the active platform, sign out), and Billing's routes while a platform is
suspended (paying is how a platform suspended for non-payment comes back).

The status comes from the shared status cache the Registry writes on every change (KV
`platform-status:{id}`, DECISIONS 5); on a miss the gateway asks the Registry
(`GET /{id}/status` as a service) and keeps that answer in-process for `status_cache_ttl_s`.
Fail open: when neither knows the platform (unknown id) or the Registry cannot be reached, the
request passes and a warning is logged. A platform's own services still enforce membership, so a
lifecycle outage degrades to "not enforced" rather than "API down".
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, quote

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.gateway.body_limit import declared_length
from nno.gateway.routing import is_public
from nno.gateway.state import client_headers, get_state, send_error
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
PLATFORMS_PREFIX = "/api/v1/platforms/"
# Registry words under /api/v1/platforms/ that are not platform ids.
_NOT_PLATFORM_IDS = frozenset({"", "by-slug"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BY_SLUG_PREFIX = PLATFORMS_PREFIX + "by-slug/"


def path_platform(path: str) -> str | None:
    """The platform id in a Registry path `/api/v1/platforms/{id}[/...]`."""
    if not path.startswith(PLATFORMS_PREFIX):
        return None
    word = path[len(PLATFORMS_PREFIX):].split("/", 1)[0]
    return None if word in _NOT_PLATFORM_IDS else word


def query_platforms(query_string: bytes) -> list[str]:
    """Every `platformId` value of the query string."""
    if b"platformId" not in query_string:
        return []
    return [v for k, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=False) if k == "platformId"]


def body_platform(body: bytes) -> str | None:
    """A JSON object body's top-level `platformId` (string), if any. Anything else names none: the
    service answers bad JSON itself."""
    if body.lstrip()[:1] != b"{":
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = data.get("platformId") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


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
    def __init__(self, app: ASGIApp, lookup: PlatformStatusLookup, *, max_body_bytes: int = 1_048_576) -> None:
        self.app = app
        self.lookup = lookup
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identity = get_state(scope).identity
        path: str = scope["path"]
        if (
            identity is None
            or identity.is_privileged
            or path in EXEMPT_PATHS
            or is_public(scope["method"], path)
        ):
            await self.app(scope, receive, send)
            return
        named: list[str] = []
        if (in_path := path_platform(path)) is not None:
            named.append(in_path)
        named += query_platforms(scope.get("query_string") or b"")
        if scope["method"] in _BODY_METHODS:
            in_body, receive = await self._body_platform(scope, receive)
            if in_body is not None:
                named.append(in_body)
        # The caller's own platform counts when the request names none (a session's active platform),
        # and always for an API key (it acts on its platform only); a session addressing another
        # platform is judged by that one, so a gone active platform does not lock its user out.
        by_slug = path.startswith(BY_SLUG_PREFIX)  # names a platform the gateway cannot resolve (a read)
        if identity.platform_id and ((not named and not by_slug) or identity.auth_type == "apikey"):
            named.insert(0, identity.platform_id)
        for platform_id in dict.fromkeys(named):
            status = await self.lookup.status(platform_id)
            if status == "suspended" and not path.startswith(BILLING_PREFIX):
                await send_error(scope, send, 451, "PLATFORM_SUSPENDED", "This platform has been suspended.")
                return
            if status in GONE_STATUSES:
                await send_error(scope, send, 410, "PLATFORM_GONE", f"This platform has been {status}.")
                return
        await self.app(scope, receive, send)

    async def _body_platform(self, scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
        """The body's `platformId`, and a `receive` that replays what was read. A body declared larger
        than the gateway's limit is not read (the proxy refuses it); one that streams past the limit
        is read no further and reaches the proxy, which counts it and answers 413."""
        length = declared_length(client_headers(scope).content_length)
        if length is not None and not 0 <= length <= self.max_body_bytes:
            return None, receive
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body", False) or size > self.max_body_bytes:
                break
        complete = messages[-1]["type"] == "http.request" and not messages[-1].get("more_body", False)
        found = body_platform(b"".join(m.get("body", b"") for m in messages)) if complete else None
        pending = iter(messages)

        async def replay() -> Message:
            message = next(pending, None)
            return message if message is not None else await receive()

        return found, replay
