"""The CLI Service's routes through the gateway: repositories, feature commits, builds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from nno.core import Core
from tests.repos.conftest import (
    CLI,
    active_platform,
    latest_build,
    make_repo,
    registry_build_status,
    site_index,
    wait_build,
)


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


async def test_create_is_idempotent_and_repo_info(core: Core, client: httpx.AsyncClient,
                                                  service_headers: dict[str, str]) -> None:
    pid = await active_platform(client, service_headers)
    created = await make_repo(client, service_headers, pid)
    assert created == {"platformId": pid, "repoFullName": f"local/nno-platform-{pid}", "status": "created"}
    again = await client.post(f"{CLI}/platforms", headers=service_headers,
                              json={"platformId": pid, "displayName": "Other", "planTier": "growth"})
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "exists"
    info = (await client.get(f"{CLI}/platforms/{pid}/repo", headers=service_headers)).json()
    assert info["repoFullName"] == f"local/nno-platform-{pid}"
    assert info["defaultBranch"] == "main"
    assert info["cfPagesProjectName"] == f"{pid}-prod-portal"
    assert isinstance(info["createdAt"], int)
    bare = Path(core.settings.data_dir) / "repos" / f"nno-platform-{pid}.git"
    assert info["cloneUrl"] == bare.resolve().as_uri()
    # The first build publishes the console from the repository.
    first = await wait_build(client, service_headers, pid, (await latest_build(client, service_headers, pid))["id"])
    assert first["status"] == "deployed", first
    assert json.loads(site_index(core, pid))["name"] == "Acme Console"


async def test_unknown_platform_and_bad_bodies_change_nothing(core: Core, client: httpx.AsyncClient,
                                                              service_headers: dict[str, str]) -> None:
    resp = await client.post(f"{CLI}/platforms", headers=service_headers,
                             json={"platformId": "zzzzzzzzzz", "displayName": "X", "planTier": "starter"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "PLATFORM_NOT_FOUND"
    for body in ({"platformId": "", "displayName": "X", "planTier": "s"},
                 {"platformId": "abcdefghij", "displayName": "", "planTier": "s"},
                 {"platformId": "abcdefghij", "displayName": "X"},
                 {"platformId": "../etc/pw", "displayName": "X", "planTier": "s"}):
        bad = await client.post(f"{CLI}/platforms", headers=service_headers, json=body)
        assert bad.status_code == 400, bad.text
        assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not (Path(core.settings.data_dir) / "repos").exists() or not any(
        (Path(core.settings.data_dir) / "repos").iterdir())
    missing = await client.get(f"{CLI}/platforms/abcdefghij/repo", headers=service_headers)
    assert missing.status_code == 404


async def test_activate_is_one_commit_and_one_build_that_changes_the_console(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], tmp_path: Path) -> None:
    pid = await active_platform(client, service_headers)
    await make_repo(client, service_headers, pid)
    await wait_build(client, service_headers, pid, (await latest_build(client, service_headers, pid))["id"])
    bare = Path(core.settings.data_dir) / "repos" / f"nno-platform-{pid}.git"
    before = git("rev-list", "--count", "main", cwd=bare).strip()

    resp = await client.post(f"{CLI}/platforms/{pid}/features/activate", headers=service_headers,
                             json={"featureId": "analytics", "version": "1.2.0", "config": {"retentionDays": 30}})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "activated" and body["featureId"] == "analytics" and body["version"] == "1.2.0"
    assert int(git("rev-list", "--count", "main", cwd=bare)) == int(before) + 1
    changed = git("show", "--name-only", "--format=", "main", cwd=bare).split()
    assert sorted(changed) == ["features.config.toml", "pyproject.toml"]  # both in the one commit
    assert git("rev-parse", "main", cwd=bare).strip() == body["commitSha"]

    build = await wait_build(client, service_headers, pid, body["buildId"])
    assert build["status"] == "deployed", build
    assert build["commitSha"] == body["commitSha"]
    assert "analytics@1.2.0" in build["log"]
    site = json.loads(site_index(core, pid))
    assert site["features"] == [{"id": "analytics", "version": "1.2.0"}]
    assert site["commit"] == body["commitSha"]

    # The clone has the generated header, and the Registry's build state follows the build.
    git("clone", "-q", str(bare), str(tmp_path / "clone"))
    text = (tmp_path / "clone" / "features.config.toml").read_text()
    assert text.startswith("# Generated file, do not edit")
    state = await registry_build_status(client, service_headers, pid, "success")
    assert state["lastCommitSha"] == body["commitSha"] and state["lastBuildId"] == body["buildId"]
    status = (await client.get(f"{CLI}/platforms/{pid}/build-status", headers=service_headers)).json()
    assert status["status"] == "deployed" and status["lastDeployed"]["id"] == body["buildId"]

    # Deactivating commits again; deactivating what is not there commits nothing.
    off = (await client.post(f"{CLI}/platforms/{pid}/features/deactivate", headers=service_headers,
                             json={"featureId": "analytics"})).json()
    assert off["status"] == "deactivated" and off["buildId"]
    await wait_build(client, service_headers, pid, off["buildId"])
    assert json.loads(site_index(core, pid))["features"] == []
    noop = (await client.post(f"{CLI}/platforms/{pid}/features/deactivate", headers=service_headers,
                              json={"featureId": "analytics"})).json()
    assert noop["status"] == "unchanged" and noop["buildId"] is None


async def test_bad_feature_input_is_refused(core: Core, client: httpx.AsyncClient,
                                            service_headers: dict[str, str]) -> None:
    pid = await active_platform(client, service_headers)
    await make_repo(client, service_headers, pid)
    for body in ({"featureId": "Bad_Id", "version": "1.0.0"}, {"featureId": "x", "version": ""},
                 {"featureId": "x", "version": "1.0.0", "config": [1]}, {"featureId": "x"}):
        resp = await client.post(f"{CLI}/platforms/{pid}/features/activate", headers=service_headers, json=body)
        assert resp.status_code == 400, (body, resp.text)
    builds = (await client.get(f"{CLI}/platforms/{pid}/builds", headers=service_headers)).json()["data"]
    assert len(builds) == 1  # the repository's first build only


async def test_a_failed_build_keeps_the_last_good_site(core: Core, client: httpx.AsyncClient,
                                                       service_headers: dict[str, str], tmp_path: Path) -> None:
    pid = await active_platform(client, service_headers)
    await make_repo(client, service_headers, pid)
    act = (await client.post(f"{CLI}/platforms/{pid}/features/activate", headers=service_headers,
                             json={"featureId": "analytics", "version": "1.0.0"})).json()
    assert (await wait_build(client, service_headers, pid, act["buildId"]))["status"] == "deployed"
    good = site_index(core, pid)

    # Someone pushes a broken features config; the rebuild fails and the site stays as it was.
    bare = Path(core.settings.data_dir) / "repos" / f"nno-platform-{pid}.git"
    work = tmp_path / "w"
    git("clone", "-q", str(bare), str(work))
    (work / "features.config.toml").write_text("features = [ { id = 'BROKEN' } ]\n")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "break it", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    trig = await client.post(f"{CLI}/platforms/{pid}/builds", headers=service_headers, json={})
    assert trig.status_code == 202, trig.text
    failed = await wait_build(client, service_headers, pid, trig.json()["id"])
    assert failed["status"] == "failed" and failed["error"], failed
    assert "features.config.toml" in failed["log"]
    assert site_index(core, pid) == good
    status = (await client.get(f"{CLI}/platforms/{pid}/build-status", headers=service_headers)).json()
    assert status["status"] == "failed" and status["lastDeployed"]["id"] == act["buildId"]
    state = await registry_build_status(client, service_headers, pid, "failure")
    assert state["lastBuildId"] == trig.json()["id"]
