"""Builds the gateway ASGI app. (Foundation version: routing only; the full pipeline lands with #2.)"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.routing import match_route
from nno.kernel.bindings import Bindings
from nno.kernel.config import Settings
from nno.kernel.errors import envelope_bytes
from nno.kernel.kv import KeyValueStore


def create_gateway(settings: Settings, bindings: Bindings, kv: KeyValueStore) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        matched = match_route(scope["path"])
        binding = bindings.get(matched[0].service) if matched else None
        if matched is None or binding is None:
            body = envelope_bytes("NOT_FOUND", "Route not found")
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await binding.forward(scope, receive, send, matched[1])

    return app
