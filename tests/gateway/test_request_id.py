"""requestId: incoming X-Request-Id (validated) or a new UUID; echoed; forwarded as X-Nno-Request-Id."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nno.gateway.headers import valid_request_id
from nno.gateway.middleware.request_id import RequestIdMiddleware
from nno.kernel.context import request_id_var
from tests.gateway.conftest import SERVICE, Harness, asgi_request, received_headers


async def test_incoming_id_is_used_echoed_and_forwarded(gw: Harness) -> None:
    resp = await gw.client.get("/api/v1/provisioning/x", headers={**SERVICE, "X-Request-Id": "req-456"})
    assert resp.headers["x-request-id"] == "req-456"
    assert received_headers(resp)["x-nno-request-id"] == "req-456"


async def test_missing_id_gets_a_uuid(gw: Harness) -> None:
    resp = await gw.client.get("/api/v1/provisioning/x", headers=SERVICE)
    rid = resp.headers["x-request-id"]
    assert str(uuid.UUID(rid)) == rid
    assert received_headers(resp)["x-nno-request-id"] == rid


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "semi;colon", "-leading-dash", "é", "a\tb"])
async def test_insane_id_is_replaced(gw: Harness, bad: str) -> None:
    headers = [(b"x-request-id", bad.encode())]
    _, out, _ = await asgi_request(gw.gateway, "GET", "/health", headers=headers)
    rid = out[b"x-request-id"].decode()
    assert rid != bad and str(uuid.UUID(rid)) == rid


async def test_error_envelopes_carry_the_request_id(gw: Harness) -> None:
    resp = await gw.client.get("/api/v1/provisioning/x", headers={"X-Request-Id": "rid-for-401"})
    assert resp.status_code == 401 and resp.json()["error"]["requestId"] == "rid-for-401"


async def test_sets_the_context_var_and_resets_it() -> None:
    seen: list[str | None] = []

    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(request_id_var.get())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await asgi_request(RequestIdMiddleware(inner), "GET", "/", headers=[(b"x-request-id", b"ctx-1")])
    assert seen == ["ctx-1"] and request_id_var.get() is None


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=200))
def test_valid_request_id_accepts_only_sane_ids(raw: bytes) -> None:
    value = valid_request_id(raw)
    if value is not None:
        assert 1 <= len(value) <= 128 and value.encode() == raw
        assert all(c.isascii() and (c.isalnum() or c in "._:-") for c in value)
        assert value[0].isalnum()


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="abcXYZ019._:-", min_size=1, max_size=128).filter(lambda s: s[0].isalnum()))
def test_valid_request_id_keeps_every_sane_id(value: str) -> None:
    assert valid_request_id(value.encode()) == value
