"""The innermost layer: the gateway's own routes (`/health`, `/openapi.json`) and prefix routing to
the upstream bindings (DECISIONS 1). Request and response bodies stream through untouched. Client
X-Nno-* headers and the client's `traceparent` are dropped, hop-by-hop headers too (by the
binding), and the gateway's request id, trace and identity headers are added."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from nno.gateway.body_limit import BodyLimit, BodyTooLarge, CountedBody, Refusal
from nno.gateway.openapi import OpenAPIDocument
from nno.gateway.routing import encode_path, match_route, unsafe_path_reason
from nno.gateway.state import JSON_CONTENT_TYPE, SCOPE_KEY, client_headers, get_state, send_error
from nno.kernel.bindings import Bindings, UpstreamError

_OK_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"2")]


def upstream_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The client's headers minus X-Nno-* (any case) and traceparent, plus the gateway's request id,
    trace and identity headers. Hop-by-hop headers are left for the binding to drop: it needs
    `Connection` (to drop the headers it names) and `Transfer-Encoding` (to see a chunked body)."""
    state = get_state(scope)
    if client_headers(scope).strip_upstream:
        headers = [
            h for h in scope["headers"] if not ((n := h[0].lower()).startswith(b"x-nno-") or n == b"traceparent")
        ]
    else:  # the common case: nothing to drop
        headers = list(scope["headers"])
    headers.append((b"x-nno-request-id", state.request_id.encode("ascii")))
    if state.trace_id:
        headers.append((b"x-nno-trace-id", state.trace_id.encode("ascii")))
        headers.append((b"traceparent", state.traceparent.encode("ascii")))
    headers += state.identity_headers
    return headers


class GatewayProxy:
    def __init__(self, bindings: Bindings, openapi: OpenAPIDocument, *, max_body_bytes: int = 1_048_576) -> None:
        self.bindings = bindings
        self.openapi = openapi
        self.body_limit = BodyLimit(max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/health":
            await self._own_route(scope, send, method, b"ok", _OK_HEADERS)
            return
        if path == "/openapi.json":
            body = await self.openapi.body() if method in ("GET", "HEAD") else b""
            await self._own_route(scope, send, method, body,
                                  [JSON_CONTENT_TYPE, (b"content-length", str(len(body)).encode())])
            return
        reason = unsafe_path_reason(path, scope.get("raw_path"))
        if reason is not None:
            await send_error(scope, send, 400, "VALIDATION_ERROR", "Malformed request path", {"reason": reason})
            return
        matched = match_route(path)
        if matched is None:
            await send_error(scope, send, 404, "NOT_FOUND", "Route not found")
            return
        route, upstream_path = matched
        binding = self.bindings.get(route.service)
        if binding is None:
            await send_error(scope, send, 404, "NOT_FOUND", f"The {route.service} service is not available",
                             {"service": route.service})
            return
        found = client_headers(scope)
        counted: CountedBody | None = None
        admitted = self.body_limit.admit(method, found.content_length, found.transfer_encoding, receive, send)
        if admitted is not None:
            if isinstance(admitted, Refusal):
                await send_error(scope, send, *admitted)
                return
            counted = admitted
            receive, send = counted.receive, counted.send
        upstream_scope = dict(scope)
        upstream_scope.pop(SCOPE_KEY, None)  # the gateway's own state stays in the gateway
        upstream_scope["headers"] = upstream_headers(scope)
        try:
            # The binding drops hop-by-hop headers both ways and says whether a failure came mid-stream.
            await binding.forward(upstream_scope, receive, send, encode_path(upstream_path))
        except (UpstreamError, BodyTooLarge) as exc:
            if counted is not None and counted.exceeded:
                await self._refuse_counted(scope, counted)
                return
            if isinstance(exc, BodyTooLarge) or exc.response_started:
                raise
            if exc.status == 504:
                await send_error(scope, send, 504, "GATEWAY_TIMEOUT", f"The {route.service} service did not "
                                 "answer in time", {"service": route.service})
            else:
                await send_error(scope, send, 502, "BAD_GATEWAY", f"The {route.service} service is unreachable",
                                 {"service": route.service})
            return
        if counted is not None and counted.exceeded:  # the service answered (and was not heard)
            await self._refuse_counted(scope, counted)

    async def _refuse_counted(self, scope: Scope, counted: CountedBody) -> None:
        if counted.response_started:  # the service answered before the body crossed the limit
            raise BodyTooLarge()
        await send_error(scope, counted.client_send, *self.body_limit.too_large)

    async def _own_route(
        self, scope: Scope, send: Send, method: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        if method not in ("GET", "HEAD"):
            await send_error(scope, send, 405, "METHOD_NOT_ALLOWED", "Method not allowed on this route",
                             headers=[(b"allow", b"GET, HEAD")])
            return
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body, "more_body": False})
