"""Several features in one commit: `POST /platforms/{id}/features/apply`, and a stack's activation,
upgrade and deactivation through Provisioning, each one commit and one build."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import httpx

from nno.core import Core
from tests.provisioning.conftest import run_job
from tests.provisioning.test_stacks import new_stack, template
from tests.repos.conftest import CLI, active_platform, latest_build, make_repo, site_index, wait_build


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def bare(core: Core, pid: str) -> Path:
    return Path(core.settings.data_dir) / "repos" / f"nno-platform-{pid}.git"


def commits(core: Core, pid: str) -> int:
    return int(git("rev-list", "--count", "main", cwd=bare(core, pid)))


def features_at_head(core: Core, pid: str) -> dict[str, str]:
    text = git("show", "main:features.config.toml", cwd=bare(core, pid))
    return {f["id"]: f["version"] for f in tomllib.loads(text)["features"]}


async def builds(client: httpx.AsyncClient, h: dict[str, str], pid: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{CLI}/platforms/{pid}/builds", headers=h, params={"limit": 100})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


async def ready_platform(client: httpx.AsyncClient, h: dict[str, str]) -> str:
    pid = await active_platform(client, h)
    await make_repo(client, h, pid)
    assert (await wait_build(client, h, pid, (await latest_build(client, h, pid))["id"]))["status"] == "deployed"
    return pid


async def test_apply_is_one_commit_and_one_build(core: Core, client: httpx.AsyncClient,
                                                 service_headers: dict[str, str]) -> None:
    h = service_headers
    pid = await ready_platform(client, h)
    first = await client.post(f"{CLI}/platforms/{pid}/features/activate", headers=h,
                              json={"featureId": "crm", "version": "1.0.0"})
    await wait_build(client, h, pid, first.json()["buildId"])
    before_commits, before_builds = commits(core, pid), len(await builds(client, h, pid))

    resp = await client.post(f"{CLI}/platforms/{pid}/features/apply", headers=h, json={
        "activate": [{"featureId": "analytics", "version": "1.2.0", "config": {"retentionDays": 7}},
                     {"featureId": "billing", "version": "1.0.0"}],
        "deactivate": ["crm"]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "applied" and body["deactivated"] == ["crm"]
    assert body["activated"] == [{"featureId": "analytics", "version": "1.2.0"},
                                 {"featureId": "billing", "version": "1.0.0"}]
    assert commits(core, pid) == before_commits + 1
    assert git("rev-parse", "main", cwd=bare(core, pid)).strip() == body["commitSha"]
    assert sorted(git("show", "--name-only", "--format=", "main", cwd=bare(core, pid)).split()) == [
        "features.config.toml", "pyproject.toml"]
    assert features_at_head(core, pid) == {"analytics": "1.2.0", "billing": "1.0.0"}
    after = await builds(client, h, pid)
    assert len(after) == before_builds + 1 and after[0]["id"] == body["buildId"]
    build = await wait_build(client, h, pid, body["buildId"])
    assert build["status"] == "deployed", build
    assert json.loads(site_index(core, pid))["features"] == [{"id": "analytics", "version": "1.2.0"},
                                                             {"id": "billing", "version": "1.0.0"}]

    # The same change again commits and builds nothing.
    again = await client.post(f"{CLI}/platforms/{pid}/features/apply", headers=h, json={
        "activate": [{"featureId": "billing", "version": "1.0.0"}], "deactivate": ["crm"]})
    assert again.json() | {"activated": None} == {"status": "unchanged", "activated": None, "deactivated": ["crm"],
                                                  "commitSha": None, "buildId": None}
    assert commits(core, pid) == before_commits + 1 and len(await builds(client, h, pid)) == before_builds + 1


async def test_bad_apply_bodies_change_nothing(core: Core, client: httpx.AsyncClient,
                                               service_headers: dict[str, str]) -> None:
    h = service_headers
    pid = await ready_platform(client, h)
    before = commits(core, pid)
    one = {"featureId": "crm", "version": "1.0.0"}
    for body in ({}, {"activate": [], "deactivate": []}, {"activate": [one, one]},
                 {"activate": [one], "deactivate": ["crm"]}, {"deactivate": ["crm", "crm"]},
                 {"deactivate": ["Bad_Id"]}, {"activate": [{"featureId": "crm"}]},
                 {"activate": [{**one, "config": [1]}]}, {"activate": one},
                 {"deactivate": [f"f{i}" for i in range(101)]}, {"activate": [one], "extra": 1},
                 {"activate": [one], "environment": "qa"}):
        resp = await client.post(f"{CLI}/platforms/{pid}/features/apply", headers=h, json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
    nulls = await client.post(f"{CLI}/platforms/{pid}/features/apply", headers=h,
                              json={"activate": [{**one, "config": {"a": [None, {"b": None}]}}]})
    assert nulls.status_code == 200  # TOML has no null: dropped, as documented
    assert commits(core, pid) == before + 1
    missing = await client.post(f"{CLI}/platforms/abcdefghij/features/apply", headers=h,
                                json={"deactivate": ["crm"]})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "REPO_NOT_FOUND"


async def test_a_stack_is_one_commit_and_one_build_per_job(core: Core, client: httpx.AsyncClient,
                                                           service_headers: dict[str, str]) -> None:
    h = service_headers
    name = await template(client, h)
    pid = await ready_platform(client, h)
    sid = await new_stack(client, h, pid, templateId=name)

    async def job(path: str, body: dict[str, Any], want: dict[str, str]) -> None:
        commits_before, builds_before = commits(core, pid), len(await builds(client, h, pid))
        done = await run_job(client, h, path, {"platformId": pid, "stackId": sid, **body}, timeout=60.0)
        assert done["status"] == "COMPLETED", done
        step = next(s for s in done["steps"] if s["name"] == "trigger_shell_rebuild")
        [commit] = step["output"]["commits"]
        assert commits(core, pid) == commits_before + 1, path
        assert git("rev-parse", "main", cwd=bare(core, pid)).strip() == commit["commitSha"]
        assert features_at_head(core, pid) == want
        listed = await builds(client, h, pid)
        assert len(listed) == builds_before + 1 and listed[0]["id"] == commit["buildId"], path
        assert (await wait_build(client, h, pid, commit["buildId"]))["status"] == "deployed"
        site = json.loads(site_index(core, pid))
        assert {f["id"]: f["version"] for f in site["features"]} == want

    await job("/provision/stack/activate", {"templateVersion": "1.0.0"}, {"crm": "1.2.0", "analytics": "1.0.0"})
    # 1.1.0 drops analytics and adds billing: still one commit.
    await job("/provision/stack/upgrade", {}, {"crm": "1.2.0", "billing": "1.0.0"})
    await job("/provision/stack/deactivate", {}, {})
