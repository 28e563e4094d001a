"""timing: a `Server-Timing` header (as Hono's timing middleware) with the gateway's total time to
the response start, plus any phases inner layers recorded (e.g. `auth`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.response import TimingMark, response_sender
from nno.gateway.state import get_state


class TimingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the inner app's awaitable rather than awaiting it (one coroutine less per request).
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        # The header (`TimingMark.header`) is computed when the response starts.
        sender = response_sender(send)
        sender.add_timing(TimingMark(time.perf_counter(), get_state(scope).timings))
        return self.app(scope, receive, sender)
