"""Who reaches the CLI Service: services and operators everything; a platform's admins read their
own platform; another platform's admin, a plain user or an anonymous caller never reach it."""

from __future__ import annotations

import httpx
import pytest

from nno.core import Core
from nno.kernel.identity import Identity
from tests.repos.conftest import OPERATOR, SERVICE, active_platform, admin_of, make_repo

READS = ("/platforms/{pid}/repo", "/platforms/{pid}/build-status", "/platforms/{pid}/builds")
WRITES = (("/platforms/{pid}/features/activate", {"featureId": "analytics", "version": "1.0.0"}),
          ("/platforms/{pid}/features/deactivate", {"featureId": "analytics"}),
          ("/platforms/{pid}/features/apply", {"activate": [{"featureId": "crm", "version": "1.0.0"}],
                                               "deactivate": ["analytics"]}),
          ("/platforms/{pid}/builds", {}))


@pytest.fixture
async def pid(core: Core, client: httpx.AsyncClient, service_headers: dict[str, str]) -> str:
    platform = await active_platform(client, service_headers)
    await make_repo(client, service_headers, platform)
    return platform


async def test_admin_of_the_platform_reads_but_does_not_write(direct: httpx.AsyncClient, pid: str) -> None:
    for ident in (admin_of(pid), admin_of(pid, "apikey"), admin_of(pid, "apikey", ("resources:read",))):
        for path in READS:
            resp = await direct.get(path.format(pid=pid), headers=ident.to_headers())
            assert resp.status_code == 200, (ident, path, resp.text)
        for path, body in WRITES:
            resp = await direct.post(path.format(pid=pid), headers=ident.to_headers(), json=body)
            assert resp.status_code == 403, (ident, path, resp.text)
    scoped = admin_of(pid, "apikey", ("tenants:read",))
    resp = await direct.get(f"/platforms/{pid}/repo", headers=scoped.to_headers())
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "INSUFFICIENT_SCOPE"


async def test_another_platform_never_reaches_it(direct: httpx.AsyncClient, pid: str) -> None:
    other = "zzzzzzzzz1"
    outsiders = [admin_of(other), admin_of(other, "apikey"), Identity(auth_type="session", user_id="u9", role="user",
                                                                      platform_id=pid)]
    for ident in outsiders:
        for path in READS:
            resp = await direct.get(path.format(pid=pid), headers=ident.to_headers())
            assert resp.status_code == 404, (ident, path, resp.text)
        for path, body in WRITES:
            resp = await direct.post(path.format(pid=pid), headers=ident.to_headers(), json=body)
            assert resp.status_code == 404, (ident, path, resp.text)
        created = await direct.post("/platforms", headers=ident.to_headers(),
                                    json={"platformId": pid, "displayName": "x", "planTier": "starter"})
        assert created.status_code == 403
    anon = await direct.get(f"/platforms/{pid}/repo")
    assert anon.status_code == 401
    builds = (await direct.get(f"/platforms/{pid}/builds", headers=SERVICE.to_headers())).json()["data"]
    assert len(builds) == 1  # nobody's refused write queued a build


async def test_operators_and_services_do_everything(direct: httpx.AsyncClient, pid: str) -> None:
    for ident in (SERVICE, OPERATOR):
        assert (await direct.get(f"/platforms/{pid}/repo", headers=ident.to_headers())).status_code == 200
        resp = await direct.post(f"/platforms/{pid}/features/activate", headers=ident.to_headers(),
                                 json={"featureId": "analytics", "version": "1.0.0"})
        assert resp.status_code == 200, resp.text


async def test_the_gateway_refuses_anonymous_callers(client: httpx.AsyncClient, pid: str) -> None:
    resp = await client.get(f"/api/v1/cli/platforms/{pid}/repo")
    assert resp.status_code == 401
