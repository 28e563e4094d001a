"""requestLogger: one structured (JSON) log line per request with requestId, method, path, status
and duration in ms, written when the response completes (or fails)."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.gateway.state import get_state

log = structlog.get_logger("nno.gateway.access")


class RequestLoggerMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            state = get_state(scope)
            identity = state.identity
            log.info(
                "request",
                requestId=state.request_id,
                traceId=state.trace_id or None,
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration=round((time.perf_counter() - start) * 1000, 3),
                authType=identity.auth_type if identity is not None else None,
            )
