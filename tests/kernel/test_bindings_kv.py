from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import Request
from starlette.responses import StreamingResponse

from nno.kernel.bindings import ASGIBinding, HTTPBinding, UpstreamError, strip_hop_by_hop
from nno.kernel.context import request_id_var
from nno.kernel.kv import MemoryKV, RedisKV, redis_client
from nno.kernel.service import create_service_app, wrap_service
from tests.conftest import BACKEND, REDIS_URL


def _upstream() -> object:
    app = create_service_app("echo", title="echo")

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"body": (await request.body()).decode(), "rid": request.headers.get("x-nno-request-id"),
                "q": request.url.query, "path": request.url.path}

    @app.get("/peer")
    async def peer(request: Request) -> dict:
        return {"header": request.headers.get("x-nno-client-ip"),
                "client": request.client.host if request.client else None}

    @app.get("/slow")
    async def slow() -> dict:
        await asyncio.sleep(5)
        return {}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def gen():  # type: ignore[no-untyped-def]
            for i in range(100):
                yield f"{i:04d}".encode() * 256

        return StreamingResponse(gen(), media_type="application/octet-stream")

    return wrap_service(app)


async def test_asgi_binding_request_carries_request_id() -> None:
    binding = ASGIBinding("echo", _upstream())
    token = request_id_var.set("rid-42")
    try:
        resp = await binding.request("POST", "/echo", json={"a": 1}, params={"x": "1"})
    finally:
        request_id_var.reset(token)
    assert resp.status == 200
    assert resp.json() == {"body": '{"a":1}', "rid": "rid-42", "q": "x=1", "path": "/echo"}


async def test_asgi_binding_times_out_with_504() -> None:
    binding = ASGIBinding("echo", _upstream(), timeout_s=0.1)
    with pytest.raises(UpstreamError) as info:
        await binding.request("GET", "/slow")
    assert info.value.status == 504


def test_hop_by_hop_headers_are_dropped() -> None:
    headers = [(b"connection", b"keep-alive, x-custom"), (b"x-custom", b"1"), (b"keep-alive", b"5"),
               (b"transfer-encoding", b"chunked"), (b"content-type", b"text/plain")]
    assert strip_hop_by_hop(headers) == [(b"content-type", b"text/plain")]


def test_connection_never_names_away_nnos_own_headers() -> None:
    """The gateway sets X-Nno-* (identity, request id, trace) and traceparent after dropping the
    client's copies: a client's `Connection` naming them must not drop the gateway's."""
    ours = [(b"x-nno-user-id", b"u1"), (b"X-Nno-Role", b"user"), (b"traceparent", b"00-ab-cd-01")]
    headers = [(b"connection", b"X-NNO-USER-ID, x-nno-role , traceparent, x-other"), (b"x-other", b"1"), *ours]
    assert strip_hop_by_hop(headers) == ours


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_upstream() -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(_upstream(), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


async def test_http_binding_request_and_stream(http_upstream: str) -> None:
    binding = HTTPBinding("echo", http_upstream, b"secret")
    try:
        resp = await binding.request("POST", "/echo", json={"b": 2})
        assert resp.status == 200 and resp.json()["body"] == '{"b":2}'

        chunks: list[bytes] = []
        status: list[int] = []

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            else:
                chunks.append(message.get("body", b""))

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": "GET", "headers": [(b"host", b"x")], "query_string": b""}
        await binding.forward(scope, receive, send, "/stream")
        assert status == [200]
        assert len(b"".join(chunks)) == 100 * 4 * 256
    finally:
        await binding.close()


async def test_http_binding_forward_tells_the_service_who_the_caller_is(http_upstream: str) -> None:
    binding = HTTPBinding("echo", http_upstream, b"secret")
    body: list[bytes] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "headers": [(b"host", b"x")], "query_string": b"",
             "client": ("203.0.113.9", 5555)}
    try:
        await binding.forward(scope, receive, send, "/peer")
    finally:
        await binding.close()
    assert json.loads(b"".join(body))["header"] == "203.0.113.9"


async def test_http_binding_unreachable_is_502() -> None:
    binding = HTTPBinding("gone", f"http://127.0.0.1:{_free_port()}", b"secret")
    try:
        with pytest.raises(UpstreamError) as info:
            await binding.request("GET", "/x")
        assert info.value.status == 502
    finally:
        await binding.close()


async def test_memory_kv_ttl() -> None:
    kv = MemoryKV()
    await kv.set("a", "1")
    await kv.set("b", "2", ttl_s=0.05)
    assert await kv.get("a") == "1" and await kv.get("b") == "2"
    await asyncio.sleep(0.08)
    assert await kv.get("b") is None
    await kv.delete("a")
    assert await kv.get("a") is None


@pytest.mark.skipif(BACKEND != "scaled", reason="needs the real Redis (scaled backend)")
async def test_redis_kv_shared_between_clients() -> None:
    prefix = f"nnotest:{time.time_ns()}:"
    one, two = RedisKV(redis_client(REDIS_URL), prefix), RedisKV(redis_client(REDIS_URL), prefix)
    try:
        await one.set("platform-status:abc", "suspended")
        assert await two.get("platform-status:abc") == "suspended"
        await two.set("ttl", "x", ttl_s=0.05)
        await asyncio.sleep(0.1)
        assert await one.get("ttl") is None
        await one.delete("platform-status:abc")
        assert await two.get("platform-status:abc") is None
    finally:
        await one.close()
        await two.close()
