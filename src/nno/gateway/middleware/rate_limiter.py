"""rateLimiter: requests keyed `{ip}:{route}` (per client address per route) through the kernel's
sliding-window limiter; a refusal is 429 `RATE_LIMITED` with `Retry-After` (whole seconds).

The route is what the request reaches (`nno.kernel.ratelimit.route_key`): `/x`, `/x/`, `//x` and
`/X` share one budget. A trailing slash means no more than its absence anywhere in NNO, so this
layer, the first to read the path, also drops it from the path the inner layers and the service
see (they then match public routes, exemptions and routes on one spelling).

The ip is the ASGI client address (the TCP peer). X-Forwarded-For is NOT trusted: `nno serve`
lets uvicorn rewrite the client address from it only for the proxies `NNO_TRUSTED_PROXIES` names."""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.state import send_error
from nno.kernel.ratelimit import MemoryRateLimiter, RateDecision, RateLimiter, retry_after_seconds, route_key
from nno.kernel.service import without_trailing_slash


def rate_limit_key(scope: Scope) -> str:
    client = scope.get("client")
    ip = client[0] if client else "unknown"
    return f"{ip}:{route_key(scope['path'])}"


class RateLimiterMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter
        # The in-memory limiter decides synchronously: call it without a coroutine per request.
        self.refusal = limiter.refusal if type(limiter) is MemoryRateLimiter else None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the awaitable of whoever answers rather than awaiting it: the in-memory limiter
        # decides synchronously, so an allowed request costs no coroutine of ours.
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        path: str = scope["path"]
        if path[-1:] == "/" and len(path) > 1:
            scope = without_trailing_slash(scope)
        client = scope.get("client")
        key = f"{client[0] if client else 'unknown'}:{route_key(path)}"  # rate_limit_key, inlined
        if self.refusal is None:
            return self._shared(scope, receive, send, key)
        decision = self.refusal(key)
        if decision is None:
            return self.app(scope, receive, send)
        return self._refuse(scope, send, decision)

    async def _shared(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        decision = await self.limiter.hit(key)
        if decision.allowed:
            await self.app(scope, receive, send)
        else:
            await self._refuse(scope, send, decision)

    async def _refuse(self, scope: Scope, send: Send, decision: RateDecision) -> None:
        retry_after = retry_after_seconds(decision)
        await send_error(
            scope, send, 429, "RATE_LIMITED", "Too many requests; slow down and retry later.",
            details={"limit": decision.limit, "retryAfter": retry_after},
            headers=[(b"retry-after", str(retry_after).encode())],
        )
