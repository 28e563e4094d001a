"""The whole path with the real local cloud: the Registry creates a platform, Provisioning's job
worker provisions it through provider `local`, and the platform is then really there: its console
opens at `{pid}.nno.localhost`, its own users sign up at `auth.svc.default.{pid}.nno.localhost`, and
deprovisioning removes its files and rows and nothing of another platform's."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.provisioning.providers.local import LocalProvider

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("nno.iam.auth_app", "nno.registry.app", "nno.provisioning.app")),
    reason="needs IAM's auth_app, the Registry and Provisioning")

At = Callable[[str], httpx.AsyncClient]
PROV = "/api/v1/provisioning/provision"


async def _platform(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    slug = "p-" + uuid.uuid4().hex[:12]
    resp = await client.post("/api/v1/platforms", json={"name": name, "slug": slug}, headers=headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _job(client: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(f"{PROV}{path}", json=body, headers=headers)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["jobId"]
    for _ in range(750):
        job: dict[str, Any] = (await client.get(f"{PROV}/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("COMPLETED", "FAILED", "ROLLED_BACK", "ROLLBACK_FAILED"):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _files(root: Path, pid: str) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if pid in str(p.relative_to(root))}


async def test_a_provisioned_platform_is_really_there(
    client: httpx.AsyncClient, service_headers: dict[str, str], at: At, core: Core
) -> None:
    keep = await _platform(client, service_headers, "Keep & Co")
    gone = await _platform(client, service_headers, "Gone <Ltd>")
    for pid in (keep, gone):
        job = await _job(client, service_headers, "/platform", {"platformId": pid})
        assert job["status"] == "COMPLETED", job

    # The console shell is served from the platform's Pages site, escaped, with its live status.
    console = await at(f"{gone}.nno.localhost").get("/sign-in")
    assert console.status_code == 200 and "Gone &lt;Ltd&gt;" in console.text
    assert 'data-status="active"' in console.text

    # End users sign up on the platform's own auth Worker.
    auth = at(f"auth.svc.default.{gone}.nno.localhost")
    user = {"name": "Eve", "email": "eve@example.com", "password": "a long enough password"}
    signed = await auth.post("/api/auth/sign-up/email", json=user)
    assert signed.status_code in (200, 201), signed.text
    session = await auth.get("/api/nno/session", headers={"Authorization": f"Bearer {signed.json()['token']}"})
    assert session.status_code == 200 and session.json()["email"] == user["email"]
    assert (await at(f"auth.svc.default.{keep}.nno.localhost").post(
        "/api/auth/sign-in/email", json={"email": user["email"], "password": user["password"]})).status_code == 401

    root = core.context("edge").extras["cloud"].root
    kept_files = _files(root, keep)
    provider = LocalProvider(core.settings)
    try:
        kept_resources = sorted((r.type, r.name) for r in await provider.list_platform_resources(keep))
        assert {t for t, _ in kept_resources} >= {"d1", "worker", "pages", "dns", "secret"}
        for action in ("cancel", "period_end"):
            r = await client.post(f"/api/v1/platforms/{gone}/lifecycle", json={"action": action},
                                  headers=service_headers)
            assert r.status_code == 200, r.text
        job = await _job(client, service_headers, "/platform/deprovision", {"platformId": gone})
        assert job["status"] == "COMPLETED", job
        assert await provider.list_platform_resources(gone) == []
        assert _files(root, gone) == set()
        assert sorted((r.type, r.name) for r in await provider.list_platform_resources(keep)) == kept_resources
        assert _files(root, keep) == kept_files
    finally:
        await provider.close()
    assert (await auth.get("/api/nno/session")).status_code == 404
    assert (await at(f"{gone}.nno.localhost").get("/")).status_code == 404
    assert (await at(f"{keep}.nno.localhost").get("/sign-in")).status_code == 200
