"""errorHandler: unhandled exceptions become the 500 envelope, never a framework default body."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from nno.gateway.middleware.error_handler import ErrorHandlerMiddleware
from nno.gateway.state import get_state
from nno.kernel.bindings import ASGIBinding
from tests.gateway.conftest import SERVICE, Harness, asgi_request


async def test_exception_before_response_is_500_envelope() -> None:
    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        get_state(scope).request_id = "rid-1"
        raise ValueError("secret detail")

    with capture_logs() as logs:
        status, headers, body = await asgi_request(ErrorHandlerMiddleware(inner), "GET", "/x")
    assert status == 500 and headers[b"content-type"] == b"application/json"
    assert json.loads(body) == {"error": {"code": "INTERNAL_ERROR", "message": "Internal server error",
                                          "requestId": "rid-1"}}
    assert b"secret detail" not in body
    assert any(e["event"] == "unhandled_error" for e in logs)


async def test_exception_after_complete_response_keeps_the_response() -> None:
    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        raise RuntimeError("after")

    status, _, body = await asgi_request(ErrorHandlerMiddleware(inner), "GET", "/x")
    assert status == 201 and body == b"done"


async def test_exception_mid_stream_aborts() -> None:
    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("mid-stream")

    with pytest.raises(RuntimeError):
        await asgi_request(ErrorHandlerMiddleware(inner), "GET", "/x")


async def test_through_the_gateway_upstream_crash_is_enveloped(gw: Harness) -> None:
    async def explode(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("raw ASGI crash")

    gw.bindings.add(ASGIBinding("stacks", explode))
    resp = await gw.client.get("/api/v1/stacks/x", headers=SERVICE)
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "INTERNAL_ERROR"
    assert resp.json()["error"]["requestId"] == resp.headers["x-request-id"]


async def test_upstream_that_answers_500_then_reraises(gw: Harness) -> None:
    # Starlette apps send their 500 and then re-raise; the gateway keeps the upstream's answer.
    resp = await gw.client.get("/api/v1/provisioning/boom", headers=SERVICE)
    assert resp.status_code == 500
