"""The request-body limit (NNO_MAX_BODY_BYTES): a declared length over it is refused before anything
is read, a body of unknown length is counted as it streams, and either way the client gets a 413
envelope while the service never acts on a partial body."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nno.gateway.body_limit import declared_length
from tests.gateway.conftest import SERVICE, Harness

LIMIT = 1000


class CountingUpstream:
    """Echoes the size of the body it read; counts the calls that reached it."""

    def __init__(self, *, answer_first: bool = False) -> None:
        self.calls = 0
        self.answer_first = answer_first

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        if self.answer_first:  # starts its (streaming) answer before reading the body
            await send({"type": "http.response.start", "status": 200, "headers": []})
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = json.dumps({"size": size}).encode()
        if not self.answer_first:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def post(app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bytes, int]:
    """(status, body, messages the client's receive handed out) for a raw ASGI POST."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/v1/provisioning/x", "raw_path": b"/api/v1/provisioning/x", "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 5000), "server": ("gw", 80),
             "headers": [(b"host", b"gw"), (b"authorization", SERVICE["Authorization"].encode()), *headers]}
    pending = list(chunks)
    handed = 0

    async def receive() -> dict[str, Any]:
        nonlocal handed
        handed += 1
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    status, out = 0, []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            out.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(out), handed


async def test_a_declared_length_over_the_limit_never_reaches_the_service(
    make_gateway: Callable[..., Awaitable[Harness]],
) -> None:
    upstream = CountingUpstream()
    gw = await make_gateway(services={"provisioning": upstream}, max_body_bytes=LIMIT)
    status, body, handed = await post(gw.gateway, [(b"content-length", b"1001")], [b"x" * 1001])
    assert status == 413 and json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert json.loads(body)["error"]["details"] == {"limit": LIMIT}
    assert upstream.calls == 0 and handed == 0
    # At the limit exactly: through.
    status, body, _ = await post(gw.gateway, [(b"content-length", b"1000")], [b"x" * 1000])
    assert status == 200 and json.loads(body) == {"size": 1000}


async def test_a_chunked_body_is_counted_as_it_streams(make_gateway: Callable[..., Awaitable[Harness]]) -> None:
    upstream = CountingUpstream()
    gw = await make_gateway(services={"provisioning": upstream}, max_body_bytes=LIMIT)
    chunked = [(b"transfer-encoding", b"chunked")]
    status, body, _ = await post(gw.gateway, chunked, [b"x" * 400, b"x" * 400, b"x" * 200])
    assert status == 200 and json.loads(body) == {"size": 1000}
    # Over: the service's answer to a body it never got whole is not what the client sees.
    status, body, handed = await post(gw.gateway, chunked, [b"x" * 400] * 10)
    assert status == 413 and json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert handed == 3  # reading stopped at the chunk that crossed the limit
    # No length header at all on a POST: counted too.
    status, body, _ = await post(gw.gateway, [], [b"x" * 600, b"x" * 600])
    assert status == 413


async def test_a_service_that_answered_before_the_limit_was_crossed_is_aborted(
    make_gateway: Callable[..., Awaitable[Harness]],
) -> None:
    gw = await make_gateway(services={"provisioning": CountingUpstream(answer_first=True)}, max_body_bytes=LIMIT)
    with pytest.raises(Exception) as caught:
        await post(gw.gateway, [(b"transfer-encoding", b"chunked")], [b"x" * 600] * 3)
    assert type(caught.value).__name__ == "BodyTooLarge"


@pytest.mark.parametrize("value", [b"-1", b"1e3", b"abc", b"1,2", b"99999999999999999999999"])
async def test_an_unreadable_content_length_is_400(make_gateway: Callable[..., Awaitable[Harness]],
                                                  value: bytes) -> None:
    upstream = CountingUpstream()
    gw = await make_gateway(services={"provisioning": upstream}, max_body_bytes=LIMIT)
    status, body, _ = await post(gw.gateway, [(b"content-length", value)], [b""])
    assert status == 400 and json.loads(body)["error"]["code"] == "VALIDATION_ERROR"
    assert upstream.calls == 0


async def test_a_real_service_creates_nothing_from_an_oversized_body(
    make_settings: Callable[..., Any], service_headers: dict[str, str],
) -> None:
    from nno.core import Core

    core = Core(make_settings(max_body_bytes=2048))
    await core.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url="http://gw") as c:
            big = {"name": "Acme", "slug": "acme-big", "metadata": {"blob": "x" * 4096}}
            resp = await c.post("/api/v1/platforms", json=big, headers=service_headers)
            assert resp.status_code == 413 and resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
            listed = await c.get("/api/v1/platforms", headers=service_headers)
            assert listed.status_code == 200 and listed.json()["data"] == []
    finally:
        await core.stop()


@given(st.integers(min_value=0, max_value=10**18))
def test_declared_length_reads_every_plain_number(n: int) -> None:
    assert declared_length(str(n).encode()) == n
    assert declared_length(f" {n} ".encode()) == n


@given(st.binary(max_size=30))
def test_declared_length_never_raises(value: bytes) -> None:
    result = declared_length(value)
    assert result is None or result >= -1
