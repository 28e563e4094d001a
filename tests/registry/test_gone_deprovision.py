"""The gone-platform rule against the real thing: with Provisioning and its worker in the core (on the
provisioning tests' fake cloud), deleting a provisioned platform with a feature still deprovisions it
completely through the Registry calls the rule lets through, and afterwards nothing grows back, neither through the
Registry nor through a Provisioning job that tries (its rollback cleans up after it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from tests.conftest import running_core
from tests.provisioning.conftest import PROV, create_platform, list_data, run_job, wait_job
from tests.provisioning.fakes import FakeCloud
from tests.registry.conftest import P, assert_error, unique

from nno.core import Core
from nno.kernel.config import Settings
from nno.provisioning.provider_factory import set_provider


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(job_backoff_base_s=0.01, worker_poll_interval_s=0.02)


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    """Every service, the embedded worker and the local cloud (the Registry tests' core has only IAM)."""
    async with running_core(settings) as instance:
        yield instance


@pytest.fixture
def fake(core: Core) -> FakeCloud:
    """The provisioning tests' in-memory cloud: it deploys any feature's Worker."""
    cloud = FakeCloud()
    set_provider(core.context("provisioning"), cloud)  # type: ignore[arg-type]
    return cloud


async def _cloud(fake: FakeCloud, pid: str) -> list[tuple[str, str]]:
    return sorted((r.type, r.name) for r in await fake.list_platform_resources(pid))


async def test_delete_deprovisions_everything_and_nothing_grows_back(
        fake: FakeCloud, client: httpx.AsyncClient, service_headers: dict[str, str]) -> None:
    h = service_headers
    pid = await create_platform(client, h)
    assert (await run_job(client, h, "/provision/platform", {"platformId": pid}))["status"] == "COMPLETED"
    tenant = (await list_data(client, h, f"{P}/{pid}/tenants"))[0]["id"]
    feature = {"platformId": pid, "entityId": tenant, "featureId": "billing", "featureVersion": "1.0.0",
               "environment": "prod"}
    job = await run_job(client, h, "/provision/feature/activate", feature)
    assert job["status"] == "COMPLETED", job
    assert {t for t, _ in await _cloud(fake, pid)} >= {"worker", "dns", "d1"}

    assert (await client.post(f"{P}/{pid}/lifecycle", json={"action": "cancel"}, headers=h)).status_code == 200
    deleted = await client.delete(f"{P}/{pid}", headers=h)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted", deleted.text
    audit = await list_data(client, h, f"{P}/{pid}/audit")
    [requested] = [row for row in audit if row["action"] == "platform.deprovision_requested"]
    job = await wait_job(client, h, requested["after"]["jobId"], timeout=30.0)
    assert job["status"] == "COMPLETED", job
    assert all(step["status"] in ("completed", "skipped") for step in job["steps"]), job["steps"]

    # Everything is gone from the cloud, and the Registry says so (its records kept, marked deleted).
    assert await _cloud(fake, pid) == []
    resources = await list_data(client, h, f"{P}/{pid}/resources", includeDeleted="true")
    assert resources and all(r["status"] == "deleted" for r in resources)
    dns = await list_data(client, h, f"{P}/{pid}/dns-records")
    assert dns and all(d["status"] == "deleted" for d in dns)

    # Nothing grows back through the Registry...
    before = {path: await list_data(client, h, f"{P}/{pid}/{path}", **params) for path, params in (
        ("tenants", {}), ("stacks", {}), ("resources", {"includeDeleted": "true"}), ("dns-records", {}),
        ("features", {"includeInactive": "true"}))}
    for method, path, body in (
        ("POST", "tenants", {"name": "Late", "slug": unique("late")}),
        ("POST", "stacks", {"tenantId": tenant, "name": "late"}),
        ("POST", "features", {"featureId": "late", "version": "1"}),
        ("POST", "resources", {"type": "kv", "name": f"{pid}-late"}),
        ("POST", "dns-records", {"hostname": f"late.svc.default.{pid}.nno.localhost", "type": "svc"}),
    ):
        assert_error(await client.request(method, f"{P}/{pid}/{path}", json=body, headers=h), 409,
                     "PLATFORM_INACTIVE")
    # ...nor through a Provisioning job: the Registry refuses to record what it made, and its
    # rollback (removals and retirements, which the rule lets through) takes it away again.
    late = {**feature, "featureId": "analytics"}
    resp = await client.post(f"{PROV}/provision/feature/activate", json=late, headers=h)
    if resp.status_code == 202:
        job = await wait_job(client, h, resp.json()["jobId"], timeout=30.0)
        assert job["status"] == "ROLLED_BACK", job
        assert "PLATFORM_INACTIVE" in str(job), job
    else:  # Provisioning itself refusing a gone platform is just as good
        assert 400 <= resp.status_code < 500, resp.text
    assert await _cloud(fake, pid) == []
    after = {path: await list_data(client, h, f"{P}/{pid}/{path}", **params) for path, params in (
        ("tenants", {}), ("stacks", {}), ("resources", {"includeDeleted": "true"}), ("dns-records", {}),
        ("features", {"includeInactive": "true"}))}
    assert after == before
