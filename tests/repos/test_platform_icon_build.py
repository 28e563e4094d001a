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
