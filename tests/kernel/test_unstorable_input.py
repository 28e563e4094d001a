"""Values a database refuses (NUL in text, integers beyond int64) are a 400 envelope at every
service's edge, whichever way they arrive: a body field, a query parameter, or a database error
no input check caught."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from nno.kernel.errors import unstorable_input
from nno.kernel.inputs import INT64_MAX, InputModel
from nno.kernel.service import create_service_app, wrap_service


class Body(InputModel):
    name: str = "x"
    count: int = 0
    data: dict[str, Any] = {}


class PgDataError(Exception):
    """Shaped like SQLAlchemy's DBAPIError around an asyncpg error of SQLSTATE class 22."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__("db refused")
        self.orig = type("Orig", (Exception,), {"sqlstate": sqlstate})()


def _client() -> httpx.AsyncClient:
    app = create_service_app("t", title="t")

    @app.post("/things")
    async def create(body: Body) -> dict[str, Any]:
        return {"ok": True}

    @app.get("/search")
    async def search(q: str = "") -> dict[str, Any]:
        return {"q": q}

    @app.get("/overflow")
    async def overflow() -> dict[str, Any]:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    @app.get("/pg/{state}")
    async def pg(state: str) -> dict[str, Any]:
        raise PgDataError(state)

    transport = httpx.ASGITransport(app=wrap_service(app), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://svc")


def _assert_400(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 400, resp.text
    assert set(resp.json()) == {"error"}
    err = resp.json()["error"]
    assert err["code"] == "VALIDATION_ERROR" and err["requestId"]
    return dict(err)


@pytest.mark.parametrize("body", [{"name": "a\x00b"}, {"data": {"k": ["ok", "a\x00"]}}, {"data": {"k\x00": 1}},
                                  {"count": INT64_MAX + 1}, {"count": -(2**63) - 1}])
async def test_bodies_with_unstorable_values_are_refused(body: dict[str, Any]) -> None:
    async with _client() as c:
        err = _assert_400(await c.post("/things", json=body))
        assert err["details"][0]["field"] == next(iter(body))


async def test_query_with_nul_is_refused_before_the_route() -> None:
    async with _client() as c:
        _assert_400(await c.get("/search?q=a%00b"))
        assert (await c.get("/search", params={"q": "fine"})).json() == {"q": "fine"}


async def test_database_data_errors_are_400_and_server_faults_stay_500() -> None:
    async with _client() as c:
        _assert_400(await c.get("/overflow"))
        _assert_400(await c.get("/pg/22021"))  # character_not_in_repertoire (NUL in text)
        resp = await c.get("/pg/23505")  # unique_violation is not the caller's bad value
        assert resp.status_code == 500 and resp.json()["error"]["code"] == "INTERNAL_ERROR"


def test_unstorable_input_follows_the_cause_chain() -> None:
    class AsyncpgLike(ValueError):
        pass

    AsyncpgLike.__module__ = "asyncpg.exceptions"
    outer = RuntimeError("wrapped")
    outer.__cause__ = AsyncpgLike("invalid input for query argument $1 (value out of int64 range)")
    assert unstorable_input(outer)
    assert not unstorable_input(RuntimeError("plain bug"))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=30), st.integers())
def test_input_model_accepts_exactly_storable_values(name: str, count: int) -> None:
    storable = "\x00" not in name and -(2**63) <= count <= INT64_MAX
    try:
        Body(name=name, count=count)
    except ValidationError:
        assert not storable
    else:
        assert storable


@pytest.mark.parametrize("raw", [b'{"data": {"x": NaN}}', b'{"data": {"x": [Infinity]}}', b'{"data": {"x": -1e999}}'])
async def test_non_finite_numbers_are_refused(raw: bytes) -> None:
    """Python's JSON parser accepts NaN and Infinity; the response encoder and PostgreSQL do not."""
    async with _client() as c:
        err = _assert_400(await c.post("/things", content=raw, headers={"content-type": "application/json"}))
        assert err["details"][0]["field"] == "data"


async def test_the_openapi_document_describes_the_envelope_not_the_framework_default() -> None:
    async with _client() as c:
        doc = (await c.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["ErrorEnvelope"]["required"] == ["error"]
    create = doc["paths"]["/things"]["post"]["responses"]
    assert "422" not in create
    assert create["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    for status_range in ("4XX", "5XX"):
        assert create[status_range]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    assert "default" not in create  # an undocumented success must not be read as an error

