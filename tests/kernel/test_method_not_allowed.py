"""A 405 lists, in its `Allow` header, every method the path answers, not just those of the first
route (decorator, included router) whose path matched, HEAD wherever GET is served."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from nno.kernel.errors import NNOError
from nno.kernel.service import create_service_app, wrap_service


def _assert_405(resp: httpx.Response, allow: str) -> None:
    assert resp.status_code == 405, resp.text
    assert resp.headers["allow"] == allow
    err = resp.json()["error"]
    assert err["code"] == "METHOD_NOT_ALLOWED" and err["requestId"]


def _client() -> httpx.AsyncClient:
    app = create_service_app("t", title="t")
    readers = APIRouter(prefix="/things")
    writers = APIRouter(prefix="/things")

    @readers.get("/{thing_id}")
    async def get_thing(thing_id: str) -> dict[str, Any]:
        return {"id": thing_id}

    @writers.patch("/{thing_id}")
    async def patch_thing(thing_id: str) -> dict[str, Any]:
        return {"id": thing_id}

    @writers.delete("/{thing_id}")
    async def delete_thing(thing_id: str) -> dict[str, Any]:
        return {"id": thing_id}

    @app.api_route("/refused/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
    async def refused(rest: str) -> None:
        raise NNOError(404, "NOT_FOUND", "Route not found")

    app.include_router(readers)
    app.include_router(writers)
    transport = httpx.ASGITransport(app=wrap_service(app))
    return httpx.AsyncClient(transport=transport, base_url="http://svc")


@pytest.mark.parametrize("method", ["PUT", "POST", "OPTIONS"])
async def test_routes_of_several_routers_are_all_listed(method: str) -> None:
    async with _client() as c:
        _assert_405(await c.request(method, "/things/a1"), "GET, HEAD, PATCH, DELETE")
        assert (await c.patch("/things/a1")).json() == {"id": "a1"}


async def test_a_path_only_refusing_routes_match_is_not_found() -> None:
    async with _client() as c:
        resp = await c.put("/refused/x")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"
        assert "allow" not in resp.headers


# --- through the gateway -------------------------------------------------------------------------

P = "/api/v1/platforms"


async def test_a_platform_405_lists_every_method_and_changes_nothing(
        client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    created = await client.post(P, json={"name": "Acme", "slug": "acme-405"}, headers=service_headers)
    assert created.status_code == 201, created.text
    platform = created.json()
    for method in ("PUT", "POST", "OPTIONS"):
        resp = await client.request(method, f"{P}/{platform['id']}", json={"name": "Other"}, headers=service_headers)
        _assert_405(resp, "GET, HEAD, PATCH, DELETE")
    assert (await client.get(f"{P}/{platform['id']}", headers=service_headers)).json() == platform
    _assert_405(await client.put(P, json={}, headers=service_headers), "GET, HEAD, POST")
    secrets = f"{P}/{platform['id']}/resources/r1/secrets"
    _assert_405(await client.delete(secrets, headers=service_headers), "GET, HEAD, PUT")


async def test_routes_that_refuse_a_method_themselves_are_not_listed(
        client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    # The Registry answers GET/PUT/PATCH/DELETE on /onboarding with its own 405 (so they are not read
    # as platform routes): only POST is served there.
    _assert_405(await client.options("/api/v1/onboarding", headers=service_headers), "POST")
    _assert_405(await client.options("/api/v1/onboarding/abc", headers=service_headers), "GET, HEAD, PATCH")


async def test_an_iam_405_lists_every_method(client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    _assert_405(await client.put("/api/v1/iam/api/nno/session", headers=service_headers), "GET, HEAD, POST")
    _assert_405(await client.put("/api/v1/iam/api/nno/apikey", headers=service_headers), "GET, HEAD, POST")


async def test_a_service_answers_head_as_get_without_the_body() -> None:
    async with _client() as c:
        got, head = await c.get("/things/a1"), await c.head("/things/a1")
        assert head.status_code == 200 and head.content == b""
        assert head.headers == got.headers and head.headers["content-length"] == str(len(got.content))
        # A path with no GET refuses HEAD as it refuses GET.
        refused = await c.head("/refused/x")
        assert refused.status_code == 404 and refused.content == b""


async def test_a_standalone_service_refuses_head_without_the_internal_token_and_without_a_body() -> None:
    transport = httpx.ASGITransport(app=wrap_service(create_service_app("t", title="t"), standalone_secret=b"s" * 32))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        resp = await c.head("/anything")
        assert resp.status_code == 401 and resp.content == b"" and int(resp.headers["content-length"]) > 0
