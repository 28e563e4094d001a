"""Real HTTP: the gateway under uvicorn on a loopback port, and upstreams reached over HTTP
(HTTPBinding): streaming both ways, hop-by-hop headers, 502 and 504 envelopes."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from nno.kernel.bindings import HTTPBinding, UpstreamError
from tests.gateway.conftest import SERVICE, SESSION_TOKEN, Harness, asgi_request, bearer
from tests.gateway.fakes import BIG_CHUNK, BIG_CHUNKS, echo_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port, in this event loop."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def http_gw(make_gateway: Callable[..., Awaitable[Harness]]) -> AsyncIterator[tuple[Harness, str]]:
    """A gateway served over HTTP whose `cli` upstream is itself reached over HTTP."""
    async with serve(echo_app()) as upstream_url:
        binding = HTTPBinding("cli", upstream_url, b"secret", timeout_s=0.5)
        gw = await make_gateway(services={"cli": binding}, max_body_bytes=HTTP_GW_BODY_LIMIT)
        async with serve(gw.gateway) as url:
            yield gw, url


HTTP_GW_BODY_LIMIT = 3 * 1024 * 1024  # the 2 MiB upload below streams through; 4 MiB is refused


async def test_over_http_with_http_upstream(http_gw: tuple[Harness, str]) -> None:
    _, url = http_gw
    async with httpx.AsyncClient(base_url=url) as c:
        resp = await c.get("/api/v1/cli/repos/r1?x=1", headers={**bearer(SESSION_TOKEN), "X-Nno-Role": "service"})
        assert resp.status_code == 200
        seen = {k: v for k, v in resp.json()["headers"]}
        assert resp.json()["path"] == "/repos/r1" and resp.json()["query"] == "x=1"
        assert seen["x-nno-user-id"] == "user1" and seen["x-nno-role"] == "platform-admin"
        assert seen["x-nno-request-id"] == resp.headers["x-request-id"]
        assert resp.headers["x-content-type-options"] == "nosniff"
        health = await c.get("/health")
        assert health.text == "ok"


async def test_streams_a_large_download_over_http(http_gw: tuple[Harness, str]) -> None:
    _, url = http_gw
    async with httpx.AsyncClient(base_url=url) as c, c.stream("GET", "/api/v1/cli/stream-big", headers=SERVICE) as r:
        assert r.status_code == 200
        digest, size, chunks = hashlib.sha256(), 0, 0
        async for chunk in r.aiter_raw():
            digest.update(chunk)
            size += len(chunk)
            chunks += 1
    assert size == len(BIG_CHUNK) * BIG_CHUNKS
    assert digest.hexdigest() == hashlib.sha256(BIG_CHUNK * BIG_CHUNKS).hexdigest()
    assert chunks > 1  # arrived in pieces, not as one buffered body


async def test_streams_a_large_upload_over_http(http_gw: tuple[Harness, str]) -> None:
    _, url = http_gw
    payload = BIG_CHUNK * 32  # 2 MiB

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 65536):
            yield payload[i:i + 65536]

    async with httpx.AsyncClient(base_url=url) as c:
        resp = await c.post("/api/v1/cli/upload", headers=SERVICE, content=body())
        assert resp.status_code == 200
        assert resp.json()["size"] == len(payload)
        assert resp.json()["sha256"] == hashlib.sha256(payload).hexdigest()
        # Same for an in-process upstream.
        resp = await c.post("/api/v1/provisioning/upload", headers=SERVICE, content=body())
        assert resp.json()["size"] == len(payload)


async def test_in_process_upstream_streams_too(gw: Harness) -> None:
    chunks = 0
    async with serve(gw.gateway) as url, httpx.AsyncClient(base_url=url) as c, \
            c.stream("GET", "/api/v1/provisioning/stream-big", headers=SERVICE) as r:
        size = 0
        async for chunk in r.aiter_raw():
            size += len(chunk)
            chunks += 1
    assert size == len(BIG_CHUNK) * BIG_CHUNKS and chunks > 1


async def test_unreachable_upstream_is_502(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(services={"cli": HTTPBinding("cli", f"http://127.0.0.1:{_free_port()}", b"s")})
    resp = await gw.client.get("/api/v1/cli/x", headers=SERVICE)
    assert resp.status_code == 502
    err = resp.json()["error"]
    assert err["code"] == "BAD_GATEWAY" and err["requestId"] == resp.headers["x-request-id"]


async def test_slow_http_upstream_is_504(http_gw: tuple[Harness, str]) -> None:
    _, url = http_gw
    async with httpx.AsyncClient(base_url=url) as c:
        resp = await c.get("/api/v1/cli/slow", headers=SERVICE)
    assert resp.status_code == 504 and resp.json()["error"]["code"] == "GATEWAY_TIMEOUT"


async def test_slow_in_process_upstream_is_504(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    gw = await make_gateway(upstream_timeout_s=0.2)
    resp = await gw.client.get("/api/v1/provisioning/slow", headers=SERVICE)
    assert resp.status_code == 504 and resp.json()["error"]["code"] == "GATEWAY_TIMEOUT"


async def test_hop_by_hop_headers_are_dropped_both_ways(http_gw: tuple[Harness, str]) -> None:
    gw, _url = http_gw
    headers = [(b"host", b"x"), (b"authorization", SERVICE["Authorization"].encode()),
               (b"connection", b"keep-alive, x-private"), (b"x-private", b"1"), (b"te", b"trailers"),
               (b"keep-alive", b"timeout=5"), (b"proxy-authorization", b"Basic x"), (b"x-kept", b"yes")]
    import json

    status, _, body = await asgi_request(gw.gateway, "GET", "/api/v1/provisioning/x", headers=headers)
    seen = {k for k, _ in json.loads(body)["headers"]}
    assert status == 200 and "x-kept" in seen
    assert not seen & {"connection", "x-private", "te", "keep-alive", "proxy-authorization"}
    for path in ("/api/v1/provisioning/hop", "/api/v1/cli/hop"):
        status, out, body = await asgi_request(gw.gateway, "GET", path, headers=headers[:2])
        assert status == 200 and out[b"x-upstream"] == b"yes"
        assert b"keep-alive" not in out and b"proxy-authenticate" not in out


async def test_connection_cannot_drop_the_gateways_identity_headers(http_gw: tuple[Harness, str]) -> None:
    """`Connection: x-nno-user-id, ...` from the client: both bindings (in-process for provisioning,
    HTTP for cli) still hand the service the identity, request id and trace the gateway set."""
    gw, _url = http_gw
    import json

    named = b"x-nno-user-id, X-Nno-Role, x-nno-platform-id, x-nno-auth-type, x-nno-request-id, " \
            b"x-nno-trace-id, traceparent, x-nno-internal-token, x-nno-client-ip, x-private"
    headers = [(b"host", b"x"), (b"authorization", f"Bearer {SESSION_TOKEN}".encode()),
               (b"connection", named), (b"x-private", b"1")]
    for path in ("/api/v1/provisioning/x", "/api/v1/cli/x"):
        status, out, body = await asgi_request(gw.gateway, "GET", path, headers=headers)
        assert status == 200, body
        seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
        assert seen["x-nno-user-id"] == "user1" and seen["x-nno-role"] == "platform-admin", (path, seen)
        assert seen["x-nno-platform-id"] == "plat1" and seen["x-nno-auth-type"] == "session"
        assert seen["x-nno-request-id"] == out[b"x-request-id"].decode()
        assert seen["x-nno-trace-id"] and seen["traceparent"]
        assert "x-private" not in seen and "connection" not in seen
        if path.startswith("/api/v1/cli"):
            assert seen["x-nno-internal-token"] and seen["x-nno-client-ip"]


async def _dies_mid_stream(scope, receive, send):  # type: ignore[no-untyped-def]
    """An upstream that starts a response, sends a first chunk and then crashes."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first chunk", "more_body": True})
    await asyncio.sleep(0.05)
    raise RuntimeError("upstream died mid-stream")


