"""A build from the platform repository publishes the shell with the Registry's icon (the icon is
not in the repository): a repository build never takes away the icon a provisioning rebuild showed."""

from __future__ import annotations

import json

import httpx

from nno.core import Core
from tests.repos.conftest import active_platform, latest_build, make_repo, site_index, wait_build

URL = "https://cdn.example.com/brand/icon.png"


async def test_a_repository_build_keeps_the_registrys_icon(core: Core, client: httpx.AsyncClient,
                                                           service_headers: dict[str, str]) -> None:
    h = service_headers
    pid = await active_platform(client, h)
    resp = await client.patch(f"/api/v1/platforms/{pid}", json={"icon": URL}, headers=h)
    assert resp.status_code == 200, resp.text
    await make_repo(client, h, pid)
    build = await wait_build(client, h, pid, (await latest_build(client, h, pid))["id"])
    assert build["status"] == "deployed", build
    assert json.loads(site_index(core, pid))["console"]["icon"] == URL


async def test_changing_the_icon_builds_the_shell_again(core: Core, client: httpx.AsyncClient,
                                                        service_headers: dict[str, str]) -> None:
    h = service_headers
    pid = await active_platform(client, h)
    await make_repo(client, h, pid)
    first = await wait_build(client, h, pid, (await latest_build(client, h, pid))["id"])
    assert first["status"] == "deployed" and json.loads(site_index(core, pid))["console"]["icon"] is None

    resp = await client.patch(f"/api/v1/platforms/{pid}", json={"icon": URL}, headers=h)
    assert resp.status_code == 200, resp.text
    again = await latest_build(client, h, pid)
    assert again["id"] != first["id"]  # queued by the change itself
    assert (await wait_build(client, h, pid, again["id"]))["status"] == "deployed"
    assert json.loads(site_index(core, pid))["console"]["icon"] == URL

    # A change that leaves the icon as it is builds nothing.
    assert (await client.patch(f"/api/v1/platforms/{pid}", json={"name": "Renamed"}, headers=h)).status_code == 200
    assert (await latest_build(client, h, pid))["id"] == again["id"]
