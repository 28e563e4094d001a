"""cors: origins from NNO_CORS_ORIGINS (comma list); allowed request headers exactly the seed's
Content-Type, Authorization and X-Request-Id. Listed origins are echoed with credentials allowed;
`*` allows any origin but then never with credentials (browsers forbid the combination, and a
credentialed wildcard would let any site act as the signed-in user). Preflights are answered here
(204), a refused preflight gets a 403 envelope; a simple request from an unlisted origin passes
without CORS headers, so the browser withholds the response."""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.response import response_sender
from nno.gateway.state import client_headers, send_error

ALLOWED_HEADERS = ("Content-Type", "Authorization", "X-Request-Id")
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
EXPOSED_HEADERS = ("X-Request-Id", "X-Nno-Trace-Id", "Retry-After", "Server-Timing")
MAX_AGE_S = 600

_ALLOWED_HEADER_SET = frozenset(h.lower() for h in ALLOWED_HEADERS)
_ALLOWED_METHOD_SET = frozenset(ALLOWED_METHODS)
_CORS_RESPONSE_NAMES = frozenset(
    {b"access-control-allow-origin", b"access-control-allow-credentials", b"access-control-expose-headers"}
)


class CORSMiddleware:
    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins if o != "*")
        self._expose = (b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode())
        self._preflight_static = [
            (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
            (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
            (b"access-control-max-age", str(MAX_AGE_S).encode()),
        ]

    def _origin_headers(self, origin: str) -> list[tuple[bytes, bytes]] | None:
        if origin in self.origins:
            return [(b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-allow-credentials", b"true"), (b"vary", b"Origin")]
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*")]
        return None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the awaitable of whoever answers rather than awaiting it (one coroutine less).
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        found = client_headers(scope)  # the last of each
        origin_raw, request_method, request_headers = found.origin, found.cors_method, found.cors_request_headers
        if origin_raw is None:
            return self.app(scope, receive, send)
        origin = origin_raw.decode("latin-1")
        allowed = self._origin_headers(origin)
        if scope["method"] == "OPTIONS" and request_method is not None:
            return self._preflight(scope, send, allowed, request_method, request_headers)
        if allowed is None:
            return self.app(scope, receive, send)
        sender = response_sender(send)
        sender.add(_CORS_RESPONSE_NAMES, [*allowed, self._expose])
        return self.app(scope, receive, sender)

    async def _preflight(
        self,
        scope: Scope,
        send: Send,
        allowed: list[tuple[bytes, bytes]] | None,
        request_method: bytes,
        request_headers: bytes | None,
    ) -> None:
        if allowed is None:
            await send_error(scope, send, 403, "FORBIDDEN", "CORS origin not allowed")
            return
        method = request_method.decode("latin-1").strip().upper()
        asked = [h.strip().lower() for h in (request_headers or b"").decode("latin-1").split(",") if h.strip()]
        refused = [h for h in asked if h not in _ALLOWED_HEADER_SET]
        if method not in _ALLOWED_METHOD_SET or refused:
            await send_error(scope, send, 403, "FORBIDDEN", "CORS preflight refused",
                             details={"method": method, "headers": refused,
                                      "allowedHeaders": list(ALLOWED_HEADERS)})
            return
        headers = [*allowed, *self._preflight_static, (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
