"""The job engine driven by hand: crashes between steps, lease expiry, retries with backoff,
dead letters, rollback in reverse, operator retry, concurrent claims. Both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from nno.core import Core
from nno.provisioning.engine import Engine, backoff_ms
from nno.provisioning.models import ProvisionJob
from nno.provisioning.provider_factory import set_provider
from tests.provisioning.conftest import PROV, create_platform
from tests.provisioning.fakes import FakeCloud, Fault, SimulatedCrash


@pytest.fixture
def cloud(manual_core: Core) -> FakeCloud:
    fake = FakeCloud()
    set_provider(manual_core.context("provisioning"), fake)  # type: ignore[arg-type]
    return fake


def engine(core: Core, name: str) -> Engine:
    return Engine(core.context("provisioning"), name)


async def drain(eng: Engine) -> int:
    ran = 0
    while await eng.run_one():
        ran += 1
    return ran


async def submit(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, str]:
    pid = await create_platform(client, headers)
    resp = await client.post(f"{PROV}/provision/platform", json={"platformId": pid}, headers=headers)
    assert resp.status_code == 202, resp.text
    return pid, resp.json()["jobId"]


async def get_job(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    resp = await client.get(f"{PROV}/provision/jobs/{job_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def events(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> list[dict[str, Any]]:
    resp = await client.get(f"{PROV}/provision/jobs/{job_id}/events", headers=headers)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


def step_status(job: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in job["steps"]}


async def test_crash_between_steps_is_finished_by_another_worker_after_the_lease(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud) -> None:
    _pid, job_id = await submit(manual_client, service_headers)
    # The worker "dies" right after the cloud created the auth Worker, before the row says so.
    cloud.faults.append(Fault("ensure_worker", crash=True, after=True))
    with pytest.raises(SimulatedCrash):
        await engine(manual_core, "worker-a").run_one()
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "RUNNING" and job["worker"] == "worker-a"
    assert step_status(job)["deploy_auth_worker"] == "running"
    b = engine(manual_core, "worker-b")
    assert await b.run_one() is False  # the lease still holds
    await asyncio.sleep(0.4)
    assert await drain(b) == 1
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "COMPLETED", job
    assert job["attempts"] == 2
    assert set(step_status(job).values()) == {"completed"}
    assert all(n == 1 for n in cloud.created.values()), cloud.created  # nothing made twice
    assert len(cloud.names()) == 5
    reclaimed = [e for e in await events(manual_client, service_headers, job_id) if e["event"] == "job.reclaimed"]
    assert len(reclaimed) == 1 and reclaimed[0]["details"]["previousWorker"] == "worker-a"
    assert reclaimed[0]["actor"] == "worker-b"


async def test_crash_then_failure_rolls_back_what_the_crashed_run_created(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud) -> None:
    pid, job_id = await submit(manual_client, service_headers)
    cloud.faults.append(Fault("ensure_pages", crash=True, after=True))
    with pytest.raises(SimulatedCrash):
        await engine(manual_core, "a").run_one()
    cloud.faults.append(Fault("ensure_dns", times=-1, retryable=False))
    await asyncio.sleep(0.4)
    await drain(engine(manual_core, "b"))
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "ROLLED_BACK", job
    assert not cloud.names(), cloud.resources  # the Pages project from the crashed run went too
    deletes = [c for c in cloud.calls if c[0].startswith("delete")]
    assert deletes == [
        # The failed DNS step first (it made nothing: these deletes find nothing), then in reverse.
        ("delete_dns", f"console.app.default.{pid}.nno.localhost"),
        ("delete_dns", f"auth.svc.default.{pid}.nno.localhost"),
        ("delete_pages", f"{pid}-prod-portal"),
        ("delete_secret", f"{pid}-default-auth:BETTER_AUTH_SECRET"),
        ("delete_worker", f"{pid}-default-auth"),
        ("delete_d1", f"{pid}-default-auth-db"),
    ]


async def test_retries_with_backoff_then_success(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud) -> None:
    pid, job_id = await submit(manual_client, service_headers)
    cloud.faults.append(Fault("ensure_pages", times=2, retryable=True))
    await drain(engine(manual_core, "w"))
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "COMPLETED" and job["attempts"] == 3
    evs = await events(manual_client, service_headers, job_id)
    scheduled = [e for e in evs if e["event"] == "job.retry_scheduled"]
    assert [(e["fromStatus"], e["toStatus"], e["details"]["attempt"]) for e in scheduled] == [
        ("RUNNING", "QUEUED", 1), ("RUNNING", "QUEUED", 2)]
    assert [c for c in cloud.calls if c[0] == "ensure_pages"] == [("ensure_pages", f"{pid}-prod-portal")] * 3
    assert all(n == 1 for n in cloud.created.values())


def test_backoff_is_exponential_with_jitter() -> None:
    for attempt, base in ((1, 2.0), (2, 2.0), (3, 2.0), (3, 0.5)):
        samples = [backoff_ms(attempt, base) for _ in range(200)]
        nominal = base * 2 ** (attempt - 1) * 1000
        assert all(0.5 * nominal <= s <= 1.5 * nominal for s in samples)
        assert len(set(samples)) > 50  # jittered, not a fixed schedule


async def test_backoff_is_written_in_the_row(
        make_settings, service_headers: dict[str, str]) -> None:
    core = Core(make_settings(embedded_worker=False, job_backoff_base_s=5.0))
    await core.start()
    try:
        fake = FakeCloud(faults=[Fault("ensure_d1", times=1)])
        set_provider(core.context("provisioning"), fake)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=core.asgi),
                                     base_url="http://127.0.0.1:8787") as client:
            _, job_id = await submit(client, service_headers)
            eng = Engine(core.context("provisioning"), "w")
            assert await eng.run_one() is True
            job = await get_job(client, service_headers, job_id)
            assert job["status"] == "QUEUED" and job["attempts"] == 1
            wait = job["nextAttemptAt"] - job["updatedAt"]
            assert 2400 <= wait <= 7600  # 5 s scaled by the 0.5..1.5 jitter
            assert await eng.run_one() is False  # not due yet: the schedule survives in the row
    finally:
        await core.stop()


async def test_exhausted_attempts_dead_letter_and_reverse_rollback(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud) -> None:
    _pid, job_id = await submit(manual_client, service_headers)
    cloud.faults.append(Fault("ensure_pages", times=-1, retryable=True))
    await drain(engine(manual_core, "w"))
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "ROLLED_BACK" and job["attempts"] == 3
    assert job["errorCode"] == "PROVIDER_ERROR" and "ensure_pages" in job["error"]
    assert step_status(job) == {
        "mark_platform_provisioning": "completed",  # a lifecycle step has nothing to undo
        "create_auth_d1": "rolled_back",
        "deploy_auth_worker": "rolled_back",
        "set_auth_worker_secrets": "rolled_back",
        "create_console_pages": "failed",  # and cleaned up, in case the cloud made it anyway
        "register_dns": "pending",
        "register_resources": "pending",
        "mark_platform_active": "pending",
    }
    assert not cloud.names()
    assert next(s for s in job["steps"] if s["name"] == "create_console_pages")["cleanedUp"] is True
    deletes = [c[0] for c in cloud.calls if c[0].startswith("delete")]
    assert deletes == ["delete_pages", "delete_secret", "delete_worker", "delete_d1"]
    statuses = [(e["fromStatus"], e["toStatus"]) for e in await events(manual_client, service_headers, job_id)
                if e["event"] == "job.status_changed"]
    assert statuses[-3:] == [("RUNNING", "FAILED"), ("FAILED", "ROLLING_BACK"), ("ROLLING_BACK", "ROLLED_BACK")]
    letters = (await manual_client.get(f"{PROV}/provision/dead-letters", headers=service_headers)).json()["data"]
    assert [(d["jobId"], d["attempts"], d["resolvedAt"]) for d in letters] == [(job_id, 3, None)]

    # An operator (here: a service) retries it once the cloud works again.
    cloud.faults.clear()
    resp = await manual_client.post(f"{PROV}/provision/jobs/{job_id}/retry", headers=service_headers)
    assert resp.status_code == 202 and resp.json() == {"jobId": job_id, "status": "QUEUED", "duplicate": False}
    await drain(engine(manual_core, "w2"))
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "COMPLETED", job
    letters = (await manual_client.get(f"{PROV}/provision/dead-letters", headers=service_headers,
                                       params={"unresolved": "true"})).json()["data"]
    assert letters == []
    again = await manual_client.post(f"{PROV}/provision/jobs/{job_id}/retry", headers=service_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "JOB_NOT_RETRYABLE"


async def test_rollback_failure_is_recorded(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud) -> None:
    pid, job_id = await submit(manual_client, service_headers)
    cloud.faults += [Fault("ensure_pages", times=-1, retryable=False), Fault("delete_worker", times=-1)]
    await drain(engine(manual_core, "w"))
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "ROLLBACK_FAILED" and job["attempts"] == 1
    status = step_status(job)
    assert status["deploy_auth_worker"] == "rollback_failed"
    assert status["create_auth_d1"] == "rolled_back"  # the rollback went on past the failure
    assert cloud.names() == {f"{pid}-default-auth"}
    # The live key is released: a new request makes a new job.
    resp = await manual_client.post(f"{PROV}/provision/platform", json={"platformId": pid},
                                    headers=service_headers)
    assert resp.json()["jobId"] != job_id


async def test_concurrent_workers_claim_each_job_once(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud) -> None:
    jobs = [await submit(manual_client, service_headers) for _ in range(6)]
    workers = [engine(manual_core, f"w{i}") for i in range(3)]
    for w in workers:  # the fixture's 0.3 s lease can lapse on a loaded machine; claims are under test here
        w.lease_ms = 30_000
    counts = await asyncio.gather(*(drain(w) for w in workers))
    assert sum(counts) == 6
    for _, job_id in jobs:
        job = await get_job(manual_client, service_headers, job_id)
        assert job["status"] == "COMPLETED" and job["attempts"] == 1
        evs = await events(manual_client, service_headers, job_id)
        assert [e["event"] for e in evs].count("job.reclaimed") == 0
    assert all(n == 1 for n in cloud.created.values())
    assert len(cloud.names()) == 6 * 5


async def test_a_stalled_worker_that_lost_its_lease_stops_touching_the_job(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud) -> None:
    from sqlalchemy import update

    from nno.provisioning.models import ProvisionJob

    ctx = manual_core.context("provisioning")
    _, job_id = await submit(manual_client, service_headers)
    gate = asyncio.Event()
    cloud.gates["ensure_pages"] = gate
    stalled = asyncio.create_task(engine(manual_core, "stalled").run_one())
    while not any(c[0] == "stalled" for c in cloud.calls):
        await asyncio.sleep(0.01)
    # Its lease lapses (a long pause: it did not heartbeat), and another worker takes the job over.
    async with ctx.db.session() as s:
        await s.execute(update(ProvisionJob).where(ProvisionJob.id == job_id).values(lease_expires_at=0))
    assert await engine(manual_core, "rescuer").run_one() is True
    gate.set()
    await asyncio.wait_for(stalled, 5)  # it noticed, and stopped without an error
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "COMPLETED" and job["attempts"] == 2
    assert all(n == 1 for n in cloud.created.values())
    evs = await events(manual_client, service_headers, job_id)
    assert [e["actor"] for e in evs if e["event"] == "job.status_changed"][-1] == "rescuer"
    assert not [e for e in evs if e["actor"] == "stalled" and e["createdAt"] > min(
        x["createdAt"] for x in evs if x["event"] == "job.reclaimed")]


async def _run_through_crashes(core: Core, job_id: str, rounds: int = 10) -> None:
    ctx = core.context("provisioning")
    for round_ in range(rounds):
        try:
            await drain(Engine(ctx, f"w{round_}"))
            return
        except SimulatedCrash:  # the worker died: let its lease lapse rather than wait for it
            async with ctx.db.session() as s:
                await s.execute(update(ProvisionJob).where(ProvisionJob.id == job_id).values(lease_expires_at=0))
    raise AssertionError("the job never ended")


async def test_a_job_that_progresses_survives_a_crash_at_every_step(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud) -> None:
    """Worker kills aimed at running jobs (issue 18): more deaths than attempts, each in a new step."""
    cloud.faults += [Fault(m, crash=True, after=True) for m in ("ensure_d1", "ensure_worker", "ensure_pages",
                                                                "ensure_dns")]
    _pid, job_id = await submit(manual_client, service_headers)
    await _run_through_crashes(manual_core, job_id)
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "COMPLETED", job
    assert job["attempts"] == 5 > job["maxAttempts"]
    assert all(n == 1 for n in cloud.created.values()), cloud.created


async def test_a_step_that_kills_its_worker_every_time_fails_the_job_and_rolls_back(
        manual_core: Core, manual_client: httpx.AsyncClient, service_headers: dict[str, str],
        cloud: FakeCloud) -> None:
    cloud.faults.append(Fault("ensure_pages", crash=True, times=-1))
    _pid, job_id = await submit(manual_client, service_headers)
    await _run_through_crashes(manual_core, job_id)
    job = await get_job(manual_client, service_headers, job_id)
    assert job["status"] == "ROLLED_BACK" and job["errorCode"] == "WORKER_LOST", job
    pages = next(s for s in job["steps"] if s["name"] == "create_console_pages")
    assert pages["interruptions"] == job["maxAttempts"]
    assert cloud.names() == set()
