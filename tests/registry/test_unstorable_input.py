"""Values PostgreSQL refuses (NUL in text or JSON, integers beyond BIGINT, odd cursors) are a 400
envelope from the Registry and change nothing; they used to be 500s on the scaled backend (found by
schemathesis against a real `nno serve`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from tests.registry.conftest import P, assert_error, unique


def _cursor(values: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


async def test_nul_in_bodies_is_refused_and_changes_nothing(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    platform = await create_platform()
    pid = platform["id"]
    slug = unique("nul")

    err = assert_error(await client.post(P, json={"name": "a\x00b", "slug": slug}, headers=service_headers),
                       400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "name"
    assert_error(await client.get(f"{P}/by-slug/{slug}", headers=service_headers), 404)

    err = assert_error(await client.patch(f"{P}/{pid}", json={"name": "x\x00"}, headers=service_headers),
                       400, "VALIDATION_ERROR")
    after = await client.get(f"{P}/{pid}", headers=service_headers)
    assert after.json()["name"] == platform["name"]

    # Free-form JSON is checked all the way down, keys included.
    for metadata in ({"k": "v\x00"}, {"k\x00": 1}, {"k": [{"deep": "\x00"}]}):
        body = {"type": "kv", "name": unique("kv"), "metadata": metadata}
        err = assert_error(await client.post(f"{P}/{pid}/resources", json=body, headers=service_headers),
                           400, "VALIDATION_ERROR")
        assert err["details"][0]["field"] == "metadata"
    listed = await client.get(f"{P}/{pid}/resources", headers=service_headers)
    assert listed.json()["pagination"]["total"] == 0

    before = (await client.get(f"{P}/{pid}/tenants", headers=service_headers)).json()["pagination"]["total"]
    err = assert_error(await client.post(f"{P}/{pid}/tenants", json={"name": "t\x00", "slug": unique("t")},
                                         headers=service_headers), 400, "VALIDATION_ERROR")
    tenants = await client.get(f"{P}/{pid}/tenants", headers=service_headers)
    assert tenants.json()["pagination"]["total"] == before


@pytest.mark.parametrize("query", ["entityId=a%00", "stackId=%00"])
async def test_nul_in_query_parameters_is_a_400(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                create_platform: Callable[..., Awaitable[dict[str, Any]]],
                                                query: str) -> None:
    pid = (await create_platform())["id"]
    assert_error(await client.get(f"{P}/{pid}/resources?{query}", headers=service_headers), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("values", [{"c": 10**25, "i": "x"}, {"c": 1, "i": "x\x00"}, {"c": "1", "i": "x"},
                                    {"c": 1, "i": ["x"]}])
async def test_cursors_the_database_cannot_compare_are_refused(
        client: httpx.AsyncClient, service_headers: dict[str, str], values: dict[str, Any]) -> None:
    assert_error(await client.get(P, params={"cursor": _cursor(values)}, headers=service_headers),
                 400, "INVALID_CURSOR")


async def test_references_longer_than_their_column_are_a_400(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    """The schemas allowed 200 characters where the columns keep 64 or 100: SQLite stored them,
    PostgreSQL refused with a 500 (`value too long for type character varying(64)`)."""
    pid = (await create_platform())["id"]
    cases = [
        ("POST", f"{P}/{pid}/tenants", {"name": "t", "slug": unique("t"), "orgId": "o" * 65}, "orgId"),
        ("PATCH", f"{P}/{pid}", {"cfAccountId": "c" * 65}, "cfAccountId"),
        ("PATCH", f"{P}/{pid}", {"stripeCustomerId": "s" * 101}, "stripeCustomerId"),
        ("POST", f"{P}/{pid}/resources", {"type": "kv", "name": unique("kv"), "provisionJobId": "j" * 65},
         "provisionJobId"),
        ("PUT", f"{P}/{pid}/build-state", {"defaultBranch": "b" * 101}, "defaultBranch"),
    ]
    for method, url, body, field in cases:
        err = assert_error(await client.request(method, url, json=body, headers=service_headers),
                           400, "VALIDATION_ERROR")
        assert err["details"][0]["field"] == field, err
    # At the column's length they are stored, on both backends.
    ok = await client.post(f"{P}/{pid}/tenants", json={"name": "t", "slug": unique("t"), "orgId": "o" * 64},
                           headers=service_headers)
    assert ok.status_code == 201, ok.text


async def test_nan_and_infinity_in_free_form_json_are_refused_and_store_nothing(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        create_platform: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    """`{"config": {"x": NaN}}` was stored (as null on SQLite) and then answered with a 500: the
    JSON encoder refuses NaN. PostgreSQL's json type refuses it outright."""
    pid = (await create_platform())["id"]
    before = (await client.get(f"{P}/{pid}/features", headers=service_headers)).json()["pagination"]["total"]
    for raw in (b'{"featureId": "nanfeat", "version": "1", "config": {"x": NaN}}',
                b'{"featureId": "inffeat", "version": "1", "config": {"x": [1, -Infinity]}}'):
        resp = await client.post(f"{P}/{pid}/features", content=raw,
                                 headers={**service_headers, "content-type": "application/json"})
        err = assert_error(resp, 400, "VALIDATION_ERROR")
        assert err["details"][0]["field"] == "config"
    after = await client.get(f"{P}/{pid}/features", headers=service_headers)
    assert after.json()["pagination"]["total"] == before
    raw = b'{"type": "kv", "name": "' + pid.encode() + b'-nan", "metadata": {"a": NaN}}'
    resp = await client.post(f"{P}/{pid}/resources", content=raw,
                             headers={**service_headers, "content-type": "application/json"})
    assert_error(resp, 400, "VALIDATION_ERROR")
