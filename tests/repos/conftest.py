"""Helpers for CLI Service tests: active platforms made by a real PROVISION_PLATFORM job in the
local cloud, the service reached through the gateway (`/api/v1/cli`) or directly with the identity
headers the gateway would forward."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.config import Settings
from nno.kernel.identity import ROLE_OPERATOR, ROLE_PLATFORM_ADMIN, SERVICE_IDENTITY, Identity
from tests.provisioning.conftest import create_platform, run_job

CLI = "/api/v1/cli"
TERMINAL = ("deployed", "failed")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(job_backoff_base_s=0.01, worker_poll_interval_s=0.02)


async def active_platform(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    pid = await create_platform(client, headers)
    job = await run_job(client, headers, "/provision/platform", {"platformId": pid})
    assert job["status"] == "COMPLETED", job
    return pid


async def make_repo(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> dict[str, Any]:
    resp = await client.post(f"{CLI}/platforms", headers=headers,
                             json={"platformId": pid, "displayName": "Acme Console", "planTier": "starter"})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def wait_build(client: httpx.AsyncClient, headers: dict[str, str], pid: str, build_id: str,
                     timeout: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await client.get(f"{CLI}/platforms/{pid}/builds/{build_id}", headers=headers)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        if body["status"] in TERMINAL:
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.03)


async def latest_build(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> dict[str, Any]:
    resp = await client.get(f"{CLI}/platforms/{pid}/builds", headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json()["data"][0])


def site_index(core: Core, pid: str, env: str = "prod") -> str:
    return (Path(core.settings.data_dir) / "cloud" / "pages" / f"{pid}-{env}-portal" / "site.json").read_text()


def as_headers(identity: Identity) -> dict[str, str]:
    return identity.to_headers()


SERVICE = SERVICE_IDENTITY
OPERATOR = Identity(auth_type="session", user_id="op1", role=ROLE_OPERATOR)


def admin_of(pid: str, auth_type: str = "session", permissions: tuple[str, ...] = ()) -> Identity:
    return Identity(auth_type=auth_type, user_id="u-" + pid, role=ROLE_PLATFORM_ADMIN,  # type: ignore[arg-type]
                    platform_id=pid, permissions=permissions)


@pytest.fixture
async def direct(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    """The CLI Service itself, as the gateway reaches it (identity in X-Nno-* headers)."""
    transport = httpx.ASGITransport(app=core.apps["cli"])
    async with httpx.AsyncClient(transport=transport, base_url="http://cli.internal") as c:
        yield c


async def registry_build_status(client: httpx.AsyncClient, headers: dict[str, str], pid: str, want: str,
                                timeout: float = 10.0) -> dict[str, Any]:
    """The Registry's build state once it says `want` (it is written just after the build row)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await client.get(f"/api/v1/platforms/{pid}/build-state", headers=headers)
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        if data and data[0]["lastBuildStatus"] == want:
            return dict(data[0])
        assert asyncio.get_running_loop().time() < deadline, data
        await asyncio.sleep(0.03)
