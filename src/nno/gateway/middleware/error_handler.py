"""errorHandler: any exception escaping the inner layers becomes a 500 NNO envelope, never a
framework default body. If the response had already started, a 500 can no longer be sent: a
completed response is kept (the error is logged), a half-sent one is aborted by re-raising, so the
client sees a broken stream instead of a silently truncated body."""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.gateway.state import get_state, send_error

log = structlog.get_logger("nno.gateway")


class ErrorHandlerMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = get_state(scope)
        started = False
        completed = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, completed
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                completed = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if completed:
                log.warning("error_after_response", error=repr(exc), requestId=state.request_id or None)
                return
            log.exception("unhandled_error", error=repr(exc), requestId=state.request_id or None,
                          method=scope.get("method"), path=scope.get("path"))
            if started:
                raise
            await send_error(scope, send, 500, "INTERNAL_ERROR", "Internal server error")
