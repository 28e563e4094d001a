"""Onboarding's `deploy_services` is the platform's first deployed console build: a failed first
build marks the step (and the session) failed, and a later good build (a rebuild, or the next
commit) completes both. A failed build publishes nothing, so the site from provisioning stays."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.repos.provider import BuildOutcome, LocalRepoProvider
from tests.e2e.test_onboarding_provisioning import poll
from tests.repos.conftest import CLI, site_index, wait_build

IAM = "/api/v1/iam"


def steps(session: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in session["steps"]}


@pytest.mark.parametrize("retry", ["rebuild", "commit"])
async def test_a_good_build_after_a_failed_first_one_completes_onboarding(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        retry: str) -> None:
    real_build = LocalRepoProvider.build
    failures: list[str] = []

    async def failing_once(self: LocalRepoProvider, platform_id: str, environment: str, sha: str,
                           icon: str | None = None) -> BuildOutcome:
        if not failures:  # the first build: its Pages upload fails
            failures.append(sha)
            return BuildOutcome(False, ["publish to Pages failed: upload refused"], "upload refused")
        return await real_build(self, platform_id, environment, sha, icon)

    monkeypatch.setattr(LocalRepoProvider, "build", failing_once)
    signed = await client.post(f"{IAM}/api/auth/sign-up/email", json={
        "name": "Owner", "email": f"owner-{uuid.uuid4().hex[:8]}@example.com", "password": "correct-horse-9"})
    assert signed.status_code == 200, signed.text
    client.cookies.clear()
    owner = {"Authorization": f"Bearer {signed.json()['token']}"}
    started = await client.post("/api/v1/onboarding", headers=owner, json={
        "platformName": "Retry Co", "slug": "retry-" + uuid.uuid4().hex[:6], "tier": "starter"})
    assert started.status_code == 201, started.text
    pid, url = started.json()["platformId"], f"/api/v1/onboarding/{started.json()['id']}"

    failed = await poll(client, url, owner, lambda b: b["status"] != "in_progress"
                        and steps(b)["verify"] == "completed")
    assert failed["status"] == "failed", failed
    assert steps(failed) == {"create_platform": "completed", "provision_infra": "completed",
                             "setup_repo": "completed", "deploy_services": "failed", "verify": "completed"}
    step = next(s for s in failed["steps"] if s["name"] == "deploy_services")
    assert step["error"] == "upload refused"
    shell = site_index(core, pid)  # what provisioning published: the failed build changed nothing

    if retry == "rebuild":
        resp = await client.post(f"{CLI}/platforms/{pid}/builds", headers=service_headers, json={})
        assert resp.status_code == 202, resp.text
        build_id = resp.json()["id"]
    else:
        resp = await client.post(f"{CLI}/platforms/{pid}/features/activate", headers=service_headers,
                                 json={"featureId": "analytics", "version": "1.0.0"})
        assert resp.status_code == 200, resp.text
        build_id = resp.json()["buildId"]
    assert (await wait_build(client, owner, pid, build_id))["status"] == "deployed"
    done = await poll(client, url, owner, lambda b: b["status"] != "failed")
    assert done["status"] == "completed" and set(steps(done).values()) == {"completed"}, done
    assert site_index(core, pid) != shell

    # Later failures no longer touch the completed session. (The one runner finishes builds in
    # order, so once the next build is done the failed one has reported all it would.)
    failures.clear()
    resp = await client.post(f"{CLI}/platforms/{pid}/builds", headers=service_headers, json={})
    assert (await wait_build(client, owner, pid, resp.json()["id"]))["status"] == "failed"
    act = await client.post(f"{CLI}/platforms/{pid}/features/activate", headers=service_headers,
                            json={"featureId": "analytics", "version": "1.1.0"})
    assert (await wait_build(client, owner, pid, act.json()["buildId"]))["status"] == "deployed"
    assert (await client.get(url, headers=owner)).json()["status"] == "completed"
