"""timing: a `Server-Timing` header (as Hono's timing middleware) with the gateway's total time to
the response start, plus any phases inner layers recorded (e.g. `auth`)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.response import TimingMark, response_sender
from nno.gateway.state import get_state


class TimingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The header (`TimingMark.header`) is computed when the response starts.
        sender = response_sender(send)
        sender.add_timing(TimingMark(time.perf_counter(), get_state(scope).timings))
        await self.app(scope, receive, sender)
