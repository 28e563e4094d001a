"""Real `nno worker` processes on PostgreSQL: one is SIGKILLed in the middle of its jobs; another
finishes them once their lease expires, and nothing is created twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nno.core import Core
from nno.kernel.config import Settings
from nno.provisioning.models import JobEvent, ProvisionJob
from tests.conftest import BACKEND, SERVICE_KEY
from tests.provisioning.conftest import PROV, TERMINAL, create_platform

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BACKEND != "scaled", reason="needs PostgreSQL: NNO_TEST_BACKEND=scaled"),
]
JOBS = 6


def start_worker(settings: Settings, concurrency: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NNO_DATABASE_URL": str(settings.database_url),
        "NNO_REDIS_URL": str(settings.redis_url),
        "NNO_REDIS_PREFIX": settings.redis_prefix,
        "NNO_DATA_DIR": str(settings.data_dir),
        "AUTH_API_KEY": SERVICE_KEY,
        "NNO_JOB_LEASE": "1",
        "NNO_WORKER_POLL_INTERVAL": "0.05",
        "NNO_LOG_LEVEL": "warning",
    }
    return subprocess.Popen([sys.executable, "-m", "nno", "worker", "--concurrency", str(concurrency)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
async def pg_core(make_settings: Callable[..., Settings]) -> AsyncIterator[Core]:
    core = Core(make_settings(embedded_worker=False, job_lease_s=1.0))
    await core.start()
    try:
        yield core
    finally:
        await core.stop()


async def jobs(core: Core) -> list[ProvisionJob]:
    async with core.context("provisioning").db.session() as s:
        return list((await s.execute(select(ProvisionJob))).scalars())


async def test_killed_worker_jobs_are_finished_by_another_without_duplicates(
        pg_core: Core, service_headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=pg_core.asgi),
                                 base_url="http://127.0.0.1:8787") as client:
        pids = [await create_platform(client, service_headers) for _ in range(JOBS)]
        for pid in pids:
            r = await client.post(f"{PROV}/provision/platform", json={"platformId": pid}, headers=service_headers)
            assert r.status_code == 202, r.text

        first = start_worker(pg_core.settings, concurrency=2)
        second: subprocess.Popen[bytes] | None = None
        try:
            marker = f":{first.pid}:"
            killed_holding: set[str] = set()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while not killed_holding:
                assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
                held = {j.id for j in await jobs(pg_core) if j.status == "RUNNING" and marker in (j.lease_owner or "")}
                if held:
                    first.send_signal(signal.SIGKILL)  # mid-job, no chance to clean up
                    first.wait()
                    killed_holding = held
                assert loop.time() < deadline, "the first worker never started a job"
                await asyncio.sleep(0.01)

            second = start_worker(pg_core.settings, concurrency=4)
            while True:
                rows = await jobs(pg_core)
                if all(j.status in TERMINAL for j in rows):
                    break
                assert loop.time() < deadline + 10, [(j.id, j.status, j.lease_owner, j.error) for j in rows]
                await asyncio.sleep(0.1)
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()

        rows = {j.id: j for j in await jobs(pg_core)}
        assert all(j.status == "COMPLETED" for j in rows.values()), {j.id: (j.status, j.error) for j in rows.values()}
        async with pg_core.context("provisioning").db.session() as s:
            reclaimed = {e.job_id for e in (await s.execute(
                select(JobEvent).where(JobEvent.event == "job.reclaimed"))).scalars()}
        assert killed_holding <= reclaimed  # each job the dead worker held was taken over
        assert all(rows[j].attempts == 2 for j in killed_holding)

        # Count what exists: per platform exactly one of each resource, in the cloud and the Registry.
        from nno.provisioning.providers.local import LocalProvider

        provider = LocalProvider(pg_core.settings)
        try:
            for pid in pids:
                refs = await provider.list_platform_resources(pid)
                kinds = Counter(r.type for r in refs)
                assert kinds["d1"] == kinds["worker"] == kinds["pages"] == 1, refs
                assert kinds["dns"] == 2, refs
                assert len({(r.type, r.name) for r in refs}) == len(refs)
                reg: Any = (await client.get(f"/api/v1/platforms/{pid}/resources",
                                             headers=service_headers)).json()["data"]
                assert sorted(r["type"] for r in reg) == ["d1", "pages", "worker"]
                status = (await client.get(f"/api/v1/platforms/{pid}", headers=service_headers)).json()["status"]
                assert status == "active"
        finally:
            await provider.close()
