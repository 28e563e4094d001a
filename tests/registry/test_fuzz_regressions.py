"""Findings of schemathesis runs against a real `nno serve` (the merged `/openapi.json`, both backends),
kept as regression tests through the gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from tests.registry.conftest import P, unique

# The idempotent registrations answer 201 for a new record and 200 for one already there; the
# merged OpenAPI document used to list only 201, so a client generated from it (or schemathesis'
# status-code conformance check) treated the repeat as an undocumented answer.
IDEMPOTENT_POSTS = ["resources", "dns-records", "features"]


def _body(kind: str, pid: str) -> dict[str, Any]:
    if kind == "resources":
        return {"type": "kv", "name": f"{pid}-{unique('kv')}"}
    if kind == "dns-records":
        return {"hostname": f"{unique('h')}.{pid}.nno.localhost", "type": "app"}
    return {"featureId": unique("feat"), "version": "1"}


@pytest.mark.parametrize("kind", IDEMPOTENT_POSTS)
async def test_idempotent_registrations_document_the_200_they_answer(
        client: httpx.AsyncClient, service_headers: dict[str, str],
        create_platform: Callable[..., Awaitable[dict[str, Any]]], kind: str) -> None:
    pid = (await create_platform())["id"]
    body = _body(kind, pid)
    first = await client.post(f"{P}/{pid}/{kind}", json=body, headers=service_headers)
    again = await client.post(f"{P}/{pid}/{kind}", json=body, headers=service_headers)
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]

    doc = (await client.get("/openapi.json")).json()
    responses = doc["paths"][f"{P}/{{platform_id}}/{kind}"]["post"]["responses"]
    assert {"200", "201"} <= set(responses), sorted(responses)
    # Both successes describe the same record shape.
    schema_of = {code: responses[code]["content"]["application/json"]["schema"] for code in ("200", "201")}
    assert schema_of["200"] == schema_of["201"], schema_of
