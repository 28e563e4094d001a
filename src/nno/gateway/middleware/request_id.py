"""requestId: the client's X-Request-Id when it is sane (1-128 chars of [A-Za-z0-9._:-]), else a new
UUID. Stored in the request state and `nno.kernel.context.request_id_var` (logs, envelopes), echoed
as X-Request-Id on the response, and forwarded upstream as X-Nno-Request-Id (by the proxy)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.headers import new_request_id, valid_request_id
from nno.gateway.response import response_sender
from nno.gateway.state import client_headers, get_state
from nno.kernel.context import request_id_var

_HEADER = b"x-request-id"
_NAMES = frozenset({_HEADER})


def incoming_request_id(scope: Scope) -> str | None:
    """The first X-Request-Id header, if valid."""
    return valid_request_id(client_headers(scope).request_id)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or new_request_id()
        get_state(scope).request_id = request_id
        sender = response_sender(send)
        sender.add(_NAMES, ((_HEADER, request_id.encode("ascii")),))  # echoed, replacing any other
        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, sender)
        finally:
            request_id_var.reset(token)
