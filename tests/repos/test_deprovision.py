"""Deprovisioning a platform removes its repository and its build history (provider `local`
deletes the repository; `github` archives it, tests/repos/test_github_provider.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import func, select

from nno.core import Core
from nno.repos.models import Build, PlatformRepo
from tests.provisioning.conftest import run_job
from tests.repos.conftest import CLI, SERVICE, active_platform, admin_of, latest_build, make_repo, wait_build


async def rows(core: Core, pid: str) -> tuple[int, int]:
    async with core.context("cli").db.session() as s:
        builds = await s.scalar(select(func.count()).select_from(Build).where(Build.platform_id == pid))
        repos = await s.scalar(select(func.count()).select_from(PlatformRepo).where(PlatformRepo.platform_id == pid))
    return int(builds or 0), int(repos or 0)


async def test_deprovisioning_removes_the_repository_and_its_builds(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    h = service_headers
    pid = await active_platform(client, h)
    other = await active_platform(client, h)
    for platform in (pid, other):
        await make_repo(client, h, platform)
        await wait_build(client, h, platform, (await latest_build(client, h, platform))["id"])
    act = await client.post(f"{CLI}/platforms/{pid}/features/activate", headers=h,
                            json={"featureId": "analytics", "version": "1.0.0"})
    await wait_build(client, h, pid, act.json()["buildId"])
    repos = Path(core.settings.data_dir) / "repos"
    assert (repos / f"nno-platform-{pid}.git").is_dir() and await rows(core, pid) == (2, 1)

    job = await run_job(client, h, "/provision/platform/deprovision", {"platformId": pid}, timeout=60.0)
    assert job["status"] == "COMPLETED", job
    step = next(s for s in job["steps"] if s["name"] == "delete_repository")
    assert step["output"] == {"platformId": pid, "repoFullName": f"local/nno-platform-{pid}", "status": "deleted",
                              "buildsDeleted": 2}
    assert not (repos / f"nno-platform-{pid}.git").exists()
    assert not [p for p in repos.iterdir() if pid in p.name]  # nothing half-deleted left behind
    assert await rows(core, pid) == (0, 0)
    for path in ("repo", "builds", "build-status"):
        resp = await client.get(f"{CLI}/platforms/{pid}/{path}", headers=h)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "REPO_NOT_FOUND"
    # The other platform keeps its repository and history.
    assert (repos / f"nno-platform-{other}.git").is_dir() and await rows(core, other) == (1, 1)

    # Deleting again finds nothing; a second deprovisioning completes without it.
    gone = await client.delete(f"{CLI}/platforms/{pid}", headers=h)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "REPO_NOT_FOUND"
    again = await run_job(client, h, "/provision/platform/deprovision", {"platformId": pid}, timeout=60.0)
    assert again["status"] == "COMPLETED", again
    step = next(s for s in again["steps"] if s["name"] == "delete_repository")
    assert step["output"] == {"note": "the platform has no repository"}


async def test_only_services_and_operators_delete(core: Core, client: httpx.AsyncClient,
                                                  direct: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    pid = await active_platform(client, service_headers)
    await make_repo(client, service_headers, pid)
    own = await direct.delete(f"/platforms/{pid}", headers=admin_of(pid).to_headers())
    assert own.status_code == 403 and own.json()["error"]["code"] == "FORBIDDEN"
    other = await direct.delete(f"/platforms/{pid}", headers=admin_of("zzzzzzzzz1").to_headers())
    assert other.status_code == 404 and other.json()["error"]["code"] == "REPO_NOT_FOUND"
    assert (await direct.delete(f"/platforms/{pid}")).status_code == 401
    bad = await direct.delete("/platforms/NOT-AN-ID", headers=SERVICE.to_headers())
    assert bad.status_code == 404 and bad.json()["error"]["code"] == "REPO_NOT_FOUND"
    assert await rows(core, pid) == (1, 1)
    assert (Path(core.settings.data_dir) / "repos" / f"nno-platform-{pid}.git").is_dir()
