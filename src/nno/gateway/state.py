"""Per-request state the gateway's middlewares share through the ASGI scope (`scope["nno.gw"]`),
and the one helper they use to answer with the NNO error envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope, Send

from nno.kernel.identity import Identity

SCOPE_KEY = "nno.gw"

JSON_CONTENT_TYPE = (b"content-type", b"application/json")


@dataclass(slots=True)
class GatewayState:
    """Filled in as the request moves inward; read by the proxy and by outer layers on the way out."""

    request_id: str = ""
    trace_id: str = ""
    traceparent: str = ""
    identity: Identity | None = None
    # Identity headers, already encoded, set by auth for the upstream request.
    identity_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # Server-Timing entries (name, milliseconds) recorded by inner layers.
    timings: list[tuple[str, float]] = field(default_factory=list)


def get_state(scope: Scope) -> GatewayState:
    state: GatewayState | None = scope.get(SCOPE_KEY)
    if state is None:
        state = scope[SCOPE_KEY] = GatewayState()
    return state


def envelope_body(code: str, message: str, request_id: str, details: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    error["requestId"] = request_id
    return json.dumps({"error": error}, separators=(",", ":")).encode()


async def send_error(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with the NNO error envelope carrying this request's id."""
    request_id = get_state(scope).request_id
    body = envelope_body(code, message, request_id, details)
    out = [JSON_CONTENT_TYPE, (b"content-length", str(len(body)).encode())]
    if request_id:  # also echoed here for answers from layers outside requestId (errorHandler)
        out.append((b"x-request-id", request_id.encode("ascii")))
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body, "more_body": False})
