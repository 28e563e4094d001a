"""securityHeaders: on every response, errors included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from nno.gateway.middleware.security_headers import SecurityHeadersMiddleware
from tests.gateway.conftest import SERVICE, Harness, asgi_request

EXPECTED = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
            "referrer-policy": "strict-origin-when-cross-origin"}


def _has_security_headers(resp: httpx.Response) -> bool:
    return all(resp.headers.get(k) == v for k, v in EXPECTED.items())


async def test_on_success_and_every_kind_of_error(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(rate_limit="3/60s", cors_origins="https://console.example")
    c = gw.client
    responses = [
        await c.get("/health"),  # 200
        await c.get("/api/v1/provisioning/x", headers=SERVICE),  # proxied 200
        await c.get("/api/v1/provisioning/x"),  # 401
        await c.get("/nowhere"),  # 404
        await c.get("/api/v1/provisioning/boom", headers=SERVICE),  # upstream 500
        await c.options("/api/v1/iam/x", headers={"Origin": "https://console.example",
                                                  "Access-Control-Request-Method": "POST"}),  # preflight 204
    ]
    for _ in range(4):
        last = await c.get("/limited")
    responses.append(last)  # 429
    assert [r.status_code for r in responses] == [200, 200, 401, 404, 500, 204, 429]
    assert all(_has_security_headers(r) for r in responses)


async def test_replaces_weaker_upstream_values() -> None:
    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-frame-options", b"ALLOWALL"), (b"x-other", b"1")]})
        await send({"type": "http.response.body", "body": b""})

    _status, headers, _ = await asgi_request(SecurityHeadersMiddleware(inner), "GET", "/")
    assert headers[b"x-frame-options"] == b"DENY" and headers[b"x-other"] == b"1"


async def test_on_unhandled_exception_500(gw: Harness) -> None:
    async def explode(scope, receive, send):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    from nno.kernel.bindings import ASGIBinding

    gw.bindings.add(ASGIBinding("stacks", explode))
    resp = await gw.client.get("/api/v1/stacks/x", headers=SERVICE)
    assert resp.status_code == 500 and _has_security_headers(resp)
