"""Feature-package fixtures: a provisioned platform on the local cloud, clients addressed by Host,
and helpers to activate features and sign users in on a feature's host."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from nno.core import Core

PROV = "/api/v1/provisioning/provision"
At = Callable[[str], httpx.AsyncClient]
# FAILED is not final: the job then rolls back (ROLLED_BACK / ROLLBACK_FAILED).
TERMINAL = ("COMPLETED", "ROLLED_BACK", "ROLLBACK_FAILED")


@pytest.fixture
async def at(core: Core) -> AsyncIterator[At]:
    """`at(host)`: an HTTP client on the core whose requests carry that Host (cookies kept per client)."""
    clients: list[httpx.AsyncClient] = []

    def make(host: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi), base_url=f"http://{host}:8787")
        clients.append(c)
        return c

    try:
        yield make
    finally:
        for c in clients:
            await c.aclose()


async def wait_job(client: httpx.AsyncClient, headers: dict[str, str], job_id: str,
                   timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = (await client.get(f"{PROV}/jobs/{job_id}", headers=headers)).json()
        if job["status"] in TERMINAL:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not finish: {job}")
        await asyncio.sleep(0.02)


async def job(client: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(f"{PROV}{path}", json=body, headers=headers)
    assert resp.status_code == 202, resp.text
    return await wait_job(client, headers, resp.json()["jobId"])


async def provisioned_platform(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, str]:
    """(platformId, its default tenant id) of a platform provisioned on the local cloud."""
    slug = "p-" + uuid.uuid4().hex[:12]
    resp = await client.post("/api/v1/platforms", json={"name": "Acme " + slug, "slug": slug}, headers=headers)
    assert resp.status_code == 201, resp.text
    pid = str(resp.json()["id"])
    done = await job(client, headers, "/platform", {"platformId": pid})
    assert done["status"] == "COMPLETED", done
    tenants = (await client.get(f"/api/v1/platforms/{pid}/tenants", headers=headers)).json()["data"]
    return pid, str(tenants[0]["id"]) if tenants else "default"


async def activate(client: httpx.AsyncClient, headers: dict[str, str], pid: str, tenant: str, feature: str,
                   **extra: Any) -> dict[str, Any]:
    return await job(client, headers, "/feature/activate", {
        "platformId": pid, "entityId": tenant, "featureId": feature, "featureVersion": "latest",
        "environment": "prod", **extra})


async def deactivate(client: httpx.AsyncClient, headers: dict[str, str], pid: str, tenant: str, feature: str,
                     **extra: Any) -> dict[str, Any]:
    return await job(client, headers, "/feature/deactivate", {
        "platformId": pid, "entityId": tenant, "featureId": feature, "environment": "prod", **extra})


async def sign_up(at: At, pid: str, email: str, password: str = "a long enough password") -> str:
    """A user of the platform's own auth Worker; returns their session token."""
    auth = at(f"auth.svc.default.{pid}.nno.localhost")
    resp = await auth.post("/api/auth/sign-up/email", json={"name": email.split("@")[0], "email": email,
                                                             "password": password})
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["token"])


async def prove_address(core: Any, pid: str, email: str) -> None:
    """Test setup: mark the account's address proven, as its first magic-link sign-in would (that
    flow, and what it revokes, is tested in tests/iam and tests/e2e), keeping its password."""
    from tests.d1sql import d1_rowcount

    cloud = core.context("edge").extras["cloud"]
    assert await d1_rowcount(cloud, f"{pid}-default-auth-db",
                             "UPDATE users SET email_verified = true WHERE email = :e", {"e": email}) == 1


async def browser(at: At, host: str, email: str, password: str = "a long enough password") -> httpx.AsyncClient:
    """A client signed in on a feature's host through its sign-in page (cookie on that host)."""
    c = at(host)
    resp = await c.post("/_nno/sign-in", data={"email": email, "password": password, "next": "/"})
    assert resp.status_code == 303 and resp.headers["location"] == "/", resp.text
    assert c.cookies.get("nno_session")
    return c


async def use_org(c: httpx.AsyncClient, name: str) -> None:
    resp = await c.post("/_nno/organization", data={"name": name, "next": "/"})
    assert resp.status_code == 303, resp.text
