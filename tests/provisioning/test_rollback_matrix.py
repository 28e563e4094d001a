"""Rollback, proven step by step: for each of the six job types and each of its steps, a fault
injected just before the step runs (so after the previous one completed) and one injected just after
the step did its work (a timeout after the cloud or the Registry acted) end with nothing left behind.

- Jobs that build (PROVISION_PLATFORM, ACTIVATE_FEATURE, ACTIVATE_STACK) are rolled back: the cloud
  and the Registry hold exactly what they held before the job, and an operator retry then completes.
- Jobs that remove (DEPROVISION_PLATFORM, DEACTIVATE_*) cannot put back what they deleted: their
  retry completes and leaves exactly what a run without a fault leaves.
Both backends; a FakeCloud stands for the provider, the Registry is the real one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from nno.core import Core
from nno.provisioning.engine import Engine
from nno.provisioning.errors import StepError
from nno.provisioning.provider_factory import set_provider
from nno.provisioning.registry_client import RegistryClient
from nno.provisioning.steps import JOB_STEPS, Step, StepContext, StepResult
from tests.provisioning.conftest import PROV, create_platform, list_data
from tests.provisioning.fakes import FakeCloud

P = "/api/v1/platforms"
WHEN = ("before", "after")


@pytest.fixture
def cloud(manual_core: Core) -> FakeCloud:
    fake = FakeCloud()
    set_provider(manual_core.context("provisioning"), fake)  # type: ignore[arg-type]
    return fake


def faulty(job_type: str, index: int, when: str) -> dict[str, tuple[Step, ...]]:
    """The job steps with step `index` of `job_type` failing (not retryable) before or after its work."""
    step = JOB_STEPS[job_type][index]

    async def run(sctx: StepContext) -> StepResult:
        if when == "after":
            await step.run(sctx)
        raise StepError(f"injected fault {when} {step.name}", code="INJECTED", retryable=False)

    steps = list(JOB_STEPS[job_type])
    steps[index] = dataclasses.replace(step, run=run)
    return {**JOB_STEPS, job_type: tuple(steps)}


async def drain(core: Core, steps: dict[str, tuple[Step, ...]] | None = None) -> None:
    engine = Engine(core.context("provisioning"), "matrix", steps=steps)
    while await engine.run_one():
        pass


async def submit(client: httpx.AsyncClient, h: dict[str, str], path: str, body: dict[str, Any]) -> str:
    resp = await client.post(f"{PROV}{path}", json=body, headers=h)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["jobId"])


async def job(client: httpx.AsyncClient, h: dict[str, str], job_id: str) -> dict[str, Any]:
    resp = await client.get(f"{PROV}/provision/jobs/{job_id}", headers=h)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def run_clean(core: Core, client: httpx.AsyncClient, h: dict[str, str], path: str,
                    body: dict[str, Any]) -> None:
    job_id = await submit(client, h, path, body)
    await drain(core)
    done = await job(client, h, job_id)
    assert done["status"] == "COMPLETED", done


async def state(core: Core, cloud: FakeCloud, pid: str) -> dict[str, Any]:
    """Everything the cloud and the Registry hold for a platform that a job may have touched."""
    reg = RegistryClient(core.context("provisioning"))
    mine = [(k, n) for (k, n) in cloud.resources if n.startswith(pid + "-") or f".{pid}." in f".{n}."]
    workers = {n for k, n in mine if k == "worker"}
    live_resources = [r for r in await reg.list_resources(pid) if r.get("status") != "deleted"]
    secrets = []
    for r in live_resources:
        if r.get("type") == "worker":
            secrets += [(r["name"], s.get("name"), s.get("status"))
                        for s in await reg.list_secrets(pid, str(r["id"]))]
    return {
        "cloud": sorted(mine),
        "cloud_secrets": sorted(k for k in cloud.secrets if k[0] in workers),
        "resources": sorted((r["type"], r["name"], r.get("status")) for r in live_resources),
        "secrets": sorted(secrets),
        "dns": sorted((d["hostname"], d.get("status")) for d in await reg.list_dns(pid)
                      if d.get("status") != "deleted"),
        "features": sorted((f["featureId"], f.get("environment"), f.get("status"))
                           for f in await reg.list_features(pid) if f.get("status") != "inactive"),
        "stacks": sorted((s["id"], s.get("status")) for s in await reg.list_stacks(pid)),
    }


Setup = Callable[[Core, httpx.AsyncClient, dict[str, str]], Awaitable[tuple[str, str, dict[str, Any]]]]


async def _platform(core: Core, client: httpx.AsyncClient, h: dict[str, str]) -> tuple[str, str, str]:
    """A provisioned platform, its default tenant and a stack row of that tenant."""
    pid = await create_platform(client, h)
    await run_clean(core, client, h, "/provision/platform", {"platformId": pid})
    tenant = (await list_data(client, h, f"{P}/{pid}/tenants"))[0]["id"]
    resp = await client.post(f"{P}/{pid}/stacks", json={"tenantId": tenant, "name": "saas"}, headers=h)
    assert resp.status_code == 201, resp.text
    return pid, tenant, str(resp.json()["id"])


def _feature(pid: str, tenant: str, stack: str | None = None) -> dict[str, Any]:
    body = {"platformId": pid, "entityId": tenant, "featureId": "crm", "featureVersion": "1.0.0",
            "environment": "prod"}
    if stack:
        body["stackId"] = stack
    return body


def _stack(pid: str, tenant: str, stack: str, **extra: Any) -> dict[str, Any]:
    return {"platformId": pid, "stackId": stack, "entityId": tenant,
            "resources": {"d1": True, "r2": True, "kv": True},
            "features": [{"featureId": "billing", "version": "1.0.0"}, {"featureId": "crm", "version": "1.0.0"}],
            **extra}


async def setup_provision(core: Core, client: httpx.AsyncClient, h: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    pid = await create_platform(client, h)
    return pid, "/provision/platform", {"platformId": pid}


async def setup_deprovision(core: Core, client: httpx.AsyncClient,
                            h: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    pid, tenant, stack = await _platform(core, client, h)
    await run_clean(core, client, h, "/provision/feature/activate", _feature(pid, tenant, stack))
    await run_clean(core, client, h, "/provision/stack/activate", _stack(pid, tenant, stack))
    return pid, "/provision/platform/deprovision", {"platformId": pid}


async def setup_activate_feature(core: Core, client: httpx.AsyncClient,
                                 h: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    pid, tenant, stack = await _platform(core, client, h)
    # The feature joins a stack that already has shared resources (its Worker binds them).
    await run_clean(core, client, h, "/provision/stack/activate",
                    {**_stack(pid, tenant, stack), "features": [{"featureId": "billing", "version": "1.0.0"}]})
    return pid, "/provision/feature/activate", _feature(pid, tenant, stack)


async def setup_deactivate_feature(core: Core, client: httpx.AsyncClient,
                                   h: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    pid, tenant, _ = await _platform(core, client, h)
    body = _feature(pid, tenant)
    await run_clean(core, client, h, "/provision/feature/activate", body)
    del body["featureVersion"]
    return pid, "/provision/feature/deactivate", {**body, "deleteData": True}


async def setup_activate_stack(core: Core, client: httpx.AsyncClient,
                               h: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    pid, tenant, stack = await _platform(core, client, h)
    return pid, "/provision/stack/activate", _stack(pid, tenant, stack)


async def setup_deactivate_stack(core: Core, client: httpx.AsyncClient,
                                 h: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    pid, tenant, stack = await _platform(core, client, h)
    await run_clean(core, client, h, "/provision/stack/activate", _stack(pid, tenant, stack))
    return pid, "/provision/stack/deactivate", _stack(pid, tenant, stack, deleteData=True)


SETUPS: dict[str, Setup] = {
    "PROVISION_PLATFORM": setup_provision,
    "DEPROVISION_PLATFORM": setup_deprovision,
    "ACTIVATE_FEATURE": setup_activate_feature,
    "DEACTIVATE_FEATURE": setup_deactivate_feature,
    "ACTIVATE_STACK": setup_activate_stack,
    "DEACTIVATE_STACK": setup_deactivate_stack,
}
BUILDING = ("PROVISION_PLATFORM", "ACTIVATE_FEATURE", "ACTIVATE_STACK")


def _without_platform_status(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k != "platform"}


@pytest.mark.parametrize("job_type", list(JOB_STEPS))
async def test_a_fault_at_any_step_leaves_nothing_behind(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud, job_type: str) -> None:
    core, client, h = manual_core, manual_client, service_headers
    reference: dict[str, Any] | None = None  # what a removing job leaves when nothing fails
    problems: list[str] = []  # every case is run, and all that went wrong is reported at once
    for index, step in enumerate(JOB_STEPS[job_type]):
        for when in WHEN:
            where = f"fault {when} step {index} ({step.name})"
            pid, path, body = await SETUPS[job_type](core, client, h)
            before = await state(core, cloud, pid)
            job_id = await submit(client, h, path, body)
            await drain(core, faulty(job_type, index, when))
            failed = await job(client, h, job_id)
            if failed["status"] != "ROLLED_BACK":
                problems.append(f"{where}: ended {failed['status']}: {failed['steps']}")
                continue
            if job_type in BUILDING:
                problems += _diff(where + ", rolled back", before, await state(core, cloud, pid))
            retry = await client.post(f"{PROV}/provision/jobs/{job_id}/retry", headers=h)
            assert retry.status_code == 202, (where, retry.text)
            await drain(core)
            done = await job(client, h, job_id)
            if done["status"] != "COMPLETED":
                problems.append(f"{where}: the retry ended {done['status']}: {done['error']}")
                continue
            if job_type not in BUILDING:
                if reference is None:
                    reference = await _clean_run_leaves(core, client, h, job_type)
                problems += _diff(where + ", retried", reference, _renamed(await state(core, cloud, pid), pid))
    assert not problems, "\n".join(problems)


def _diff(where: str, expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    return [f"{where}: {key} expected {expected[key]} got {got[key]}" for key in expected if expected[key] != got[key]]


async def _clean_run_leaves(core: Core, client: httpx.AsyncClient, h: dict[str, str], job_type: str) -> dict[str, Any]:
    pid, path, body = await SETUPS[job_type](core, client, h)
    await run_clean(core, client, h, path, body)
    cloud = core.context("provisioning").extras  # the FakeCloud is the provider set on this context
    fake = next(v for v in cloud.values() if isinstance(v, FakeCloud))
    return _renamed(await state(core, fake, pid), pid)


def _renamed(snapshot: dict[str, Any], pid: str) -> dict[str, Any]:
    """The snapshot with the platform id (and ids of rows) taken out, to compare two platforms."""
    def strip(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(pid, "PID")
        if isinstance(value, list | tuple):
            return type(value)(strip(v) for v in value)
        return value

    out = {k: strip(v) for k, v in snapshot.items()}
    out["stacks"] = sorted(status for _, status in snapshot["stacks"])
    return out
