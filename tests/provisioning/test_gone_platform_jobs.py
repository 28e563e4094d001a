"""Provisioning and the gone-platform rule (registry.md §7.1): on a `cancelled` or `deleted` platform
only jobs that remove things are accepted (DEPROVISION_PLATFORM, DEACTIVATE_FEATURE, DEACTIVATE_STACK);
PROVISION_PLATFORM, ACTIVATE_FEATURE and ACTIVATE_STACK answer 409 PLATFORM_INACTIVE up front and write
no job row, instead of deploying Workers the Registry would refuse to record. Deprovisioning also
retires the platform's feature activations and stacks, and a second deprovision changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from nno.core import Core
from nno.provisioning.models import ProvisionJob
from tests.provisioning.conftest import PROV, create_platform, list_data, platform_status, run_job, wait_job
from tests.provisioning.fakes import FakeCloud, Fault

P = "/api/v1/platforms"
REFUSED = ("/provision/platform", "/provision/feature/activate", "/provision/stack/activate")


async def _job_count(core: Core, pid: str | None = None) -> int:
    async with core.context("provisioning").db.session() as s:
        query = select(func.count()).select_from(ProvisionJob)
        if pid is not None:
            query = query.where(ProvisionJob.platform_id == pid)
        return int((await s.execute(query)).scalar_one())


async def _lifecycle(client: httpx.AsyncClient, h: dict[str, str], pid: str, *actions: str) -> None:
    for action in actions:
        resp = await client.post(f"{P}/{pid}/lifecycle", json={"action": action}, headers=h)
        assert resp.status_code == 200, resp.text


async def _provisioned_platform(client: httpx.AsyncClient, h: dict[str, str]) -> tuple[str, str]:
    """(platform id, its default tenant) of a new platform whose PROVISION_PLATFORM job completed."""
    pid = await create_platform(client, h)
    assert (await run_job(client, h, "/provision/platform", {"platformId": pid}))["status"] == "COMPLETED"
    return pid, (await list_data(client, h, f"{P}/{pid}/tenants"))[0]["id"]


def _bodies(pid: str, tenant: str, stack: str) -> dict[str, dict[str, Any]]:
    feature = {"platformId": pid, "entityId": tenant, "featureId": "late", "featureVersion": "1.0.0",
               "environment": "prod"}
    return {
        "/provision/platform": {"platformId": pid},
        "/provision/feature/activate": feature,
        "/provision/stack/activate": {"platformId": pid, "stackId": stack, "entityId": tenant,
                                      "features": [{"featureId": "late", "version": "1.0.0"}]},
    }


def _assert_refused(resp: httpx.Response, pid: str, status: str) -> None:
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "PLATFORM_INACTIVE", error
    assert error["details"]["platformId"] == pid and error["details"]["status"] == status, error


async def test_growing_jobs_on_a_gone_platform_are_refused_up_front(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    pid, tenant = await _provisioned_platform(client, h)
    stack = (await client.post(f"{P}/{pid}/stacks", json={"tenantId": tenant, "name": "saas"}, headers=h)).json()
    crm = {"platformId": pid, "entityId": tenant, "featureId": "crm", "featureVersion": "1.0.0",
           "environment": "prod"}
    # Active (and on its way out, not yet gone): still accepted.
    assert (await run_job(client, h, "/provision/feature/activate", crm))["status"] == "COMPLETED"
    await _lifecycle(client, h, pid, "cancel")
    assert (await run_job(client, h, "/provision/feature/activate", {**crm, "featureId": "billing"}))["status"] \
        == "COMPLETED"

    await _lifecycle(client, h, pid, "period_end")
    assert await platform_status(client, h, pid) == "cancelled"
    cloud_before = sorted(fake.names())
    jobs_before = await _job_count(core, pid)
    for path, body in _bodies(pid, tenant, stack["id"]).items():
        _assert_refused(await client.post(f"{PROV}{path}", json=body, headers=h), pid, "cancelled")
    assert await _job_count(core, pid) == jobs_before
    assert sorted(fake.names()) == cloud_before
    # Removing is still allowed: a feature deactivation runs and takes its Worker away.
    billing = {k: v for k, v in crm.items() if k != "featureVersion"}
    job = await run_job(client, h, "/provision/feature/deactivate", {**billing, "featureId": "billing"})
    assert job["status"] == "COMPLETED", job
    assert not [n for n in fake.names() if "billing" in n]

    deleted = await client.delete(f"{P}/{pid}", headers=h)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
    jobs_before = await _job_count(core, pid)
    for path, body in _bodies(pid, tenant, stack["id"]).items():
        _assert_refused(await client.post(f"{PROV}{path}", json=body, headers=h), pid, "deleted")
    assert await _job_count(core, pid) == jobs_before


async def test_deprovision_retires_features_and_stacks_once(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    pid, tenant = await _provisioned_platform(client, h)
    stack = (await client.post(f"{P}/{pid}/stacks", json={"tenantId": tenant, "name": "saas"}, headers=h)).json()
    feature = {"platformId": pid, "entityId": tenant, "featureId": "crm", "featureVersion": "1.0.0",
           "environment": "prod"}
    assert (await run_job(client, h, "/provision/feature/activate", feature))["status"] == "COMPLETED"
    assert (await run_job(client, h, "/provision/feature/activate", {**feature, "environment": "stg"}))["status"] \
        == "COMPLETED"
    stacked = {"platformId": pid, "stackId": stack["id"], "entityId": tenant, "resources": {"kv": True},
               "features": [{"featureId": "billing", "version": "1.0.0"}]}
    assert (await run_job(client, h, "/provision/stack/activate", stacked))["status"] == "COMPLETED"
    live = await list_data(client, h, f"{P}/{pid}/features")
    assert {(f["featureId"], f["environment"]) for f in live} == {("crm", "prod"), ("crm", "stg"),
                                                                  ("billing", "prod")}
    assert {s["status"] for s in await list_data(client, h, f"{P}/{pid}/stacks")} == {"active"}

    await _lifecycle(client, h, pid, "cancel")
    deleted = await client.delete(f"{P}/{pid}", headers=h)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
    [job] = [j for j in await list_data(client, h, f"{PROV}/provision/jobs", platformId=pid,
                                    type="DEPROVISION_PLATFORM")]
    job = await wait_job(client, h, job["id"], timeout=30.0)
    assert job["status"] == "COMPLETED", job
    assert [s["name"] for s in job["steps"]] == ["inventory", "delete_dns", "delete_workers",
                                                 "delete_repository", "delete_pages",
                                                 "delete_data", "mark_registry_resources_deleted",
                                                 "mark_platform_deleted"]
    assert await list_data(client, h, f"{P}/{pid}/features") == []
    features = await list_data(client, h, f"{P}/{pid}/features", includeInactive="true")
    assert len(features) == 3 and all(f["status"] == "inactive" and f["deactivatedAt"] for f in features)
    stacks = await list_data(client, h, f"{P}/{pid}/stacks")
    assert {s["id"] for s in stacks} == {"default", stack["id"]}
    assert all(s["status"] == "deactivated" for s in stacks), stacks

    # A second deprovision (an operator's retry of the route) finds nothing left to change.
    records = {path: await list_data(client, h, f"{P}/{pid}/{path}", **params) for path, params in (
        ("stacks", {}), ("features", {"includeInactive": "true"}), ("resources", {"includeDeleted": "true"}),
        ("dns-records", {}), ("audit", {}))}
    again = await run_job(client, h, "/provision/platform/deprovision", {"platformId": pid})
    assert again["status"] == "COMPLETED", again
    assert {s["name"]: s["status"] for s in again["steps"]}["mark_registry_resources_deleted"] == "skipped"
    assert records == {path: await list_data(client, h, f"{P}/{pid}/{path}", **params) for path, params in (
        ("stacks", {}), ("features", {"includeInactive": "true"}), ("resources", {"includeDeleted": "true"}),
        ("dns-records", {}), ("audit", {}))}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_any_growing_request_on_a_deleted_platform_writes_no_job(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        data: st.DataObject) -> None:
    client, h = manual_client, service_headers
    pid = await create_platform(client, h)
    await _lifecycle(client, h, pid, "bootstrap", "complete", "cancel", "delete")
    path = data.draw(st.sampled_from(REFUSED))
    body = dict(_bodies(pid, "tenant-1", "saas")[path])
    noise = data.draw(st.dictionaries(st.sampled_from(["entityId", "environment", "featureId", "stackId",
                                                       "featureVersion", "planTier", "extra"]),
                                      st.one_of(st.text(max_size=12), st.integers(), st.none(),
                                                st.sampled_from(["prod", "stg", "crm", "default"])),
                                      max_size=3))
    body.update(noise)
    before = await _job_count(manual_core)
    resp = await client.post(f"{PROV}{path}", json=body, headers=h)
    # Never accepted, never a 5xx: a body that validates meets the gone platform.
    assert resp.status_code in (400, 409), resp.text
    if resp.status_code == 409:
        _assert_refused(resp, pid, "deleted")
    else:
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
    assert await _job_count(manual_core) == before


async def test_retrying_a_failed_growing_job_on_a_gone_platform_is_refused(
        core: Core, client: httpx.AsyncClient, service_headers: dict[str, str], fake: FakeCloud) -> None:
    h = service_headers
    pid, tenant = await _provisioned_platform(client, h)
    crm = {"platformId": pid, "entityId": tenant, "featureId": "crm", "featureVersion": "1.0.0",
           "environment": "prod"}
    fake.faults.append(Fault("ensure_worker", times=-1, retryable=False))
    failed = await run_job(client, h, "/provision/feature/activate", crm)
    assert failed["status"] == "ROLLED_BACK", failed
    await _lifecycle(client, h, pid, "cancel", "period_end")

    _assert_refused(await client.post(f"{PROV}/provision/jobs/{failed['id']}/retry", headers=h), pid, "cancelled")
    job = (await client.get(f"{PROV}/provision/jobs/{failed['id']}", headers=h)).json()
    assert job["status"] == "ROLLED_BACK" and job["updatedAt"] == failed["updatedAt"]
    assert not [n for n in fake.names() if "crm" in n]
