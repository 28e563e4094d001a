from __future__ import annotations

import httpx


async def test_health_is_plain_ok(client: httpx.AsyncClient) -> None:
    resp = await client.get("/health")
    assert resp.status_code == 200
    assert resp.text == "ok"


async def test_service_not_built_yet_answers_404_envelope(client: httpx.AsyncClient,
                                                           service_headers: dict[str, str]) -> None:
    resp = await client.get("/api/v1/billing/plans", headers=service_headers)
    assert resp.status_code == 404
    body = resp.json()
    assert body["error"]["code"] == "NOT_FOUND"
    assert body["error"]["requestId"]
