"""rateLimiter: requests keyed `{ip}:{path}` (per client address per route) through the kernel's
sliding-window limiter; a refusal is 429 `RATE_LIMITED` with `Retry-After` (whole seconds).

The ip is the ASGI client address (the TCP peer). X-Forwarded-For is NOT trusted: behind a reverse
proxy, run uvicorn with `--proxy-headers --forwarded-allow-ips=<proxy>` so the server itself
rewrites the client address from the proxy's header."""

from __future__ import annotations

import math

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.state import send_error
from nno.kernel.ratelimit import MemoryRateLimiter, RateLimiter


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = f"{client[0] if client else 'unknown'}:{scope['path']}"  # rate_limit_key, inlined
        if self.refusal is not None:
            decision = self.refusal(key)
        else:
            decision = await self.limiter.hit(key)
            if decision.allowed:
                decision = None
        if decision is None:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(decision.retry_after_s))
        await send_error(
            scope, send, 429, "RATE_LIMITED", "Too many requests; slow down and retry later.",
            details={"limit": decision.limit, "retryAfter": retry_after},
            headers=[(b"retry-after", str(retry_after).encode())],
        )
