"""Per-request state the gateway's middlewares share through the ASGI scope (`scope["nno.gw"]`),
and the one helper they use to answer with the NNO error envelope."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Scope, Send

from nno.kernel.identity import Identity

SCOPE_KEY = "nno.gw"

JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class ClientHeaders:
    """The request headers the layers read, found in one pass over the scope's headers (names
    compared case-insensitively) instead of one pass per layer. Raw values; each layer validates
    its own. Repeated headers: the first X-Request-Id, the last of the others, and every Cookie
    joined with "; " (what each layer's own loop used to pick)."""

    __slots__ = (
        "api_key", "authorization", "content_length", "cookie", "cors_method", "cors_request_headers",
        "nno_trace", "origin", "plain_trace", "request_id", "strip_upstream", "traceparent", "transfer_encoding",
    )

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.request_id: bytes | None = None
        self.nno_trace: bytes | None = None
        self.plain_trace: bytes | None = None
        self.traceparent: bytes | None = None
        self.authorization: bytes | None = None
        self.api_key: bytes | None = None
        self.cookie: bytes | None = None
        self.origin: bytes | None = None
        self.cors_method: bytes | None = None
        self.cors_request_headers: bytes | None = None
        self.content_length: bytes | None = None
        self.transfer_encoding: bytes | None = None
        # Whether any header must be dropped before the upstream (X-Nno-*, traceparent).
        self.strip_upstream = False
        for name, value in headers:
            slot = _SLOTS.get(name.lower())
            if slot is None:
                if name[:6].lower() == b"x-nno-":
                    self.strip_upstream = True
            elif slot == "request_id":
                if self.request_id is None:
                    self.request_id = value
            elif slot == "cookie":
                self.cookie = value if self.cookie is None else self.cookie + b"; " + value
            else:
                setattr(self, slot, value)
                if slot == "nno_trace" or slot == "traceparent":
                    self.strip_upstream = True


_SLOTS = {
    b"x-request-id": "request_id",
    b"x-nno-trace-id": "nno_trace",
    b"x-trace-id": "plain_trace",
    b"traceparent": "traceparent",
    b"authorization": "authorization",
    b"x-api-key": "api_key",
    b"cookie": "cookie",
    b"origin": "origin",
    b"access-control-request-method": "cors_method",
    b"access-control-request-headers": "cors_request_headers",
    b"content-length": "content_length",
    b"transfer-encoding": "transfer_encoding",
}


class GatewayState:
    """Filled in as the request moves inward; read by the proxy and by outer layers on the way out.
    (A plain slotted class: built once per request, where a dataclass's generated init costs more.)"""

    __slots__ = ("headers", "identity", "identity_headers", "request_id", "timings", "trace_id", "traceparent")

    def __init__(self) -> None:
        self.request_id = ""
        self.trace_id = ""
        self.traceparent = ""
        self.identity: Identity | None = None
        # Identity headers, already encoded, set by auth for the upstream request.
        self.identity_headers: tuple[tuple[bytes, bytes], ...] = ()
        # Server-Timing entries (name, milliseconds) recorded by inner layers.
        self.timings: list[tuple[str, float]] = []
        self.headers: ClientHeaders | None = None


def client_headers(scope: Scope) -> ClientHeaders:
    """This request's `ClientHeaders`, scanned once (by the first layer that asks)."""
    state = get_state(scope)
    found = state.headers
    if found is None:
        found = state.headers = ClientHeaders(scope["headers"])
    return found


def get_state(scope: Scope) -> GatewayState:
    state: GatewayState | None = scope.get(SCOPE_KEY)
    if state is None:
        state = scope[SCOPE_KEY] = GatewayState()
    return state


# IAM's Better Auth surface: its clients read `code` and `message` at the top level of an error
# (docs/better-auth.md), so the gateway's own errors there carry them too.
BETTER_AUTH_PREFIX = "/api/v1/iam/api/auth/"


def envelope_body(code: str, message: str, request_id: str, details: Any = None, *,
                  top_level: bool = False) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    error["requestId"] = request_id
    body: dict[str, Any] = {"code": code, "message": message, "error": error} if top_level else {"error": error}
    return json.dumps(body, separators=(",", ":")).encode()


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
    body = envelope_body(code, message, request_id, details,
                         top_level=str(scope.get("path", "")).startswith(BETTER_AUTH_PREFIX))
    out = [JSON_CONTENT_TYPE, (b"content-length", str(len(body)).encode())]
    if request_id:  # also echoed here for answers from layers outside requestId (errorHandler)
        out.append((b"x-request-id", request_id.encode("ascii")))
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    # A HEAD is told the GET's length, without the body.
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body,
                "more_body": False})
