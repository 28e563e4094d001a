"""The build runner's queue: a build waits while its platform is provisioned, and a build whose
runner died (its lease expired) is taken over by another runner and finished once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import update

from nno.core import Core
from nno.kernel.config import Settings
from nno.repos.models import Build
from nno.repos.runner import BuildRunner
from tests.provisioning.conftest import create_platform
from tests.repos.conftest import CLI, make_repo


@pytest.fixture
async def quiet_core(make_settings: Callable[..., Settings]) -> AsyncIterator[Core]:
    """No embedded workers: the test drives the runners."""
    instance = Core(make_settings(embedded_worker=False))
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


async def test_waits_for_the_platform_then_a_dead_runners_build_is_taken_over(
        quiet_core: Core, service_headers: dict[str, str]) -> None:
    transport = httpx.ASGITransport(app=quiet_core.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as client:
        pid = await create_platform(client, service_headers)  # pending: not provisioned yet
        await make_repo(client, service_headers, pid)
        ctx = quiet_core.context("cli")
        first, second = BuildRunner(ctx, runner_id="a"), BuildRunner(ctx, runner_id="b")
        assert await first.run_one() is False  # waits: the platform is pending
        build = (await client.get(f"{CLI}/platforms/{pid}/builds", headers=service_headers)).json()["data"][0]
        assert build["status"] == "queued"

        for action in ("bootstrap", "complete"):
            resp = await client.post(f"/api/v1/platforms/{pid}/lifecycle", json={"action": action},
                                     headers=service_headers)
            assert resp.status_code == 200, resp.text
        async with ctx.db.session() as s:
            await s.execute(update(Build).values(not_before=0))
        claimed = await first._claim()  # runner "a" takes it and dies
        assert claimed is not None and claimed.status == "building"
        assert await second._claim() is None  # leased: nobody else may take it
        async with ctx.db.session() as s:
            await s.execute(update(Build).where(Build.id == claimed.id).values(lease_expires_at=0))
        assert await second.run_one() is True
        done = (await client.get(f"{CLI}/platforms/{pid}/builds/{claimed.id}", headers=service_headers)).json()
        assert done["status"] == "deployed", done
        assert await first.run_one() is False  # nothing left, and "a" cannot finish it twice
