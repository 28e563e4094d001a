"""What every service app is built from: its context (settings, database, bindings, shared store)
and `create_service_app`, which gives each FastAPI app the envelope, request ids and the
internal-call check.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nno.kernel.apidoc import install_error_docs
from nno.kernel.bindings import Bindings, internal_token
from nno.kernel.config import Settings
from nno.kernel.context import request_id_var, trace_id_var
from nno.kernel.db import Database
from nno.kernel.dbfaults import DatabaseRetryMiddleware, install_database_error_handler
from nno.kernel.errors import envelope_bytes, install_error_handlers
from nno.kernel.identity import H_CLIENT_IP, H_INTERNAL_TOKEN, H_REQUEST_ID, H_TRACE_ID
from nno.kernel.kv import KeyValueStore

Hook = Callable[[], Awaitable[None]]

# Header names as the ASGI scope carries them (encoded once, not per header per request).
_B_REQUEST_ID = H_REQUEST_ID.encode()
_B_TRACE_ID = H_TRACE_ID.encode()
_B_INTERNAL_TOKEN = H_INTERNAL_TOKEN.encode()
_B_CLIENT_IP = H_CLIENT_IP.encode()


@dataclass
class ServiceContext:
    name: str
    settings: Settings
    db: Database
    bindings: Bindings
    kv: KeyValueStore
    startup_hooks: list[Hook] = field(default_factory=list)
    shutdown_hooks: list[Hook] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


def _without_body(send: Send) -> Send:
    """`send` for a HEAD answered as its GET: the GET's status and headers (its content-length
    included), no body."""

    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return head_send


class ServiceContextMiddleware:
    """Pure ASGI: binds the forwarded request/trace ids for logs and envelopes, and, when the service
    is served over HTTP on its own (scaled mode), refuses calls without the internal token. A HEAD
    is answered here, for every route, as its GET without the body (RFC 9110 9.3.2)."""

    def __init__(self, app: ASGIApp, secret: bytes | None) -> None:
        self.app = app
        self.expected = internal_token(secret).encode() if secret is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = tid = token = client_ip = None
        for name, value in scope["headers"]:
            if name == _B_REQUEST_ID or (name == b"x-request-id" and rid is None):
                rid = value.decode("latin-1")
            elif name == _B_TRACE_ID:
                tid = value.decode("latin-1")
            elif name == _B_INTERNAL_TOKEN:
                token = value
            elif name == _B_CLIENT_IP:
                client_ip = value.decode("latin-1")
        r_tok = request_id_var.set(rid)
        t_tok = trace_id_var.set(tid)
        try:
            if scope["method"] == "HEAD":
                # The routes see a GET, so HEAD goes through every check GET does.
                scope = dict(scope, method="GET")
                send = _without_body(send)
            if self.expected is not None and (token is None or not hmac.compare_digest(token, self.expected)):
                body = envelope_bytes("UNAUTHORIZED", "Internal services are reachable only through the gateway")
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            if self.expected is not None and client_ip:
                # Standalone behind the gateway: the peer is the gateway; the caller is who it says.
                scope = dict(scope, client=(client_ip, 0))
            query = scope.get("query_string", b"")
            if query and (b"%00" in query or b"\x00" in query):
                # PostgreSQL refuses NUL in text: refuse it here rather than as a 500 from a query.
                body = envelope_bytes("VALIDATION_ERROR", "Query parameters may not contain NUL characters (%00)",
                                      {"in": "query"})
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await self.app(scope, receive, send)
        finally:
            request_id_var.reset(r_tok)
            trace_id_var.reset(t_tok)


def without_trailing_slash(scope: Scope) -> Scope:
    """The scope with the trailing slashes of its path dropped (the root path stays `/`)."""
    path: str = scope["path"]
    trimmed = path.rstrip("/") or "/"
    if trimmed == path:
        return scope
    scope = dict(scope, path=trimmed)
    raw: bytes | None = scope.get("raw_path")
    if raw is not None and raw.endswith(b"/"):
        scope["raw_path"] = raw.rstrip(b"/") or b"/"
    return scope


class TrailingSlashMiddleware:
    """`/x/` reaches the route `/x`. Without it a service answered `/x/` with a 307 redirect to its own
    internal path (wrong behind the gateway's prefix), or a 404 once redirects are off."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        path = scope.get("path")
        if path is not None and path[-1:] == "/" and len(path) > 1:
            scope = without_trailing_slash(scope)
        return self.app(scope, receive, send)


def create_service_app(name: str, *, title: str, description: str = "", version: str = "1.0.0") -> FastAPI:
    """A FastAPI app with NNO's error envelope. Routers are added by the service's `app.py`.

    Never redirects: a slash redirect's `Location` would be the service's internal path. A trailing
    slash is dropped instead, so `/x/` and `/x` are one route (as the gateway's rate limit counts them)."""
    app = FastAPI(title=title, description=description, version=version, docs_url=None, redoc_url=None,
                  redirect_slashes=False)
    app.add_middleware(TrailingSlashMiddleware)
    app.state.service_name = name
    install_error_handlers(app)
    install_database_error_handler(app)
    install_error_docs(app)
    return app


def wrap_service(app: ASGIApp, *, standalone_secret: bytes | None = None) -> ASGIApp:
    """The outermost layer of every service. `standalone_secret` is set when served over HTTP."""
    return ServiceContextMiddleware(DatabaseRetryMiddleware(app), standalone_secret)
