"""The edge component: the local cloud's router and worker host, joined to the core like a service
(`create_app(ctx)`, `MIGRATIONS_DIR`); the core sends it every request whose Host is under
`NNO_BASE_DOMAIN`. Its database (`ctx.db`) is the local cloud's state, shared with the `local`
provider (see nno.edge.cloud)."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp

from nno.edge.cloud import MIGRATIONS_DIR as _STATE_MIGRATIONS
from nno.edge.cloud import LocalCloud, state_database
from nno.edge.metering import R2StorageMeter, WorkerMeter
from nno.edge.router import EdgeRouter
from nno.edge.workers import WorkerHost
from nno.kernel.config import Settings
from nno.kernel.db import Database
from nno.kernel.ratelimit import limiter_for
from nno.kernel.service import ServiceContext

MIGRATIONS_DIR = _STATE_MIGRATIONS
# How often the edge drops Worker instances deleted or redeployed by another process.
SWEEP_INTERVAL_S = 15.0


def create_database(settings: Settings) -> Database:
    """The edge's own database is the local cloud's state: `{data_dir}/cloud/cloud.db` or schema `edge`."""
    return state_database(settings)


def create_app(ctx: ServiceContext) -> ASGIApp:
    cloud = LocalCloud(ctx.settings, db=ctx.db)
    host = WorkerHost(cloud, ctx.settings)
    # Platform hosts are limited like the gateway (its limiter and body limit, their own budgets).
    router = EdgeRouter(cloud, host, ctx.bindings, ctx.settings.base_domain,
                        limiter=limiter_for(ctx.settings, ctx.kv), max_body_bytes=ctx.settings.max_body_bytes)
    unsubscribe = cloud.subscribe(router.changed)
    ctx.extras["cloud"] = cloud
    ctx.extras["worker_host"] = host
    ctx.extras["router"] = router
    meter = router.meter = host.meter = WorkerMeter(ctx.bindings)
    ctx.extras["meter"] = meter
    storage_meter = ctx.extras["r2_storage_meter"] = R2StorageMeter(meter, cloud)

    sweeper: list[asyncio.Task[None]] = []

    async def startup() -> None:
        await cloud.ready()  # migrates, and re-seals secrets an earlier version sealed
        sweeper.append(asyncio.get_running_loop().create_task(host.run_sweeper(SWEEP_INTERVAL_S)))
        await meter.start()
        await storage_meter.start()

    async def shutdown() -> None:
        await storage_meter.stop()
        await meter.stop()
        unsubscribe()
        for task in sweeper:
            task.cancel()
        await asyncio.gather(*sweeper, return_exceptions=True)
        await host.close()
        if router.limiter is not None:
            await router.limiter.close()

    ctx.startup_hooks.append(startup)
    ctx.shutdown_hooks.append(shutdown)
    return router
