"""rateLimiter: requests keyed `{ip}:{path}` (per client address per route) through the kernel's
sliding-window limiter; a refusal is 429 `RATE_LIMITED` with `Retry-After` (whole seconds).

The ip is the ASGI client address (the TCP peer). X-Forwarded-For is NOT trusted: behind a reverse
proxy, run uvicorn with `--proxy-headers --forwarded-allow-ips=<proxy>` so the server itself
rewrites the client address from the proxy's header."""

from __future__ import annotations

import math
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.state import send_error
from nno.kernel.ratelimit import MemoryRateLimiter, RateDecision, RateLimiter


def rate_limit_key(scope: Scope) -> str:
    client = scope.get("client")
    ip = client[0] if client else "unknown"
    return f"{ip}:{scope['path']}"


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
        client = scope.get("client")
        key = f"{client[0] if client else 'unknown'}:{scope['path']}"  # rate_limit_key, inlined
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
        retry_after = max(1, math.ceil(decision.retry_after_s))
        await send_error(
            scope, send, 429, "RATE_LIMITED", "Too many requests; slow down and retry later.",
            details={"limit": decision.limit, "retryAfter": retry_after},
            headers=[(b"retry-after", str(retry_after).encode())],
        )