async def test_an_upstream_dying_mid_stream_over_http_aborts_the_response(
    make_gateway: Callable[..., Awaitable[Harness]],
) -> None:
    """Once the upstream's 200 reached the client, a failure cannot become a 502 envelope: the
    gateway sends nothing more and lets the error abort the stream (the server then drops the
    connection), never a second response start after the first."""
    async with serve(_dies_mid_stream) as upstream_url:
        gw = await make_gateway(services={"cli": HTTPBinding("cli", upstream_url, b"secret", timeout_s=2)})
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": "/api/v1/cli/anything", "raw_path": b"/api/v1/cli/anything",
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
                 "server": ("gateway.test", 80), "headers": [(b"host", b"gateway.test"),
                                                             (b"authorization", SERVICE["Authorization"].encode())]}
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        with pytest.raises(UpstreamError):
            await gw.gateway(scope, receive, send)
        starts = [m for m in sent if m["type"] == "http.response.start"]
        assert [m["status"] for m in starts] == [200]
        assert b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body") == b"first chunk"

        async with serve(gw.gateway) as url, httpx.AsyncClient(base_url=url) as c:
            with pytest.raises(httpx.RemoteProtocolError):
                async with c.stream("GET", "/api/v1/cli/anything", headers=SERVICE) as r:
                    assert r.status_code == 200
                    async for _ in r.aiter_raw():
                        pass


@pytest.mark.parametrize("service", ["cli", "provisioning"])  # over HTTP, in-process
async def test_a_chunked_upload_over_the_limit_is_413_over_http(http_gw: tuple[Harness, str], service: str) -> None:
    _, url = http_gw
    payload = BIG_CHUNK * 64  # 4 MiB, no Content-Length

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 65536):
            yield payload[i:i + 65536]

    async with httpx.AsyncClient(base_url=url) as c:
        resp = await c.post(f"/api/v1/{service}/upload", headers=SERVICE, content=body())
        assert resp.status_code == 413, resp.text
        assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert resp.json()["error"]["details"] == {"limit": HTTP_GW_BODY_LIMIT}
        assert resp.headers["x-request-id"] == resp.json()["error"]["requestId"]
        # A declared length over the limit is refused before the body is read.
        resp = await c.post(f"/api/v1/{service}/upload", headers=SERVICE, content=payload)
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
