"""Deleting a platform in the Registry deprovisions it: the Registry asks Provisioning for the
DEPROVISION_PLATFORM job after the delete commits, records the job id in its audit log, and the job
removes the platform's local-cloud resources (and nothing of another platform's). When Provisioning
refuses, the delete stands, the audit says why, and an operator retries with the provisioning route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.kernel.bindings import BindingResponse, UpstreamError
from nno.provisioning.providers.local import LocalProvider
from tests.provisioning.conftest import PROV, create_platform, platform_status, wait_job
from tests.provisioning.fakes import FakeCloud

P = "/api/v1/platforms"


async def _operator(client: httpx.AsyncClient, service_headers: dict[str, str]) -> dict[str, str]:
    resp = await client.post("/api/v1/iam/api/nno/bootstrap", headers=service_headers,
                             json={"email": "root@nno.localhost", "password": "correct-horse-9", "name": "Root"})
    assert resp.status_code == 201, resp.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {resp.json()['token']}"}


async def _provision(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> None:
    resp = await client.post(f"{PROV}/provision/platform", json={"platformId": pid}, headers=headers)
    assert resp.status_code == 202, resp.text
    job = await wait_job(client, headers, resp.json()["jobId"], timeout=30.0)
    assert job["status"] == "COMPLETED", job


async def _cancel(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> None:
    resp = await client.post(f"{P}/{pid}/lifecycle", json={"action": "cancel"}, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "pending_cancellation", resp.text


async def _audit(client: httpx.AsyncClient, headers: dict[str, str], pid: str, action: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{P}/{pid}/audit", params={"limit": 100}, headers=headers)
    assert resp.status_code == 200, resp.text
    return [row for row in resp.json()["data"] if row["action"] == action]


async def _deprovision_jobs(client: httpx.AsyncClient, headers: dict[str, str], pid: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{PROV}/provision/jobs", params={"platformId": pid, "type": "DEPROVISION_PLATFORM"},
                            headers=headers)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


def _files(root: Path, pid: str) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if pid in str(p.relative_to(root))}


async def _cloud(core: Core, pid: str) -> list[tuple[str, str]]:
    provider = LocalProvider(core.settings)
    try:
        return sorted((r.type, r.name) for r in await provider.list_platform_resources(pid))
    finally:
        await provider.close()


async def test_deleting_a_platform_deprovisions_it_in_the_local_cloud(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    keep = await create_platform(client, service_headers)
    gone = await create_platform(client, service_headers)
    for pid in (keep, gone):
        await _provision(client, service_headers, pid)
    root = core.context("edge").extras["cloud"].root
    kept_cloud, kept_files = await _cloud(core, keep), _files(root, keep)
    assert {t for t, _ in await _cloud(core, gone)} >= {"d1", "worker", "pages", "dns", "secret"}
    assert _files(root, gone)

    await _cancel(client, service_headers, gone)
    operator = await _operator(client, service_headers)
    deleted = await client.delete(f"{P}/{gone}", headers=operator)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "deleted"

    [requested] = await _audit(client, service_headers, gone, "platform.deprovision_requested")
    job_id = requested["after"]["jobId"]
    assert requested["after"]["duplicate"] is False and requested["actorType"] == "operator"
    assert [j["id"] for j in await _deprovision_jobs(client, service_headers, gone)] == [job_id]
    job = await wait_job(client, service_headers, job_id, timeout=30.0)
    assert job["status"] == "COMPLETED", job
    # The job found the platform already deleted and made no second (illegal) transition.
    steps = {s["name"]: s["status"] for s in job["steps"]}
    assert steps["mark_platform_deleted"] == "skipped"
    assert await platform_status(client, service_headers, gone) == "deleted"
    events = (await client.get(f"{P}/{gone}/lifecycle-events", headers=service_headers)).json()["data"]
    assert [e["toStatus"] for e in events].count("deleted") == 1

    assert await _cloud(core, gone) == []
    assert _files(root, gone) == set()
    assert await _cloud(core, keep) == kept_cloud
    assert _files(root, keep) == kept_files
    resources = (await client.get(f"{P}/{gone}/resources", params={"includeDeleted": "true"},
                                  headers=service_headers)).json()["data"]
    assert resources and all(r["status"] == "deleted" for r in resources)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi),
                                 base_url="http://127.0.0.1:8787") as edge:
        assert (await edge.get("/", headers={"host": f"{gone}.nno.localhost"})).status_code == 404
        assert (await edge.get("/sign-in", headers={"host": f"{keep}.nno.localhost"})).status_code == 200
    # Repeating the delete is a no-op: no second job, no second request.
    again = await client.delete(f"{P}/{gone}", headers=operator)
    assert again.status_code == 200 and again.json()["status"] == "deleted"
    assert len(await _deprovision_jobs(client, service_headers, gone)) == 1
    assert len(await _audit(client, service_headers, gone, "platform.deprovision_requested")) == 1


async def test_a_deprovision_job_that_deletes_the_platform_is_not_started_twice(
        client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    """The job's own `delete` transition makes the Registry ask again; Provisioning answers with the
    running job (`duplicate`), which the audit row records."""
    pid = await create_platform(client, service_headers)
    await _provision(client, service_headers, pid)
    await _cancel(client, service_headers, pid)
    resp = await client.post(f"{P}/{pid}/lifecycle", json={"action": "period_end"}, headers=service_headers)
    assert resp.status_code == 200, resp.text
    resp = await client.post(f"{PROV}/provision/platform/deprovision", json={"platformId": pid},
                             headers=service_headers)
    assert resp.status_code == 202 and resp.json()["duplicate"] is False, resp.text
    job_id = resp.json()["jobId"]
    job = await wait_job(client, service_headers, job_id)
    assert job["status"] == "COMPLETED", job
    assert {s["name"]: s["status"] for s in job["steps"]}["mark_platform_deleted"] == "completed"
    assert await platform_status(client, service_headers, pid) == "deleted"
    [requested] = await _audit(client, service_headers, pid, "platform.deprovision_requested")
    assert requested["after"]["jobId"] == job_id and requested["after"]["duplicate"] is True
    assert [j["id"] for j in await _deprovision_jobs(client, service_headers, pid)] == [job_id]
    assert not [n for n in fake.names() if pid in n]


@pytest.mark.parametrize("failure", ["refused", "unreachable"])
async def test_the_delete_stands_when_provisioning_fails_and_an_operator_retries(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud,
        monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    pid = await create_platform(client, service_headers)
    await _provision(client, service_headers, pid)
    await _cancel(client, service_headers, pid)
    assert [n for n in fake.names() if pid in n]

    binding = core.context("registry").bindings["provisioning"]
    real_request = binding.request

    async def failing(method: str, path: str, **kw: Any) -> BindingResponse:
        if path == "/provision/platform/deprovision":
            if failure == "unreachable":
                raise UpstreamError(504, "provisioning timed out")
            return BindingResponse(503, {"content-type": "application/json"},
                                   b'{"error":{"code":"UNAVAILABLE","message":"down"}}')
        return await real_request(method, path, **kw)

    monkeypatch.setattr(binding, "request", failing)
    deleted = await client.delete(f"{P}/{pid}", headers=service_headers)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
    monkeypatch.undo()

    assert await platform_status(client, service_headers, pid) == "deleted"
    assert await _audit(client, service_headers, pid, "platform.deprovision_requested") == []
    [failed] = await _audit(client, service_headers, pid, "platform.deprovision_request_failed")
    expected = "HTTP 503 UNAVAILABLE" if failure == "refused" else "provisioning timed out"
    assert expected in failed["metadata"]["error"]
    assert "/provision/platform/deprovision" in failed["metadata"]["retry"]
    assert await _deprovision_jobs(client, service_headers, pid) == []
    assert [n for n in fake.names() if pid in n]

    # The operator's retry through the existing route runs the job on the deleted platform.
    resp = await client.post(f"{PROV}/provision/platform/deprovision", json={"platformId": pid},
                             headers=service_headers)
    assert resp.status_code == 202, resp.text
    job = await wait_job(client, service_headers, resp.json()["jobId"])
    assert job["status"] == "COMPLETED", job
    assert not [n for n in fake.names() if pid in n]
    assert await platform_status(client, service_headers, pid) == "deleted"
