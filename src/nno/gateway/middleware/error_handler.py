"""errorHandler: any exception escaping the inner layers becomes a 500 NNO envelope, never a
framework default body. If the response had already started, a 500 can no longer be sent: a
completed response is kept (the error is logged), a half-sent one is aborted by re-raising, so the
client sees a broken stream instead of a silently truncated body."""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.response import response_sender
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
        # The pipeline's send wrapper tracks whether the response started and completed.
        sender = response_sender(send)
        mark = sender.mark()
        try:
            await self.app(scope, receive, sender)
        except Exception as exc:
            if sender.completed:
                log.warning("error_after_response", error=repr(exc), requestId=state.request_id or None)
                return
            log.exception("unhandled_error", error=repr(exc), requestId=state.request_id or None,
                          method=scope.get("method"), path=scope.get("path"))
            if sender.started:
                raise
            sender.rewind(mark)  # our answer does not pass the inner layers' send side
            await send_error(scope, sender, 500, "INTERNAL_ERROR", "Internal server error")
