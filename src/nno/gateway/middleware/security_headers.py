"""securityHeaders: X-Content-Type-Options, X-Frame-Options and Referrer-Policy on every response,
errors included (it is the outermost layer, so even the error handler's answers pass through it)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.response import response_sender

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
)
_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Ours replace any an upstream set, so the policy is the gateway's. Response header names
        # from ASGI apps are lower-case bytes (HTTPBinding lowers them). Applied by the pipeline's
        # one send wrapper (nno.gateway.response).
        sender = response_sender(send)
        sender.add(_NAMES, SECURITY_HEADERS)
        await self.app(scope, receive, sender)
