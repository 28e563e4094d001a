"""Every service GET route answers HEAD as GET would, through the gateway: the same status and
headers (content-length included), no body, after the same checks (auth, access, scopes)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from tests.registry.conftest import IAM, ONB, P, User

# Headers that differ between any two requests, GET or not.
_PER_REQUEST = {"x-request-id", "x-nno-trace-id", "traceparent", "server-timing", "date", "set-cookie"}


def _headers(resp: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in resp.headers.items() if k not in _PER_REQUEST}


async def assert_head_is_get(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
    got = await client.get(path, headers=headers)
    head = await client.head(path, headers=headers)
    assert head.status_code == got.status_code, (path, head.status_code, got.text)
    assert head.content == b"", path
    assert _headers(head) == _headers(got), path
    assert head.headers.get("content-length") == str(len(got.content)), path
    return got


async def test_head_on_registry_and_iam_get_routes(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        make_user: Callable[..., Awaitable[User]], create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    ada = await make_user("ada")
    platform = await create_platform(ownerUserId=ada.id)
    got = await assert_head_is_get(client, f"{P}/{platform['id']}", service_headers)
    assert got.status_code == 200 and got.json()["id"] == platform["id"]
    assert (await assert_head_is_get(client, f"{P}/{platform['id']}", ada.headers)).status_code == 200
    session = await assert_head_is_get(client, f"{IAM}/api/nno/session", ada.headers)
    assert session.status_code == 200 and session.json()["userId"] == ada.id


async def test_head_goes_through_the_checks_get_does(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        make_user: Callable[..., Awaitable[User]], create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    platform = await create_platform()
    stranger = await make_user("stranger")
    # No credentials: the gateway's 401, without its body.
    anonymous = await client.head(f"{P}/{platform['id']}")
    assert anonymous.status_code == 401 and anonymous.content == b""
    assert int(anonymous.headers["content-length"]) > 0
    # Another user's platform is a 404 for HEAD as for GET.
    hidden = await assert_head_is_get(client, f"{P}/{platform['id']}", stranger.headers)
    assert hidden.status_code == 404
    # An operator-only list is refused to a plain user.
    assert (await assert_head_is_get(client, f"{IAM}/api/nno/operators", stranger.headers)).status_code == 403


async def test_allow_lists_head_wherever_get_is_served(
        client: httpx.AsyncClient, create_platform: Callable[..., Awaitable[dict[str, Any]]],
        service_headers: dict[str, str]) -> None:
    platform = await create_platform()
    resp = await client.put(f"{P}/{platform['id']}", json={}, headers=service_headers)
    assert resp.status_code == 405 and resp.headers["allow"] == "GET, HEAD, PATCH, DELETE"
    # Where no GET is served, neither is HEAD.
    resp = await client.head(ONB, headers=service_headers)
    assert resp.status_code == 405 and resp.headers["allow"] == "POST" and resp.content == b""


async def test_every_get_route_answers_head_as_get(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        make_user: Callable[..., Awaitable[User]], create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    """Over every GET operation the gateway describes (path parameters filled with the platform's id
    or an unknown one), as a service, as the platform's owner and as a stranger."""
    ada = await make_user("ada")
    stranger = await make_user("stranger")
    platform = await create_platform(ownerUserId=ada.id)
    doc = (await client.get("/openapi.json")).json()
    paths = [path for path, item in doc["paths"].items() if "get" in item and path.startswith("/api/")]
    assert len(paths) > 40
    statuses: set[int] = set()
    for template in paths:
        path = re.sub(r"\{[a-z_]+\}", "unknown0000", template.replace("{platform_id}", platform["id"]))
        for headers in (service_headers, ada.headers, stranger.headers):
            statuses.add((await assert_head_is_get(client, path, headers)).status_code)
    assert {200, 403, 404} <= statuses
