"""securityHeaders: X-Content-Type-Options, X-Frame-Options and Referrer-Policy on every response,
errors included (it is the outermost layer, so even the error handler's answers pass through it)."""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.response import response_sender

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
)
# In the local-dev bypass every response says so, so a client (the `nno` CLI) can warn its user.
DEV_BYPASS_HEADER = (b"x-nno-auth-mode", b"dev-bypass")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, dev_bypass: bool = False) -> None:
        self.app = app
        self.headers = (*SECURITY_HEADERS, DEV_BYPASS_HEADER) if dev_bypass else SECURITY_HEADERS
        self.names = frozenset(name for name, _ in self.headers)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the inner app's awaitable rather than awaiting it (one coroutine less per request).
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        # Ours replace any an upstream set, so the policy is the gateway's. Response header names
        # from ASGI apps are lower-case bytes (HTTPBinding lowers them). Applied by the pipeline's
        # one send wrapper (nno.gateway.response).
        sender = response_sender(send)
        sender.add(self.names, self.headers)
        return self.app(scope, receive, sender)
