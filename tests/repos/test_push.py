"""A plain `git push` into a platform repository builds the new head by itself: the repository's
post-receive hook leaves a marker the build runner takes. Each push is built once, however many
runners look, and pushes made while no runner ran are found when one starts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from nno.core import Core
from nno.kernel.config import Settings
from nno.repos.models import PlatformRepo
from nno.repos.runner import BuildRunner
from tests.repos.conftest import CLI, active_platform, latest_build, make_repo, site_index, wait_build


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


def bare(core: Core, pid: str) -> Path:
    return Path(core.settings.data_dir) / "repos" / f"nno-platform-{pid}.git"


def push_a_change(core: Core, pid: str, work: Path, provider: str) -> str:
    """Clone (or pull), add a sign-in method, commit, `git push`; the pushed sha."""
    if not work.exists():
        subprocess.run(["git", "clone", "-q", str(bare(core, pid)), str(work)], check=True, capture_output=True)
    else:
        git("pull", "-q", cwd=work)
    auth = work / "auth.config.toml"
    auth.write_text(auth.read_text().replace('"magic-link"', f'"magic-link", "{provider}"'))
    git("commit", "-qam", f"Sign in with {provider}", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


async def builds_of(client: httpx.AsyncClient, h: dict[str, str], pid: str, sha: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{CLI}/platforms/{pid}/builds", headers=h, params={"limit": 100})
    assert resp.status_code == 200, resp.text
    return [b for b in resp.json()["data"] if b["commitSha"] == sha]


async def build_of(client: httpx.AsyncClient, h: dict[str, str], pid: str, sha: str,
                   timeout: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await builds_of(client, h, pid, sha)):
        assert asyncio.get_running_loop().time() < deadline, f"no build of {sha}"
        await asyncio.sleep(0.05)
    return await wait_build(client, h, pid, found[0]["id"])


async def test_a_push_builds_by_itself_once(core: Core, client: httpx.AsyncClient, service_headers: dict[str, str],
                                            tmp_path: Path) -> None:
    h = service_headers
    pid = await active_platform(client, h)
    await make_repo(client, h, pid)
    await wait_build(client, h, pid, (await latest_build(client, h, pid))["id"])
    hook = bare(core, pid) / "hooks" / "post-receive"
    assert hook.is_file() and os.access(hook, os.X_OK)

    sha = push_a_change(core, pid, tmp_path / "work", "passkey")
    build = await build_of(client, h, pid, sha)
    assert build["status"] == "deployed" and build["trigger"] == "push to main", build
    assert json.loads(site_index(core, pid))["commit"] == sha
    status = (await client.get(f"{CLI}/platforms/{pid}/build-status", headers=h)).json()
    assert status["lastDeployed"]["commitSha"] == sha

    assert len(await builds_of(client, h, pid, sha)) == 1
    # The service's own commit is built once too: it leaves no push marker behind.
    act = (await client.post(f"{CLI}/platforms/{pid}/features/activate", headers=h,
                             json={"featureId": "analytics", "version": "1.0.0"})).json()
    await wait_build(client, h, pid, act["buildId"])
    second = push_a_change(core, pid, tmp_path / "work", "github")  # on top of the service's commit
    assert (await build_of(client, h, pid, second))["status"] == "deployed"
    assert [len(await builds_of(client, h, pid, s)) for s in (act["commitSha"], second)] == [1, 1]
    assert not any((Path(core.settings.data_dir) / "repos" / ".pushed").iterdir())


async def test_a_broken_push_fails_and_keeps_the_site(core: Core, client: httpx.AsyncClient,
                                                      service_headers: dict[str, str], tmp_path: Path) -> None:
    h = service_headers
    pid = await active_platform(client, h)
    await make_repo(client, h, pid)
    await wait_build(client, h, pid, (await latest_build(client, h, pid))["id"])
    good = site_index(core, pid)
    work = tmp_path / "w"
    subprocess.run(["git", "clone", "-q", str(bare(core, pid)), str(work)], check=True, capture_output=True)
    (work / "env.config.toml").write_text("this is = not [ toml\n")
    git("commit", "-qam", "break", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    failed = await build_of(client, h, pid, git("rev-parse", "HEAD", cwd=work).strip())
    assert failed["status"] == "failed" and "env.config.toml" in failed["log"], failed
    assert site_index(core, pid) == good


@pytest.fixture
async def quiet_core(make_settings: Callable[..., Settings]) -> AsyncIterator[Core]:
    """No embedded workers: the test drives the runners."""
    instance = Core(make_settings(embedded_worker=False))
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


async def test_runners_share_pushes_and_find_those_made_while_none_ran(
        quiet_core: Core, service_headers: dict[str, str], tmp_path: Path) -> None:
    h = service_headers
    transport = httpx.ASGITransport(app=quiet_core.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as client:
        pid = await active_platform_quiet(quiet_core, client, h)
        await make_repo(client, h, pid)
        ctx = quiet_core.context("cli")
        first, second = BuildRunner(ctx, runner_id="a"), BuildRunner(ctx, runner_id="b")
        for runner in (first, second):  # their start-up sweeps: nothing pushed yet
            assert await runner.scan_pushes() == 0

        sha = push_a_change(quiet_core, pid, tmp_path / "work", "passkey")
        assert [await first.scan_pushes(), await second.scan_pushes()] == [1, 0]  # one marker, one build
        [queued] = await builds_of(client, h, pid, sha)
        # `nno project deploy` pushes then asks for a build: it gets the one the push queued.
        asked = await client.post(f"{CLI}/platforms/{pid}/builds", headers=h, json={})
        assert asked.status_code == 202 and asked.json()["id"] == queued["id"], asked.text
        await first.run_until_idle()
        pushed = await client.post(f"{CLI}/platforms/{pid}/builds", headers=h, json={"commitSha": sha})
        assert pushed.json()["id"] == queued["id"] and pushed.json()["status"] == "deployed", pushed.text
        again = await client.post(f"{CLI}/platforms/{pid}/builds", headers=h, json={})
        assert again.json()["id"] != queued["id"]  # a rebuild of a built head is a new build
        await first.run_until_idle()
        stale = await client.post(f"{CLI}/platforms/{pid}/builds", headers=h, json={"commitSha": "0" * 40})
        assert stale.status_code == 409 and stale.json()["error"]["code"] == "NOT_THE_HEAD"
        for bad in ({"commitSha": "HEAD"}, {"commitSha": sha[:12]}, {"environment": "qa"}):
            refused = await client.post(f"{CLI}/platforms/{pid}/builds", headers=h, json=bad)
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "VALIDATION_ERROR"
        assert len(await builds_of(client, h, pid, sha)) == 2

        # A push while no runner runs, from a repository whose hook is missing (made before hooks):
        # the next runner's start-up sweep builds it and puts the hook back.
        hook = bare(quiet_core, pid) / "hooks" / "post-receive"
        hook.unlink()
        later = push_a_change(quiet_core, pid, tmp_path / "work", "github")
        assert not await builds_of(client, h, pid, later)
        assert await BuildRunner(ctx, runner_id="c").scan_pushes() == 1
        assert hook.is_file() and len(await builds_of(client, h, pid, later)) == 1
        assert await BuildRunner(ctx, runner_id="d").scan_pushes() == 0
        # A repository recorded before heads were (an upgraded installation) is not rebuilt.
        async with ctx.db.session() as s:
            await s.execute(update(PlatformRepo).where(PlatformRepo.platform_id == pid).values(head_sha=None))
        assert await BuildRunner(ctx, runner_id="e").scan_pushes() == 0
        async with ctx.db.session() as s:
            assert (await s.get(PlatformRepo, pid)).head_sha == later  # type: ignore[union-attr]


async def active_platform_quiet(core: Core, client: httpx.AsyncClient, h: dict[str, str]) -> str:
    """An active platform without running a provisioning job (no workers here): the lifecycle."""
    from tests.provisioning.conftest import create_platform

    pid = await create_platform(client, h)
    for action in ("bootstrap", "complete"):
        resp = await client.post(f"/api/v1/platforms/{pid}/lifecycle", json={"action": action}, headers=h)
        assert resp.status_code == 200, resp.text
    return pid
