"""End to end (issue #15): a person onboards a platform and the session ends `completed`; its
repository clones with `git clone`; activating a feature (a Provisioning job, whose
`trigger_shell_rebuild` goes through the CLI Service) makes one commit and one build that changes
the console served at the console host; a broken push builds and fails, and the old site stays."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx

from nno.core import Core
from tests.e2e.test_onboarding_provisioning import poll
from tests.features.conftest import activate
from tests.repos.conftest import CLI, wait_build

IAM = "/api/v1/iam"


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


async def console(core: Core, pid: str) -> str:
    """What the console host serves: the shell (its sign-in page for a visitor) and the shell's
    published configuration, which names the features it composes."""
    transport = httpx.ASGITransport(app=core.asgi)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://console.app.default.{pid}.nno.localhost",
                                 follow_redirects=True) as c:
        resp = await c.get("/")
        assert resp.status_code == 200, resp.text
    site = core.context("edge").extras["cloud"].pages_path(f"{pid}-prod-portal")
    return (site / "_shell" / "config.json").read_text()


async def test_onboard_clone_activate_and_a_failed_build_keeps_the_site(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], tmp_path: Path) -> None:
    signed = await client.post(f"{IAM}/api/auth/sign-up/email", json={
        "name": "Owner", "email": f"owner-{uuid.uuid4().hex[:8]}@example.com", "password": "correct-horse-9"})
    assert signed.status_code == 200, signed.text
    client.cookies.clear()
    owner = {"Authorization": f"Bearer {signed.json()['token']}"}
    started = await client.post("/api/v1/onboarding", headers=owner, json={
        "platformName": "Acme Repo", "slug": "acme-" + uuid.uuid4().hex[:6], "tier": "starter"})
    assert started.status_code == 201, started.text
    pid = started.json()["platformId"]
    session = await poll(client, f"/api/v1/onboarding/{started.json()['id']}", owner,
                         lambda b: b["status"] != "in_progress")
    assert session["status"] == "completed", session
    assert {s["name"]: s["status"] for s in session["steps"]} == dict.fromkeys(
        ("create_platform", "provision_infra", "setup_repo", "deploy_services", "verify"), "completed")

    # The owner (platform-admin) reads the repository; git clones it.
    repo = (await client.get(f"{CLI}/platforms/{pid}/repo", headers=owner)).json()
    assert repo["repoFullName"] == f"local/nno-platform-{pid}", repo
    stranger = await client.post(f"{IAM}/api/auth/sign-up/email", json={
        "name": "Eve", "email": f"eve-{uuid.uuid4().hex[:8]}@example.com", "password": "correct-horse-9"})
    client.cookies.clear()
    eve = {"Authorization": f"Bearer {stranger.json()['token']}"}
    for path in ("repo", "builds", "build-status"):
        assert (await client.get(f"{CLI}/platforms/{pid}/{path}", headers=eve)).status_code == 404
    bare = Path(core.settings.data_dir) / "repos" / f"nno-platform-{pid}.git"
    clone = tmp_path / "clone"
    git("clone", "-q", str(bare), str(clone))
    assert sorted(p.name for p in clone.iterdir() if p.name != ".git") == [
        "auth.config.toml", "env.config.toml", "features.config.toml", "pyproject.toml"]
    before_commits = int(git("rev-list", "--count", "HEAD", cwd=clone))
    before_builds = len((await client.get(f"{CLI}/platforms/{pid}/builds", headers=owner)).json()["data"])
    assert "analytics" not in await console(core, pid)

    tenants = (await client.get(f"/api/v1/platforms/{pid}/tenants", headers=service_headers)).json()["data"]
    done = await activate(client, service_headers, pid, tenants[0]["id"], "analytics")
    assert done["status"] == "COMPLETED", done
    rebuild = next(s for s in done["steps"] if s["name"] == "trigger_shell_rebuild")
    build_id = rebuild["output"]["commits"][0]["buildId"]
    build = await wait_build(client, owner, pid, build_id)
    assert build["status"] == "deployed", build
    git("pull", "-q", cwd=clone)
    assert int(git("rev-list", "--count", "HEAD", cwd=clone)) == before_commits + 1
    assert "analytics" in (clone / "features.config.toml").read_text()
    builds = (await client.get(f"{CLI}/platforms/{pid}/builds", headers=owner)).json()["data"]
    assert len(builds) == before_builds + 1
    page = await console(core, pid)
    assert "analytics" in page

    # A broken config pushed to the repository: its build fails and the console stays as it was.
    (clone / "env.config.toml").write_text("this is = not [ toml\n")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "break", cwd=clone)
    git("push", "-q", "origin", "HEAD:main", cwd=clone)
    trig = await client.post(f"{CLI}/platforms/{pid}/builds", headers=service_headers, json={})
    failed = await wait_build(client, owner, pid, trig.json()["id"])
    assert failed["status"] == "failed" and "env.config.toml" in failed["log"], failed
    assert await console(core, pid) == page
