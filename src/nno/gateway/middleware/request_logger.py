"""requestLogger: one structured (JSON) log line per request with requestId, traceId, method, path,
status, duration in ms and authType, written when the response completes (or fails).

The line is the hottest log call there is: under `configure_logging`'s JSON configuration it is
written by the kernel's fast writer (the same line the structlog chain renders, without running
the chain); under any other configuration (e.g. the tests' `capture_logs`) it goes through
structlog as before."""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.response import response_sender
from nno.gateway.state import get_state
from nno.kernel.logging import fast_json_writer, loggable_path


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
        # The pipeline's send wrapper records the response status (500 until one starts).
        sender = response_sender(send)
        try:
            await self.app(scope, receive, sender)
        finally:
            state = get_state(scope)
            identity = state.identity
            fields = {
                "requestId": state.request_id,
                "traceId": state.trace_id or None,
                "method": scope["method"],
                "path": loggable_path(scope["path"]),
                "status": sender.status,
                "duration": round((time.perf_counter() - start) * 1000, 3),
                "authType": identity.auth_type if identity is not None else None,
            }
            write = fast_json_writer()
            if write is not None:
                fields["event"] = "request"  # structlog's key order: fields, then the event
                write(fields)
            else:
                access_log.get().info("request", **fields)
