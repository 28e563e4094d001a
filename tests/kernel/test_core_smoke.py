from __future__ import annotations

import httpx
import pytest

from nno.core import SERVICE_MODULES
from nno.kernel.config import Settings
from tests.conftest import running_core


async def test_health_is_plain_ok(client: httpx.AsyncClient) -> None:
    resp = await client.get("/health")
    assert resp.status_code == 200
    assert resp.text == "ok"


async def test_service_not_built_yet_answers_404_envelope(settings: Settings, service_headers: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SERVICE_MODULES, "billing", "nno.not_built_yet.app")
    async with running_core(settings) as core, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=core.asgi), base_url="http://127.0.0.1:8787") as client:
        resp = await client.get("/api/v1/billing/plans", headers=service_headers)
    assert resp.status_code == 404
    body = resp.json()
    assert body["error"]["code"] == "NOT_FOUND"
    assert body["error"]["requestId"]
