"""requestLogger: one structured (JSON) log line per request with requestId, method, path, status
and duration in ms, written when the response completes (or fails)."""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.gateway.state import get_state


class _AccessLogger:
    """The structlog logger for access lines, bound once per logging configuration instead of on
    every call (a lazy proxy re-binds per line); re-bound whenever `structlog.configure` changes
    the processors, factory or wrapper class (as `nno serve` and the tests' `capture_logs` do)."""

    def __init__(self) -> None:
        self._key: tuple[int, int, int] | None = None
        self._bound: Any = None

    def get(self) -> Any:
        config = structlog.get_config()
        key = (id(config["processors"]), id(config["logger_factory"]), id(config["wrapper_class"]))
        if key != self._key:
            self._bound = structlog.get_logger("nno.gateway.access").bind()
            self._key = key
        return self._bound


access_log = _AccessLogger()


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
            access_log.get().info(
                "request",
                requestId=state.request_id,
                traceId=state.trace_id or None,
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration=round((time.perf_counter() - start) * 1000, 3),
                authType=identity.auth_type if identity is not None else None,
            )
