"""timing: a `Server-Timing` header (as Hono's timing middleware) with the gateway's total time to
the response start, plus any phases inner layers recorded (e.g. `auth`)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.gateway.state import get_state


class TimingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = get_state(scope)

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                total = (time.perf_counter() - start) * 1000
                parts = [f"{name};dur={ms:.2f}" for name, ms in state.timings]
                parts.append(f"total;dur={total:.2f}")
                headers = list(message.get("headers", ()))
                headers.append((b"server-timing", ", ".join(parts).encode("ascii")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_timing)
