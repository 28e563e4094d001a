from __future__ import annotations

import httpx
import pytest
from fastapi import Query, Request
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from nno.kernel.errors import NNOError, envelope
from nno.kernel.pagination import check_limit, decode_cursor, encode_cursor
from nno.kernel.service import create_service_app, wrap_service


@given(st.dictionaries(st.sampled_from(["a", "b"]),
                       st.one_of(st.integers(-(2**63), 2**63 - 1),
                                 st.text(st.characters(blacklist_characters="\x00"), max_size=20))))
def test_cursor_round_trip(values: dict) -> None:
    keys = tuple(values)
    assert decode_cursor(encode_cursor(values), keys) == values


@pytest.mark.parametrize("values", [{"c": 2**63, "i": "x"}, {"c": 1, "i": "x\x00"}, {"c": "1", "i": "x"},
                                    {"c": 1, "i": ["x"]}, {"c": True, "i": "x"}, {"c": 1.5, "i": "x"}])
def test_cursor_values_the_database_cannot_compare_are_refused(values: dict) -> None:
    with pytest.raises(NNOError) as caught:
        decode_cursor(encode_cursor(values), ("c", "i"), int_keys=("c",))
    assert caught.value.code == "INVALID_CURSOR"


@given(st.text(max_size=40))
def test_garbage_cursor_is_a_400(garbage: str) -> None:
    try:
        decode_cursor(garbage, ("createdAt", "id"))
    except NNOError as exc:
        assert exc.status == 400 and exc.code == "INVALID_CURSOR"


def test_limit_bounds() -> None:
    assert check_limit(None) == 50
    assert check_limit(100) == 100
    for bad in (0, 101, -1):
        with pytest.raises(NNOError):
            check_limit(bad)


def test_envelope_shape() -> None:
    body = envelope("NOT_FOUND", "nope", request_id="r1")
    assert body == {"error": {"code": "NOT_FOUND", "message": "nope", "requestId": "r1"}}


class Item(BaseModel):
    size: int


def _app() -> httpx.AsyncClient:
    app = create_service_app("t", title="t")

    @app.post("/items")
    async def create(item: Item, q: int = Query(1)) -> dict:
        return {"size": item.size}

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("secret internals")

    @app.get("/conflict")
    async def conflict() -> dict:
        raise NNOError(409, "SLUG_TAKEN", "taken", {"slug": "x"})

    transport = httpx.ASGITransport(app=wrap_service(app), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://svc")


async def test_every_error_is_an_envelope() -> None:
    async with _app() as c:
        r = await c.post("/items", json={"size": "big"}, headers={"X-Nno-Request-Id": "rid-1"})
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["code"] == "VALIDATION_ERROR" and err["requestId"] == "rid-1"
        assert err["details"][0]["field"] == "size"

        r = await c.post("/items", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"

        r = await c.get("/nowhere")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"

        r = await c.delete("/items")
        assert r.status_code == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"

        r = await c.get("/boom")
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "INTERNAL_ERROR"
        assert "secret" not in r.text

        r = await c.get("/conflict")
        assert r.status_code == 409
        assert r.json()["error"] == {"code": "SLUG_TAKEN", "message": "taken", "details": {"slug": "x"},
                                     "requestId": r.json()["error"]["requestId"]}


async def test_standalone_service_requires_internal_token() -> None:
    from nno.kernel.bindings import internal_token

    app = create_service_app("t", title="t")

    @app.get("/ping")
    async def ping() -> dict:
        return {"ok": True}

    secret = b"s3cret"
    transport = httpx.ASGITransport(app=wrap_service(app, standalone_secret=secret))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        r = await c.get("/ping")
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
        r = await c.get("/ping", headers={"X-Nno-Internal-Token": "wrong"})
        assert r.status_code == 401
        r = await c.get("/ping", headers={"X-Nno-Internal-Token": internal_token(secret)})
        assert r.status_code == 200


async def test_standalone_service_sees_the_gateways_caller_only_with_the_internal_token() -> None:
    from nno.kernel.bindings import internal_token

    app = create_service_app("t", title="t")

    @app.get("/peer")
    async def peer(request: Request) -> dict:
        return {"client": request.client.host if request.client else None}

    secret = b"s3cret"
    good = {"X-Nno-Internal-Token": internal_token(secret), "X-Nno-Client-Ip": "203.0.113.9"}
    standalone = httpx.ASGITransport(app=wrap_service(app, standalone_secret=secret), client=("10.0.0.2", 1))
    async with httpx.AsyncClient(transport=standalone, base_url="http://svc") as c:
        assert (await c.get("/peer", headers=good)).json() == {"client": "203.0.113.9"}
        forged = {"X-Nno-Client-Ip": "203.0.113.9", "X-Nno-Internal-Token": "wrong"}
        assert (await c.get("/peer", headers=forged)).status_code == 401
    in_process = httpx.ASGITransport(app=wrap_service(app), client=("10.0.0.2", 1))
    async with httpx.AsyncClient(transport=in_process, base_url="http://svc") as c:
        # In-process the real peer is already in the scope; the header means nothing.
        assert (await c.get("/peer", headers={"X-Nno-Client-Ip": "203.0.113.9"})).json() == {"client": "10.0.0.2"}
