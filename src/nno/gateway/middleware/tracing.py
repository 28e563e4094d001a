"""tracing: the trace id comes from the client's X-Nno-Trace-Id, else x-trace-id (the original's
logger header), else a valid W3C `traceparent`; otherwise a new trace starts. The gateway emits
X-Nno-Trace-Id and a valid `traceparent` (a new span of the same trace) upstream (via the proxy)
and on the response, and binds `trace_id_var` for logs."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from nno.gateway.headers import new_span_id, new_trace_id, parse_traceparent, trace_hex, valid_trace_token
from nno.gateway.response import response_sender
from nno.gateway.state import ClientHeaders, client_headers, get_state
from nno.kernel.context import trace_id_var

_NNO_TRACE = b"x-nno-trace-id"
_TRACEPARENT = b"traceparent"
_RESPONSE_NAMES = frozenset({_NNO_TRACE, _TRACEPARENT})


def resolve_trace(headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
    """(trace id, traceparent to emit) for a request's headers."""
    return resolve_client_trace(ClientHeaders(headers))


def resolve_client_trace(found: ClientHeaders) -> tuple[str, str]:
    """(trace id, traceparent to emit) from the last X-Nno-Trace-Id, x-trace-id and traceparent."""
    nno_trace = valid_trace_token(found.nno_trace) if found.nno_trace is not None else None
    plain_trace = valid_trace_token(found.plain_trace) if found.plain_trace is not None else None
    parent = parse_traceparent(found.traceparent) if found.traceparent is not None else None
    trace_id = nno_trace or plain_trace or (parent[0] if parent else None)
    if trace_id is None:  # a new trace: already 32 lowercase hex, not all zero
        hex_id = trace_id = new_trace_id()
    else:
        hex_id = trace_hex(trace_id)
    flags = parent[2] if parent and parent[0] == hex_id else "01"
    return trace_id, f"00-{hex_id}-{new_span_id()}-{flags}"


class TracingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id, traceparent = resolve_client_trace(client_headers(scope))
        state = get_state(scope)
        state.trace_id = trace_id
        state.traceparent = traceparent
        sender = response_sender(send)
        sender.add(_RESPONSE_NAMES,
                   ((_NNO_TRACE, trace_id.encode("ascii")), (_TRACEPARENT, traceparent.encode("ascii"))))
        token = trace_id_var.set(trace_id)
        try:
            await self.app(scope, receive, sender)
        finally:
            trace_id_var.reset(token)
