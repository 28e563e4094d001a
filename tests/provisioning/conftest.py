from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from nno.provisioning.provider_factory import set_provider
from tests.provisioning.fakes import FakeCloud

PROV = "/api/v1/provisioning"
TERMINAL = ("COMPLETED", "ROLLED_BACK", "ROLLBACK_FAILED")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # Fast retries so backoff shows in the rows without slowing the suite.
    return make_settings(job_backoff_base_s=0.01, worker_poll_interval_s=0.02)


@pytest.fixture
def fake(core: Core) -> FakeCloud:
    cloud = FakeCloud()
    set_provider(core.context("provisioning"), cloud)  # type: ignore[arg-type]
    return cloud


@pytest.fixture
async def manual_core(make_settings: Callable[..., Settings]) -> AsyncIterator[Core]:
    """A core whose provisioning worker does not run by itself: tests drive engines by hand."""
    instance = Core(make_settings(embedded_worker=False, job_backoff_base_s=0.0, job_lease_s=0.3))
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture
async def manual_client(manual_core: Core) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=manual_core.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as c:
        yield c


async def create_platform(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    slug = "p-" + uuid.uuid4().hex[:12]
    resp = await client.post("/api/v1/platforms", json={"name": "Acme " + slug, "slug": slug}, headers=headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "pending"
    return str(resp.json()["id"])


async def wait_job(client: httpx.AsyncClient, headers: dict[str, str], job_id: str,
                   timeout: float = 15.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await client.get(f"{PROV}/provision/jobs/{job_id}", headers=headers)
        assert resp.status_code == 200, resp.text
        job: dict[str, Any] = resp.json()
        if job["status"] in TERMINAL:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']}: {job}")
        await asyncio.sleep(0.02)


async def run_job(client: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any],
                  timeout: float = 30.0) -> dict[str, Any]:
    """POST a job to Provisioning (`path` under `/api/v1/provisioning`), expect 202, wait for its end."""
    resp = await client.post(f"{PROV}{path}", json=body, headers=headers)
    assert resp.status_code == 202, resp.text
    return await wait_job(client, headers, resp.json()["jobId"], timeout=timeout)


async def list_data(client: httpx.AsyncClient, headers: dict[str, str], path: str,
                    **params: str) -> list[dict[str, Any]]:
    """The `data` of a paged list (first 100 rows)."""
    resp = await client.get(path, params={"limit": 100, **params}, headers=headers)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


async def platform_status(client: httpx.AsyncClient, headers: dict[str, str], platform_id: str) -> str:
    resp = await client.get(f"/api/v1/platforms/{platform_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["status"])
