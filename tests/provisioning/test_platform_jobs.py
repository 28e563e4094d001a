"""PROVISION_PLATFORM / DEPROVISION_PLATFORM through the gateway, with the real Registry and an
in-test cloud."""

from __future__ import annotations

import httpx

from nno.provisioning.steps import JOB_STEPS
from tests.provisioning.conftest import PROV, create_platform, platform_status, wait_job
from tests.provisioning.fakes import FakeCloud

PROVISION_ORDER = [s.name for s in JOB_STEPS["PROVISION_PLATFORM"]]


async def _provision(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> dict:
    resp = await client.post(f"{PROV}/provision/platform", json={"platformId": pid}, headers=headers)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "QUEUED" and len(body["jobId"]) == 10
    return await wait_job(client, headers, body["jobId"])


async def test_provision_platform_creates_everything_in_order(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    pid = await create_platform(client, service_headers)
    job = await _provision(client, service_headers, pid)
    assert job["status"] == "COMPLETED", job
    assert job["type"] == "PROVISION_PLATFORM" and job["attempts"] == 1
    assert [s["name"] for s in job["steps"]] == PROVISION_ORDER
    assert all(s["status"] == "completed" for s in job["steps"]), job["steps"]
    # The cloud calls happened in step order, with the Cloudflare names.
    ensure_calls = [c for c in fake.calls if c[0].startswith(("ensure", "put"))]
    assert ensure_calls == [
        ("ensure_d1", f"{pid}-default-auth-db"),
        ("ensure_worker", f"{pid}-default-auth"),
        ("put_secret", f"{pid}-default-auth:BETTER_AUTH_SECRET"),
        ("ensure_pages", f"{pid}-prod-portal"),
        ("ensure_dns", f"auth.svc.default.{pid}.nno.localhost"),
        ("ensure_dns", f"console.app.default.{pid}.nno.localhost"),
    ]
    assert fake.resources[("worker", f"{pid}-default-auth")]["bindings"] == {"DB": f"{pid}-default-auth-db"}
    assert fake.resources[("dns", f"auth.svc.default.{pid}.nno.localhost")]["target"] == f"{pid}-default-auth"
    # The secret's value never reaches the job row.
    secret = fake.secrets[(f"{pid}-default-auth", "BETTER_AUTH_SECRET")]
    assert secret not in str(job)
    # The platform went pending -> provisioning -> active, and the Registry knows every resource.
    assert await platform_status(client, service_headers, pid) == "active"
    events = (await client.get(f"/api/v1/platforms/{pid}/lifecycle-events", headers=service_headers)).json()
    assert [(e["fromStatus"], e["toStatus"]) for e in sorted(events["data"], key=lambda e: e["createdAt"])] == [
        ("pending", "provisioning"), ("provisioning", "active")]
    assert all(job["id"] in e["reason"] for e in events["data"])  # the Registry's trail names the job
    res = (await client.get(f"/api/v1/platforms/{pid}/resources", headers=service_headers)).json()["data"]
    assert sorted((r["type"], r["name"]) for r in res) == sorted([
        ("d1", f"{pid}-default-auth-db"), ("worker", f"{pid}-default-auth"), ("pages", f"{pid}-prod-portal")])
    dns = (await client.get(f"/api/v1/platforms/{pid}/dns-records", headers=service_headers)).json()["data"]
    assert sorted(d["hostname"] for d in dns) == sorted(
        [f"auth.svc.default.{pid}.nno.localhost", f"console.app.default.{pid}.nno.localhost"])
    stack = (await client.get(f"/api/v1/platforms/{pid}/stacks/default", headers=service_headers)).json()
    assert stack["status"] == "active"
    worker_id = next(r["id"] for r in res if r["type"] == "worker")
    secrets = (await client.get(f"/api/v1/platforms/{pid}/resources/{worker_id}/secrets",
                                headers=service_headers)).json()["data"]
    assert [(s["name"], s["status"]) for s in secrets] == [("BETTER_AUTH_SECRET", "set")]
    # Every state change is in the job's event trail.
    ev = (await client.get(f"{PROV}/provision/jobs/{job['id']}/events", headers=service_headers)).json()["data"]
    kinds = [e["event"] for e in ev]
    assert kinds[0] == "job.created" and kinds[-1] == "job.status_changed"
    assert kinds.count("step.completed") == len(PROVISION_ORDER)
    assert [(e["fromStatus"], e["toStatus"]) for e in ev if e["event"] == "job.status_changed"] == [
        ("QUEUED", "RUNNING"), ("RUNNING", "COMPLETED")]


async def test_running_the_job_again_creates_nothing_twice(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    pid = await create_platform(client, service_headers)
    first = await _provision(client, service_headers, pid)
    secret = fake.secrets[(f"{pid}-default-auth", "BETTER_AUTH_SECRET")]
    second = await _provision(client, service_headers, pid)
    assert first["id"] != second["id"]  # the first one ended, so this is a new job
    assert second["status"] == "COMPLETED"
    assert all(n == 1 for n in fake.created.values()), fake.created
    # Everything already stood: the provider steps are recorded as skipped.
    statuses = {s["name"]: s["status"] for s in second["steps"]}
    for name in ("mark_platform_provisioning", "create_auth_d1", "deploy_auth_worker", "set_auth_worker_secrets",
                 "create_console_pages", "register_dns", "register_resources", "mark_platform_active"):
        assert statuses[name] == "skipped", (name, statuses)
    res = (await client.get(f"/api/v1/platforms/{pid}/resources", headers=service_headers)).json()["data"]
    assert len(res) == 3
    # The signing secret in use was not rotated: the cloud said it exists.
    assert fake.secrets[(f"{pid}-default-auth", "BETTER_AUTH_SECRET")] == secret
    assert [c for c in fake.calls if c[0] == "put_secret"] == [("put_secret", f"{pid}-default-auth:BETTER_AUTH_SECRET")]
    assert ("has_secret", f"{pid}-default-auth:BETTER_AUTH_SECRET") in fake.calls


async def test_the_cloud_not_the_registry_decides_whether_the_secret_exists(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    """A secret already in the cloud (the Registry not yet told) is kept and its status recorded; a
    secret the Registry still calls `set` but the cloud lost is set again."""
    pid = await create_platform(client, service_headers)
    worker = f"{pid}-default-auth"
    await fake.ensure_worker(worker, kind="auth", platform_id=pid, bindings={})
    fake.secrets[(worker, "BETTER_AUTH_SECRET")] = "already-in-use"
    job = await _provision(client, service_headers, pid)
    assert job["status"] == "COMPLETED", job
    assert {s["name"]: s["status"] for s in job["steps"]}["set_auth_worker_secrets"] == "skipped"
    assert fake.secrets[(worker, "BETTER_AUTH_SECRET")] == "already-in-use"
    res = (await client.get(f"/api/v1/platforms/{pid}/resources", headers=service_headers)).json()["data"]
    worker_id = next(r["id"] for r in res if r["type"] == "worker")
    secrets_url = f"/api/v1/platforms/{pid}/resources/{worker_id}/secrets"
    listed = (await client.get(secrets_url, headers=service_headers)).json()["data"]
    assert [(s["name"], s["status"]) for s in listed] == [("BETTER_AUTH_SECRET", "set")]

    await fake.delete_secret(worker, "BETTER_AUTH_SECRET")  # lost in the cloud; the Registry still says set
    again = await _provision(client, service_headers, pid)
    assert again["status"] == "COMPLETED", again
    assert {s["name"]: s["status"] for s in again["steps"]}["set_auth_worker_secrets"] == "completed"
    fresh = fake.secrets[(worker, "BETTER_AUTH_SECRET")]
    assert fresh != "already-in-use" and len(fresh) >= 48 and fresh not in str(again)


async def test_duplicate_request_returns_the_live_job(
        manual_client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    pid = await create_platform(manual_client, service_headers)
    first = await manual_client.post(f"{PROV}/provision/platform", json={"platformId": pid},
                                     headers=service_headers)
    again = await manual_client.post(f"{PROV}/provision/platform",
                                     json={"platformId": pid, "environment": "prod"}, headers=service_headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["jobId"] == first.json()["jobId"]
    assert again.json()["duplicate"] is True and first.json()["duplicate"] is False
    listed = (await manual_client.get(f"{PROV}/provision/jobs", params={"platformId": pid},
                                      headers=service_headers)).json()
    assert listed["pagination"]["total"] == 1
    assert listed["data"][0]["status"] == "QUEUED"
    assert [s["status"] for s in listed["data"][0]["steps"]] == ["pending"] * 8


async def test_deprovision_removes_the_platform_and_only_it(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    keep = await create_platform(client, service_headers)
    gone = await create_platform(client, service_headers)
    assert (await _provision(client, service_headers, keep))["status"] == "COMPLETED"
    assert (await _provision(client, service_headers, gone))["status"] == "COMPLETED"
    kept_before = {n for n in fake.names() if keep in n}
    for action in ("cancel", "period_end"):
        r = await client.post(f"/api/v1/platforms/{gone}/lifecycle", json={"action": action},
                              headers=service_headers)
        assert r.status_code == 200, r.text
    resp = await client.post(f"{PROV}/provision/platform/deprovision", json={"platformId": gone},
                             headers=service_headers)
    assert resp.status_code == 202, resp.text
    job = await wait_job(client, service_headers, resp.json()["jobId"])
    assert job["status"] == "COMPLETED", job
    assert not [n for n in fake.names() if gone in n]
    assert {n for n in fake.names() if keep in n} == kept_before
    assert await platform_status(client, service_headers, gone) == "deleted"
    res = (await client.get(f"/api/v1/platforms/{gone}/resources", headers=service_headers)).json()["data"]
    assert all(r["status"] == "deleted" for r in res)
    dns = (await client.get(f"/api/v1/platforms/{gone}/dns-records", headers=service_headers)).json()["data"]
    assert len(dns) == 2 and all(d["status"] == "deleted" for d in dns)
    kept = (await client.get(f"/api/v1/platforms/{keep}/dns-records", headers=service_headers)).json()["data"]
    assert len(kept) == 2 and all(d["status"] == "active" for d in kept)


async def test_missing_provider_fails_the_step_clearly(
        make_settings, service_headers: dict[str, str]) -> None:
    from nno.core import Core

    core = Core(make_settings(provider="nosuchcloud", job_backoff_base_s=0.0, worker_poll_interval_s=0.02))
    await core.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi),
                                     base_url="http://127.0.0.1:8787") as client:
            pid = await create_platform(client, service_headers)
            job = await _provision(client, service_headers, pid)
            assert job["status"] == "ROLLED_BACK"
            assert job["attempts"] == 1  # not retryable: no point trying again
            assert job["errorCode"] == "PROVIDER_UNAVAILABLE"
            assert "nno.provisioning.providers.nosuchcloud" in job["error"]
            failed = [s for s in job["steps"] if s["status"] == "failed"]
            assert [s["name"] for s in failed] == ["create_auth_d1"]
    finally:
        await core.stop()
